"""asignal.testing: capture, Recorder and settle (asyncio and trio; no sleeps)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from asignal import BackgroundRunner, Signal, signal, signals
from asignal.testing import Recorder, Seen, capture, settle

pytestmark = pytest.mark.anyio


class App:
    def __repr__(self) -> str:
        return "<App>"


async def test_capture_records_sends_of_one_signal() -> None:
    sig = Signal()
    with capture(sig) as sent:
        sig.send("a", x=1)
        await sig.send_async("b")
    sig.send("c")
    assert sent == [("a", {"x": 1}), ("b", {})]
    assert not sig.receivers


# --- settle ------------------------------------------------------------------------------


async def test_settle_waits_for_pending_work_and_the_work_it_schedules() -> None:
    gate = anyio.Event()
    done: list[str] = []

    async def second() -> None:
        done.append("second")

    async def first(runner: BackgroundRunner) -> None:
        await gate.wait()
        done.append("first")
        runner.schedule_nowait(second, name="second")

    async def open_gate() -> None:
        await wait_all_tasks_blocked()
        gate.set()

    async with BackgroundRunner() as runner, anyio.create_task_group() as tg:
        runner.schedule_nowait(first, runner, name="first")
        tg.start_soon(open_gate)
        await settle()  # the current runner
        assert done == ["first", "second"]
        assert runner.pending == 0
        await settle(runner)  # nothing pending: returns at once
    assert runner.stats.completed == 2


async def test_settle_without_a_runner_says_how_to_get_one() -> None:
    with pytest.raises(RuntimeError, match=r"asignal\.testing\.settle\(\).*BackgroundRunner"):
        await settle()


async def test_settle_timeout_names_what_is_pending() -> None:
    async with BackgroundRunner(drain_timeout=0) as runner:
        runner.schedule_nowait(anyio.sleep_forever, name="hangs")
        with pytest.raises(TimeoutError, match="1 calls pending"):
            await settle(runner, timeout=0)


# --- Recorder ----------------------------------------------------------------------------


async def test_recorder_records_every_flask_signal_of_one_sender_in_order() -> None:
    app, other = App(), App()
    with Recorder(app) as recorder:
        signals.request_started.send(app, request="r")
        await signals.request_finished.send_async(app, request="r", response="ok")
        signals.request_started.send(other, request="x")  # another sender
        signals.appcontext_popped.send(app)
    assert recorder.names() == ["request_started", "request_finished", "appcontext_popped"]
    assert recorder.one("request_finished") == Seen(
        "request_finished", app, {"request": "r", "response": "ok"}
    )
    assert recorder.all("request_started")[0].kwargs == {"request": "r"}
    # Left the block: disconnected, what was seen is kept.
    assert not signals.request_started.receivers
    signals.request_started.send(app, request="later")
    assert len(recorder.seen) == 3
    recorder.clear()
    assert recorder.names() == []


async def test_recorder_one_explains_a_mismatch() -> None:
    sig = signal("test-recorder-one")
    with Recorder(signals=[sig]) as recorder:
        sig.send("a")
        sig.send("b")
    with pytest.raises(AssertionError, match=r"seen 2 times; seen: \['test-recorder-one'"):
        recorder.one("test-recorder-one")
    with pytest.raises(AssertionError, match="seen 0 times"):
        recorder.one("nothing")


async def test_recorder_of_named_and_mapped_signals_sharing_a_list() -> None:
    named = signal("test-recorder-named")
    anonymous = Signal()
    seen: list[Seen] = []
    first = Recorder(seen=seen, signals=[named]).connect()
    second = Recorder(seen=seen, signals={"anon": anonymous}).connect()
    named.send("s")
    anonymous.send("s")
    first.disconnect()
    second.disconnect()
    assert [s.name for s in seen] == ["test-recorder-named", "anon"]
    with pytest.raises(TypeError, match="mapping of names"):
        Recorder(signals=[anonymous])


async def test_async_recorder_sees_send_async_only() -> None:
    sig = signal("test-recorder-async")
    with Recorder(signals=[sig], sync=False) as recorder:
        await sig.send_async("s")
        with pytest.raises(RuntimeError, match="coroutine receiver"):
            sig.send("s")
    assert recorder.names() == ["test-recorder-async"]


async def test_recorder_wait_for_waits_for_later_sends() -> None:
    sig = signal("test-recorder-wait")
    got: list[Any] = []
    with Recorder(signals=[sig]) as recorder:

        async def waiter() -> None:
            got.append(await recorder.wait_for("test-recorder-wait", 2))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await wait_all_tasks_blocked()
            sig.send("first")
            await wait_all_tasks_blocked()
            assert got == []
            await sig.send_async("second")
        # Already seen twice: returns at once.
        assert (await recorder.wait_for("test-recorder-wait")).sender == "first"
    assert [s.sender for s in got] == ["second"]


async def test_recorder_wait_for_times_out_with_what_was_seen() -> None:
    sig = signal("test-recorder-timeout")
    with Recorder(signals=[sig]) as recorder:
        sig.send("s")
        with pytest.raises(TimeoutError, match=r"seen 1 of 2 times.*test-recorder-timeout"):
            await recorder.wait_for("test-recorder-timeout", 2, timeout=0)
