"""subscribe / wait_for: the consumer side of a signal (asyncio and trio).

Concurrency is ordered with events and ``anyio.wait_all_tasks_blocked``; no sleeps, no
durations asserted (``timeout=0`` expires at once).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from asignal import Signal, signal
from asignal._subscribe import DEFAULT_MAX_BUFFER, Subscription, subscribe, wait_for

pytestmark = pytest.mark.anyio


class App:
    def __repr__(self) -> str:
        return "<App>"


async def test_subscribe_yields_sync_and_async_sends_in_order() -> None:
    sig = Signal()
    app = App()
    async with subscribe(sig) as sends:
        assert isinstance(sends, Subscription)
        assert sends.max_buffer == DEFAULT_MAX_BUFFER
        sig.send(app, n=1)
        await sig.send_async(app, n=2)
        sig.send("other", n=3)
        got = [await anext(sends) for _ in range(3)]
    assert got == [(app, {"n": 1}), (app, {"n": 2}), ("other", {"n": 3})]


async def test_subscribe_to_one_sender() -> None:
    sig = Signal()
    app, other = App(), App()
    async with subscribe(sig, app) as sends:
        sig.send(other, n=1)
        sig.send(app, n=2)
        assert sends.buffered == 1
        assert await anext(sends) == (app, {"n": 2})


async def test_consumer_waits_for_sends_from_another_task() -> None:
    sig = signal("test-subscribe-consumer")
    seen: list[int] = []
    ready = anyio.Event()

    async def consumer() -> None:
        async with subscribe(sig) as sends:
            ready.set()
            async for _, kwargs in sends:
                seen.append(kwargs["n"])
                if kwargs["n"] == 3:
                    break

    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer)
        await ready.wait()
        await wait_all_tasks_blocked()
        for n in (1, 2, 3):
            await sig.send_async("sender", n=n)
    assert seen == [1, 2, 3]
    assert not sig.receivers


async def test_full_buffer_drops_counts_and_logs_never_blocks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sig = signal("test-subscribe-overflow")
    with caplog.at_level(logging.WARNING, logger="asignal"):
        async with subscribe(sig, max_buffer=2) as sends:
            for n in range(5):
                # The sender goes on at once: its result says the subscriber took it.
                assert len(sig.send("s", n=n)) == 1
            assert sends.dropped == 3
            assert sends.buffered == 2
            assert [(await anext(sends))[1]["n"] for _ in range(2)] == [0, 1]
            await sig.send_async("s", n=5)
            assert (await anext(sends))[1]["n"] == 5
            for n in range(6, 9):
                sig.send("s", n=n)
            assert sends.dropped == 4
    logged = [r.getMessage() for r in caplog.records if r.name == "asignal"]
    # Once per overflow, not once per dropped send.
    assert len(logged) == 2
    assert "test-subscribe-overflow" in logged[0]
    assert "buffer of 2 is full" in logged[0]


async def test_leaving_the_block_disconnects_and_ends_iteration() -> None:
    sig = Signal()
    async with subscribe(sig) as sends:
        assert sig.receivers
        sig.send("s", n=1)
    assert not sig.receivers
    sig.send("s", n=2)  # after the block: not seen
    assert [kwargs["n"] async for _, kwargs in sends] == [1]
    with pytest.raises(RuntimeError, match="entered before"):
        async with sends:
            pass


async def test_leaving_the_block_on_error_disconnects() -> None:
    sig = Signal()
    with pytest.raises(KeyError):
        async with subscribe(sig):
            raise KeyError("x")
    assert not sig.receivers


async def test_close_wakes_a_waiting_consumer() -> None:
    sig = Signal()
    ended = anyio.Event()
    async with subscribe(sig) as sends:

        async def consumer() -> None:
            async for _ in sends:
                pass
            ended.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            await wait_all_tasks_blocked()
            sends.close()
            await ended.wait()
    assert "closed" in repr(sends)


async def test_sync_send_from_a_worker_thread_reaches_the_subscriber() -> None:
    sig = Signal()
    async with subscribe(sig) as sends:
        await anyio.to_thread.run_sync(lambda: sig.send("thread", n=1))
        assert await anext(sends) == ("thread", {"n": 1})


def test_max_buffer_is_checked() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        subscribe(Signal(), max_buffer=0)
    with pytest.raises(TypeError, match="max_buffer"):
        subscribe(Signal(), max_buffer=None)  # type: ignore[arg-type]


# --- wait_for ---------------------------------------------------------------------------


async def _wait_in_task(coro_fn: Any, out: list[Any]) -> None:
    try:
        out.append(await coro_fn())
    except Exception as exc:
        out.append(exc)


async def test_wait_for_returns_the_next_matching_send() -> None:
    sig = Signal()
    app, other = App(), App()
    out: list[Any] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            _wait_in_task,
            lambda: wait_for(sig, app, condition=lambda sender, **kw: kw["n"] > 1),
            out,
        )
        await wait_all_tasks_blocked()
        sig.send(other, n=5)  # another sender
        sig.send(app, n=1)  # condition false
        await wait_all_tasks_blocked()
        assert out == []
        await sig.send_async(app, n=2)
        sig.send(app, n=3)  # after the match: not taken
    assert out == [(app, {"n": 2})]
    assert not sig.receivers


async def test_wait_for_times_out_and_disconnects() -> None:
    sig = signal("test-wait-for-timeout")
    with pytest.raises(TimeoutError, match="test-wait-for-timeout"):
        await wait_for(sig, timeout=0)
    assert not sig.receivers
    with pytest.raises(ValueError, match="timeout"):
        await wait_for(sig, timeout=-1)


async def test_wait_for_condition_error_goes_to_the_waiter_not_the_sender() -> None:
    sig = Signal()
    out: list[Any] = []

    def bad(sender: Any, **kwargs: Any) -> bool:
        raise LookupError("bad condition")

    async with anyio.create_task_group() as tg:
        tg.start_soon(_wait_in_task, lambda: wait_for(sig, condition=bad), out)
        await wait_all_tasks_blocked()
        assert sig.send("s") == [(next(iter(sig.receivers_for("s"))), None)]
    assert isinstance(out[0], LookupError)
    assert not sig.receivers


async def test_wait_for_a_send_from_a_worker_thread() -> None:
    sig = Signal()
    out: list[Any] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_wait_in_task, lambda: wait_for(sig, timeout=10), out)
        await wait_all_tasks_blocked()
        await anyio.to_thread.run_sync(lambda: sig.send("thread", n=1))
    assert out == [("thread", {"n": 1})]
