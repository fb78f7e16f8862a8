"""Background receivers (``connect(background=True)``) and ``Signal.send_background``,
on asyncio and trio.

Events order everything: a sender returning while its background receiver is still
blocked on an event that the test sets only afterwards is the proof that the send did not
await it. No sleeps, no durations asserted; tiny timeouts only bound hanging receivers.
"""

from __future__ import annotations

import contextvars
import logging
import subprocess
import sys
from typing import Any

import anyio
import anyio.to_thread
import pytest

import asignal
from asignal import BackgroundRunner, Scheduled, Signal, signal
from asignal.testing import settle

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "asignal"]


def test_import_asignal_imports_no_event_loop_anyio_inspect_or_logging() -> None:
    # The runner's names are lazy exports: the first use imports anyio and logging.
    heavy = ("anyio", "asyncio", "trio", "inspect", "logging")
    code = "import sys, asignal\n"
    code += f"bad = [m for m in {heavy!r} if m in sys.modules]\n"
    code += "assert not bad, bad\n"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert {"BackgroundRunner", "BackgroundStats", "Scheduled"} <= set(asignal.__all__)
    assert asignal.Scheduled is Scheduled


async def test_send_async_returns_while_a_background_receiver_is_blocked() -> None:
    sig = Signal()
    release, done = anyio.Event(), anyio.Event()

    async def slow(sender: Any, **kwargs: Any) -> str:
        await release.wait()
        done.set()
        return "eventual"

    sig.connect(slow, background=True)
    async with BackgroundRunner() as runner:
        results = await sig.send_async("app")
        assert not done.is_set()
        [(receiver, value)] = results
        assert receiver is slow
        assert isinstance(value, Scheduled)
        assert value.runner is runner
        assert "slow" in value.name
        release.set()
        await done.wait()
    assert runner.stats.completed == 1


async def test_send_returns_while_a_sync_and_an_async_background_receiver_wait() -> None:
    sig = Signal()
    release = anyio.Event()
    seen: list[str] = []

    async def later(sender: Any) -> None:
        await release.wait()
        seen.append("async")

    def sync_one(sender: Any) -> None:
        seen.append("sync")

    sig.connect(later, background=True)
    sig.connect(sync_one, background=True)
    async with BackgroundRunner() as runner:
        results = sig.send("app")
        assert [r for r, _ in results] == [later, sync_one]
        assert all(isinstance(v, Scheduled) for _, v in results)
        assert seen == []  # a sync background receiver runs in the background too
        release.set()
        await settle(runner)
    assert sorted(seen) == ["async", "sync"]


async def test_scheduled_values_keep_dispatch_order_among_awaited_receivers() -> None:
    sig = Signal()

    async def a(sender: Any) -> str:
        return "a"

    async def b(sender: Any) -> str:
        return "b"

    def c(sender: Any) -> str:
        return "c"

    async def d(sender: Any) -> str:
        await anyio.lowlevel.checkpoint()
        return "d"

    async def top(sender: Any) -> str:
        return "top"

    sig.connect(a, weak=False)
    sig.connect(b, weak=False, background=True)
    sig.connect(c, weak=False)
    sig.connect(d, weak=False, background=True)
    sig.connect(top, weak=False, priority=1, background=True)
    async with BackgroundRunner() as runner:
        for results in (
            await sig.send_async(None),
            await sig.send_async(None, _sequential=True),
            sig.send(None, _async_wrapper=lambda f: lambda *a, **k: "wrapped"),
        ):
            assert [r for r, _ in results] == [top, a, b, c, d]
            values = [v for _, v in results]
            assert isinstance(values[0], Scheduled)
            assert values[1] in ("a", "wrapped")
            assert isinstance(values[2], Scheduled)
            assert values[3] == "c"
            assert isinstance(values[4], Scheduled)
        await settle(runner)
    assert runner.stats.completed == 9
    assert list(sig.receivers_for(None)) == [top, a, b, c, d]


async def test_background_receivers_see_the_context_as_it_was_at_the_send() -> None:
    sig = Signal()
    release = anyio.Event()
    seen: list[str] = []

    async def audit(sender: Any) -> None:
        await release.wait()
        seen.append(request_id.get())

    sig.connect(audit, background=True)
    async with BackgroundRunner() as runner:
        token = request_id.set("req-1")
        await sig.send_async(None)
        request_id.set("req-2")
        sig.send(None)
        request_id.reset(token)
        release.set()
        await settle(runner)
    assert sorted(seen) == ["req-1", "req-2"]


@pytest.mark.parametrize("errors", ["raise", "collect"])
async def test_a_background_failure_is_logged_with_receiver_and_signal_never_raised(
    errors: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sig = signal("bg-failing")

    async def broken(sender: Any) -> None:
        raise ValueError("boom")

    def ok(sender: Any) -> str:
        return "fine"

    caplog.set_level(logging.ERROR, logger="asignal")
    with sig.connected_to(broken, background=True), sig.connected_to(ok):
        async with BackgroundRunner() as runner:
            results = await sig.send_async(None, _errors=errors)
            assert results[1] == (ok, "fine")
            await settle(runner)
    assert runner.stats.failed == 1
    [message] = [m for m in messages(caplog) if "raised" in m]
    assert "broken" in message
    assert "'bg-failing'" in message


async def test_a_receiver_timeout_bounds_its_background_call() -> None:
    sig = Signal()
    never = anyio.Event()

    async def hangs(sender: Any) -> None:
        await never.wait()

    sig.connect(hangs, background=True, timeout=0.01)
    async with BackgroundRunner() as runner:
        await sig.send_async(None)
        await settle(runner)
    assert runner.stats.timed_out == 1
    assert runner.stats.completed == 0


async def test_the_runner_default_timeout_bounds_a_background_receiver_without_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sig = signal("bg-hanging")
    never = anyio.Event()

    async def hangs(sender: Any) -> None:
        await never.wait()

    with sig.connected_to(hangs, background=True):
        async with BackgroundRunner(default_timeout=0.01) as runner:
            sig.send(None)
            await settle(runner)
    assert runner.stats.timed_out == 1
    assert any("hangs" in m and "'bg-hanging'" in m for m in messages(caplog))


async def test_without_a_runner_a_send_raises_before_any_receiver_ran() -> None:
    sig = signal("bg-no-runner")
    ran: list[str] = []

    async def first(sender: Any) -> None:
        ran.append("first")

    def sync_first(sender: Any) -> None:
        ran.append("sync_first")

    async def later(sender: Any) -> None:
        ran.append("later")

    sig.connect(first, weak=False, priority=1)
    sig.connect(sync_first, weak=False, priority=1)
    sig.connect(later, weak=False, background=True)
    try:
        with pytest.raises(RuntimeError, match=r"later.*'bg-no-runner'.*BackgroundRunner"):
            await sig.send_async(None)
        sig.disconnect(first)
        with pytest.raises(RuntimeError, match="later"):
            sig.send(None)
        assert ran == []
    finally:
        for receiver in (first, sync_first, later):
            sig.disconnect(receiver)


async def test_send_drops_on_a_full_runner_and_send_async_waits_for_room() -> None:
    sig = Signal()
    release = anyio.Event()
    calls: list[str] = []

    async def work(sender: Any) -> None:
        calls.append(sender)
        await release.wait()

    sig.connect(work, background=True)
    async with BackgroundRunner(max_pending=1) as runner:
        sig.send("first")
        [(_, dropped)] = sig.send("second")
        assert dropped is None
        assert runner.stats.dropped == 1
        waited: list[Any] = []

        async def send_more() -> None:
            waited.extend(await sig.send_async("third"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_more)
            await anyio.wait_all_tasks_blocked()
            assert waited == []  # waiting for room, not dropped
            release.set()
        assert isinstance(waited[0][1], Scheduled)
        await settle(runner)
    assert calls == ["first", "third"]
    assert runner.stats.dropped == 1


async def test_send_background_from_a_coroutine_returns_at_once() -> None:
    sig = Signal()
    release = anyio.Event()
    seen: list[tuple[Any, dict[str, Any]]] = []

    async def receiver(sender: Any, **kwargs: Any) -> None:
        await release.wait()
        seen.append((sender, kwargs))

    async def failing(sender: Any, **kwargs: Any) -> None:
        raise ValueError("collected, not raised")

    sig.connect(receiver)
    sig.connect(failing)
    async with BackgroundRunner() as runner:
        scheduled = sig.send_background("app", user="ada")
        assert isinstance(scheduled, Scheduled)
        await anyio.wait_all_tasks_blocked()
        assert seen == []
        release.set()
        await settle(runner)
    assert seen == [("app", {"user": "ada"})]
    assert runner.stats.completed == 1  # the whole send, failures collected and logged


async def test_send_background_from_sync_code_and_a_worker_thread() -> None:
    sig = Signal()
    seen: list[tuple[Any, str]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append((sender, request_id.get()))

    def endpoint(sender: str) -> Scheduled | None:  # sync code, as a sync endpoint
        return sig.send_background(sender)

    sig.connect(receiver)
    async with BackgroundRunner() as runner:
        token = request_id.set("loop")
        assert endpoint("loop thread") is not None
        request_id.reset(token)
        assert await anyio.to_thread.run_sync(endpoint, "worker thread") is not None
        await settle(runner)
    assert sorted(seen) == [("loop thread", "loop"), ("worker thread", "-")]


async def test_send_background_with_nobody_listening_needs_no_runner() -> None:
    sig = Signal()
    assert sig.send_background("app") is None

    def receiver(sender: Any) -> None: ...

    sig.connect(receiver)
    with pytest.raises(RuntimeError, match="send_background"):
        sig.send_background("app")
    with pytest.raises(TypeError, match="_errors"):
        sig.send_background("app", _errors="raise")


async def test_subscribe_and_wait_for_through_the_signal_methods() -> None:
    sig = Signal()
    async with sig.subscribe(max_buffer=2) as sends:
        sig.send("a", n=1)
        await sig.send_async("b", n=2)
        got = [await sends.__anext__(), await sends.__anext__()]
    assert got == [("a", {"n": 1}), ("b", {"n": 2})]
    assert not sig.receivers  # leaving the block disconnected

    async with anyio.create_task_group() as tg:
        found: list[Any] = []

        async def wait() -> None:
            found.append(await sig.wait_for("c", condition=lambda s, **kw: kw["n"] > 1))

        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        sig.send("c", n=1)
        sig.send("c", n=2)
    assert found == [("c", {"n": 2})]
    with pytest.raises(TimeoutError):
        await sig.wait_for(timeout=0.01)


def test_background_must_be_a_bool() -> None:
    sig = Signal()

    def receiver(sender: Any) -> None: ...

    with pytest.raises(TypeError, match="background of receiver"):
        sig.connect(receiver, background=1)  # type: ignore[arg-type]


async def test_observed_sends_keep_background_receivers_in_dispatch_order() -> None:
    # With the OpenTelemetry hook on, sends take the observed path: the results are the
    # same, the background receiver scheduled, the awaited one's value kept.
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider

    from asignal.contrib.opentelemetry import AsignalInstrumentor

    sig = Signal()
    release = anyio.Event()

    async def later(sender: Any) -> None:
        await release.wait()

    def now(sender: Any) -> str:
        return "now"

    sig.connect(later, background=True)
    sig.connect(now)
    instrumentor = AsignalInstrumentor()
    instrumentor.instrument(tracer_provider=TracerProvider())
    try:
        async with BackgroundRunner() as runner:
            for results in (await sig.send_async(None), sig.send(None)):
                assert [r for r, _ in results] == [later, now]
                assert isinstance(results[0][1], Scheduled)
                assert results[1][1] == "now"
            release.set()
            await settle(runner)
    finally:
        instrumentor.uninstrument()
    assert runner.stats.completed == 2
