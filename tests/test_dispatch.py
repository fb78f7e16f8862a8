"""``send_async``'s dispatch semantics, on asyncio and trio: concurrency, ordering,
priorities, limits, receiver kinds, context. Timeouts, errors and cancellation have
files of their own (tests/test_dispatch_*.py)."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from asignal import Signal
from tests.dispatch_receivers import (
    DEADLOCK,
    Running,
    instant,
    quick,
    waiting_receivers,
)

pytestmark = pytest.mark.anyio


# --- concurrency and order -----------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 25])
async def test_receivers_run_concurrently(n: int) -> None:
    # Sequential dispatch would deadlock: the first receiver waits for the last to start.
    sig = Signal()
    receivers, _ = waiting_receivers(n)
    for receiver in receivers:
        sig.connect(receiver, weak=False)
    with anyio.fail_after(DEADLOCK):
        results = await sig.send_async("app")
    assert results == [(r, i) for i, r in enumerate(receivers)]


async def test_results_in_dispatch_order_when_receivers_finish_in_reverse() -> None:
    sig = Signal()
    n = 5
    finished: list[int] = []
    done = [anyio.Event() for _ in range(n)]

    def make(i: int) -> Callable[..., Awaitable[str]]:
        async def receiver(sender: Any) -> str:
            await anyio.lowlevel.checkpoint()
            if i + 1 < n:
                await done[i + 1].wait()  # the next one must finish first
            finished.append(i)
            done[i].set()
            return f"r{i}"

        return receiver

    receivers = [make(i) for i in range(n)]
    for receiver in receivers:
        sig.connect(receiver, weak=False)
    with anyio.fail_after(DEADLOCK):
        results = await sig.send_async()
    assert finished == [4, 3, 2, 1, 0]
    assert results == [(r, f"r{i}") for i, r in enumerate(receivers)]


async def test_sync_and_async_receivers_keep_dispatch_order() -> None:
    sig = Signal()
    calls: list[str] = []

    async def slow(sender: Any) -> str:
        calls.append("slow start")
        await anyio.lowlevel.checkpoint()
        calls.append("slow end")
        return "slow"

    def sync(sender: Any) -> str:
        calls.append("sync")
        return "sync"

    async def fast(sender: Any) -> str:
        calls.append("fast")
        return "fast"

    for receiver in (fast, slow, sync, fast):
        sig.connect(receiver)
    assert await sig.send_async() == [(fast, "fast"), (slow, "slow"), (sync, "sync")]
    # sync is called as soon as its turn comes, while slow is still suspended.
    assert calls == ["fast", "slow start", "sync", "slow end"]


async def test_priority_tiers_run_one_after_another() -> None:
    sig = Signal()
    log: list[str] = []

    def make(name: str) -> Callable[..., Awaitable[str]]:
        async def receiver(sender: Any) -> str:
            log.append(f"{name} start")
            await anyio.lowlevel.checkpoint()
            log.append(f"{name} end")
            return name

        return receiver

    low, high1, high2, mid = make("low"), make("high1"), make("high2"), make("mid")
    sig.connect(low, priority=-1)
    sig.connect(high1, priority=10)
    sig.connect(mid)
    sig.connect(high2, priority=10)
    results = await sig.send_async()
    assert [value for _, value in results] == ["high1", "high2", "mid", "low"]
    assert list(sig.receivers_for(None)) == [high1, high2, mid, low]
    # Both high receivers ended before mid started. (That receivers of one tier overlap
    # is shown by the barrier tests; trio shuffles who runs first within a round.)
    assert set(log[:4]) == {"high1 start", "high1 end", "high2 start", "high2 end"}
    assert log[4:] == ["mid start", "mid end", "low start", "low end"]


async def test_priority_orders_sync_send_too() -> None:
    sig = Signal()
    sig.connect(lambda s: "late", weak=False, priority=-5)
    sig.connect(lambda s: "early", weak=False, priority=5)
    assert [value for _, value in sig.send()] == ["early", "late"]


async def test_sequential_never_runs_two_at_once() -> None:
    sig = Signal()
    running = Running()
    receivers = [functools.partial(running.__call__) for _ in range(5)]
    for receiver in receivers:
        sig.connect(receiver, weak=False)
    results = await sig.send_async(_sequential=True)
    assert running.most == 1
    assert [value for _, value in results] == ["done"] * 5


async def test_default_mode_does_overlap() -> None:
    # The counterpart of the two tests around it: without options, receivers overlap.
    sig = Signal()
    running = Running()
    for _ in range(5):
        sig.connect(functools.partial(running.__call__), weak=False)
    await sig.send_async()
    assert running.most == 5


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_limit_caps_receivers_running_at_once(limit: int) -> None:
    sig = Signal()
    running = Running()
    for _ in range(7):
        sig.connect(functools.partial(running.__call__), weak=False)
    results = await sig.send_async(_limit=limit)
    assert running.most == limit
    assert len(results) == 7


# --- receiver kinds -------------------------------------------------------------------------------


class Service:
    def __init__(self) -> None:
        self.name = "svc"

    async def on_async(self, sender: Any, **kwargs: Any) -> str:
        await anyio.lowlevel.checkpoint()
        return f"async method {self.name}"

    def on_sync(self, sender: Any, **kwargs: Any) -> str:
        return f"sync method {self.name}"


class AsyncCallable:
    async def __call__(self, sender: Any, **kwargs: Any) -> str:
        await anyio.lowlevel.checkpoint()
        return "async __call__"


async def tagged(tag: str, sender: Any, **kwargs: Any) -> str:
    await anyio.lowlevel.checkpoint()
    return f"partial {tag}"


def sync_tagged(tag: str, sender: Any, **kwargs: Any) -> str:
    return f"sync partial {tag}"


async def test_every_kind_of_receiver() -> None:
    sig = Signal()
    service = Service()
    receivers: list[tuple[Any, str]] = [
        (quick, "quick"),
        (service.on_async, "async method svc"),
        (functools.partial(tagged, "a"), "partial a"),
        (functools.partial(functools.partial(tagged, "b")), "partial b"),
        (AsyncCallable(), "async __call__"),
        (instant, "instant"),
        (lambda sender, **kw: "lambda", "lambda"),
        (service.on_sync, "sync method svc"),
        (functools.partial(sync_tagged, "c"), "sync partial c"),
    ]
    for receiver, _ in receivers:
        # Bound methods are held weakly like blinker's; the rest need a strong reference.
        sig.connect(receiver, weak=isinstance(receiver, type(service.on_async)))
    results = await sig.send_async("app")
    assert [value for _, value in results] == [expected for _, expected in receivers]


async def test_sync_wrapper_turns_sync_receivers_into_awaitables() -> None:
    sig = Signal()
    wrapped: list[str] = []

    def wrapper(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def run(*args: Any, **kwargs: Any) -> Any:
            wrapped.append(fn.__name__)
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

        return run

    sig.connect(instant)
    sig.connect(quick)
    results = await sig.send_async(_sync_wrapper=wrapper)
    assert results == [(instant, "instant"), (quick, "quick")]
    assert wrapped == ["instant"]


async def test_dead_weak_receiver_is_skipped() -> None:
    import gc

    sig = Signal()

    def make() -> Any:
        async def short_lived(sender: Any) -> str:
            return "short"

        return short_lived

    receiver = make()
    sig.connect(receiver)
    sig.connect(quick)
    assert len(await sig.send_async()) == 2
    del receiver
    gc.collect()
    assert await sig.send_async() == [(quick, "quick")]


# --- context and task identity --------------------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


async def test_receivers_see_the_senders_contextvars_and_cannot_change_them() -> None:
    sig = Signal()
    seen: list[str] = []

    async def inline(sender: Any) -> None:
        seen.append(request_id.get())
        request_id.set("changed by inline")

    async def suspending(sender: Any) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(request_id.get())
        request_id.set("changed by suspending")

    def sync(sender: Any) -> None:
        seen.append(request_id.get())

    for receiver in (suspending, quick, suspending, sync, inline):
        sig.connect(receiver)
    token = request_id.set("req-42")
    try:
        await sig.send_async()
        assert request_id.get() == "req-42"
    finally:
        request_id.reset(token)
    assert seen[0] == "req-42"
    assert "req-42" in seen


async def test_receivers_may_open_their_own_cancel_scopes_across_suspension() -> None:
    # A receiver's first step runs on the sender's task; what it opens there (cancel
    # scopes, timeouts) must still close cleanly while the others run beside it.
    sig = Signal()
    n = 4
    receivers, _ = waiting_receivers(n)

    def scoped(inner: Callable[..., Awaitable[int]]) -> Callable[..., Awaitable[int]]:
        async def receiver(sender: Any) -> int:
            with anyio.fail_after(DEADLOCK):
                value = await inner(sender)
            with anyio.move_on_after(0.001):
                await anyio.Event().wait()  # its own deadline expires, quietly
            return value

        return receiver

    wrapped = [scoped(r) for r in receivers]
    for receiver in wrapped:
        sig.connect(receiver, weak=False)
    with anyio.fail_after(DEADLOCK):
        for options in ({}, {"_timeout": 30}, {"_errors": "collect"}):
            receivers[:], _ = waiting_receivers(n)
            wrapped_now = [scoped(r) for r in receivers]
            sig2 = Signal()
            for receiver in wrapped_now:
                sig2.connect(receiver, weak=False)
            assert [v for _, v in await sig2.send_async(**options)] == list(range(n))
