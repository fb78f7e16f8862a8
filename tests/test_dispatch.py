"""``send_async``'s dispatch semantics, on asyncio and trio: concurrency, ordering,
priorities, limits, timeouts, error policies, cancellation, receiver kinds, context."""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from asignal import Signal

pytestmark = pytest.mark.anyio

# Safety net only: a broken dispatcher must fail a test, not hang the suite.
DEADLOCK = 10


class Running:
    """Counts receivers running at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    async def __call__(self, sender: Any, **kwargs: Any) -> str:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
        finally:
            self.now -= 1
        return "done"


def waiting_receivers(n: int) -> tuple[list[Callable[..., Awaitable[int]]], list[anyio.Event]]:
    """n receivers that each announce they started, then wait until all n have."""
    started = [anyio.Event() for _ in range(n)]

    def make(i: int) -> Callable[..., Awaitable[int]]:
        async def receiver(sender: Any, **kwargs: Any) -> int:
            started[i].set()
            for event in started:
                await event.wait()
            return i

        return receiver

    return [make(i) for i in range(n)], started


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


# --- timeouts -------------------------------------------------------------------------------------


class Hanging:
    """A receiver that never returns on its own, and says whether it was cancelled."""

    def __init__(self) -> None:
        self.cancelled = False
        self.started = anyio.Event()

    async def __call__(self, sender: Any, **kwargs: Any) -> str:
        self.started.set()
        try:
            await anyio.Event().wait()
        finally:
            self.cancelled = True
        return "never"


async def quick(sender: Any, **kwargs: Any) -> str:
    await anyio.lowlevel.checkpoint()
    return "quick"


def instant(sender: Any, **kwargs: Any) -> str:
    return "instant"


@pytest.mark.parametrize("how", ["_receiver_timeout", "connect"])
async def test_receiver_timeout_cancels_the_slow_receiver_and_raises(how: str) -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(quick)
    sig.connect(hanging, weak=False, timeout=0.05 if how == "connect" else None)
    options = {"_receiver_timeout": 0.05} if how == "_receiver_timeout" else {}
    with anyio.fail_after(DEADLOCK), pytest.raises(TimeoutError, match="Hanging"):
        await sig.send_async(**options)
    assert hanging.cancelled


@pytest.mark.parametrize("how", ["_receiver_timeout", "connect"])
async def test_receiver_timeout_collects_timeout_error_and_keeps_the_others(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(quick)
    sig.connect(hanging, weak=False, timeout=0.05 if how == "connect" else None)
    sig.connect(instant)
    options: dict[str, Any] = {"_receiver_timeout": 0.05} if how == "_receiver_timeout" else {}
    with anyio.fail_after(DEADLOCK):
        results = await sig.send_async(_errors="collect", **options)
    assert results[0] == (quick, "quick")
    assert results[1][0] is hanging
    assert isinstance(results[1][1], TimeoutError)
    assert results[2] == (instant, "instant")
    assert hanging.cancelled
    assert "Hanging" in caplog.text


async def test_connect_timeout_wins_over_receiver_timeout() -> None:
    sig = Signal()

    async def patient(sender: Any) -> str:
        await anyio.sleep(0.05)
        return "patient"

    sig.connect(patient, timeout=5)
    with anyio.fail_after(DEADLOCK):
        assert await sig.send_async(_receiver_timeout=0.001) == [(patient, "patient")]


@pytest.mark.parametrize("first", [True, False])
async def test_send_timeout_bounds_the_whole_send(first: bool) -> None:
    sig = Signal()
    hanging = Hanging()
    if first:
        sig.connect(hanging, weak=False)
    sig.connect(quick)
    if not first:
        sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK), pytest.raises(TimeoutError, match=r"0\.05 s"):
        await sig.send_async(_timeout=0.05)
    assert hanging.cancelled


@pytest.mark.parametrize("first", [True, False])
async def test_send_timeout_collects(first: bool, caplog: pytest.LogCaptureFixture) -> None:
    sig = Signal()
    hanging = Hanging()
    if first:
        sig.connect(hanging, weak=False)
    sig.connect(quick)
    sig.connect(instant)
    if not first:
        sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK):
        results = await sig.send_async(_timeout=0.05, _errors="collect")
    values = {receiver: value for receiver, value in results}
    assert [receiver for receiver, _ in results] == (
        [hanging, quick, instant] if first else [quick, instant, hanging]
    )
    assert values[quick] == "quick"
    assert values[instant] == "instant"
    assert isinstance(values[hanging], TimeoutError)
    assert hanging.cancelled
    assert "Hanging" in caplog.text


async def test_send_timeout_cuts_off_later_priority_tiers(caplog: pytest.LogCaptureFixture) -> None:
    sig = Signal()
    hanging = Hanging()
    later: list[str] = []

    async def low(sender: Any) -> None:
        later.append("ran")

    sig.connect(hanging, weak=False, priority=1)
    sig.connect(low)
    with anyio.fail_after(DEADLOCK):
        results = await sig.send_async(_timeout=0.05, _errors="collect")
    assert [r for r, _ in results] == [hanging, low]
    assert all(isinstance(value, TimeoutError) for _, value in results)
    assert later == []


async def test_send_timeout_with_per_receiver_timeouts_collects() -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(hanging, weak=False, timeout=60)
    sig.connect(quick)
    with anyio.fail_after(DEADLOCK):
        results = await sig.send_async(_timeout=0.05, _errors="collect")
    assert isinstance(results[0][1], TimeoutError)
    assert results[1] == (quick, "quick")


async def test_receivers_that_finish_in_time_are_not_timed_out() -> None:
    sig = Signal()
    sig.connect(quick)
    sig.connect(instant)
    with anyio.fail_after(DEADLOCK):
        assert await sig.send_async(_timeout=5, _receiver_timeout=5) == [
            (quick, "quick"),
            (instant, "instant"),
        ]


# --- errors ---------------------------------------------------------------------------------------


class Boom(Exception):
    pass


async def test_one_failure_cancels_the_others_and_is_raised_as_itself() -> None:
    sig = Signal()
    hanging = Hanging()
    error = Boom("receiver failed")

    async def failing(sender: Any) -> None:
        await hanging.started.wait()
        raise error

    sig.connect(hanging, weak=False)
    sig.connect(failing)
    with anyio.fail_after(DEADLOCK), pytest.raises(Boom) as caught:
        await sig.send_async()
    assert caught.value is error
    assert hanging.cancelled


async def test_failure_in_inline_phase_is_raised_as_itself_and_stops_the_rest() -> None:
    sig = Signal()
    ran: list[str] = []

    async def failing(sender: Any) -> None:
        raise Boom("first")

    async def later(sender: Any) -> None:
        ran.append("later")

    sig.connect(failing)
    sig.connect(later)
    with pytest.raises(Boom, match="first"):
        await sig.send_async()
    assert ran == []


async def test_sync_receiver_failure_is_raised_as_itself() -> None:
    sig = Signal()
    hanging = Hanging()

    def failing(sender: Any) -> None:
        raise Boom("sync")

    sig.connect(hanging, weak=False)
    sig.connect(failing)
    with anyio.fail_after(DEADLOCK), pytest.raises(Boom, match="sync"):
        await sig.send_async()
    assert hanging.cancelled


@pytest.mark.parametrize("options", [{}, {"_limit": 5}, {"_receiver_timeout": 30}])
async def test_several_failures_at_once_form_an_exception_group_in_dispatch_order(
    options: dict[str, Any],
) -> None:
    sig = Signal()
    all_started = anyio.Event()
    started = 0

    def make(i: int) -> Callable[..., Awaitable[None]]:
        async def failing(sender: Any) -> None:
            nonlocal started
            started += 1
            if started < 2:
                await all_started.wait()
            else:
                all_started.set()
            # No checkpoint between the barrier and the raise: both fail in one round,
            # the second-connected one first.
            raise Boom(f"failure {i}")

        return failing

    first, second = make(0), make(1)
    sig.connect(first)
    sig.connect(second)
    with anyio.fail_after(DEADLOCK), pytest.raises(ExceptionGroup) as caught:
        await sig.send_async(**options)
    assert [str(e) for e in caught.value.exceptions] == ["failure 0", "failure 1"]


async def test_collect_runs_everything_and_logs_with_the_qualified_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sig = Signal()
    error = Boom("collected")

    async def audit_failure(sender: Any) -> None:
        await anyio.lowlevel.checkpoint()
        raise error

    def sync_failure(sender: Any) -> None:
        raise KeyError("sync")

    sig.connect(audit_failure)
    sig.connect(quick)
    sig.connect(sync_failure)
    sig.connect(instant)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        results = await sig.send_async(_errors="collect")
    assert results[0] == (audit_failure, error)
    assert results[1] == (quick, "quick")
    assert isinstance(results[2][1], KeyError)
    assert results[3] == (instant, "instant")
    names = [record.getMessage() for record in caplog.records if record.name == "asignal"]
    assert any(
        "test_dispatch.test_collect_runs_everything_and_logs_with_the_qualified_name"
        ".<locals>.audit_failure" in n
        for n in names
    )
    assert any("sync_failure" in n for n in names)
    assert all(r.exc_info for r in caplog.records if r.name == "asignal")


async def test_collect_never_swallows_base_exceptions() -> None:
    sig = Signal()

    class Fatal(BaseException):
        pass

    async def fatal(sender: Any) -> None:
        raise Fatal

    sig.connect(fatal)
    with pytest.raises(Fatal):
        await sig.send_async(_errors="collect")


# --- cancellation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"_timeout": 30}, {"_errors": "collect"}, {"_limit": 2}, {"_sequential": True}],
)
async def test_cancelling_the_sender_cancels_every_receiver(options: dict[str, Any]) -> None:
    sig = Signal()
    receivers = [Hanging() for _ in range(3)]
    for receiver in receivers:
        sig.connect(receiver, weak=False)
    returned = False

    async def sender() -> None:
        nonlocal returned
        await sig.send_async(**options)
        returned = True

    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            await receivers[0].started.wait()
            if not options.get("_sequential"):
                for receiver in receivers[1:2]:
                    await receiver.started.wait()
            tg.cancel_scope.cancel()
    assert not returned
    started = [r for r in receivers if r.started.is_set()]
    assert started
    assert all(r.cancelled for r in started)


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


# --- one coroutine receiver (its own path: no driver, no group) --------------------------------


async def test_single_receiver_timeout_raises_and_cancels_it() -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK), pytest.raises(TimeoutError, match=r"timed out after"):
        await sig.send_async(_timeout=0.05)
    assert hanging.cancelled


async def test_single_receiver_timeout_collects() -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK):
        [(receiver, value)] = await sig.send_async(_timeout=0.05, _errors="collect")
    assert receiver is hanging
    assert isinstance(value, TimeoutError)
    assert hanging.cancelled


async def test_single_receivers_own_timeout_error_is_not_the_sends() -> None:
    sig = Signal()
    own = TimeoutError("the receiver's own")

    async def gives_up(sender: Any) -> None:
        await anyio.lowlevel.checkpoint()
        raise own

    sig.connect(gives_up)
    with pytest.raises(TimeoutError) as caught:
        await sig.send_async(_timeout=30)
    assert caught.value is own
    assert await sig.send_async(_timeout=30, _errors="collect") == [(gives_up, own)]


@pytest.mark.parametrize("suspends", [True, False])
async def test_single_receiver_errors(suspends: bool) -> None:
    sig = Signal()
    error = Boom("single")

    async def failing(sender: Any, **kwargs: Any) -> None:
        if suspends:
            await anyio.lowlevel.checkpoint()
        raise error

    sig.connect(failing)
    with pytest.raises(Boom) as caught:
        await sig.send_async(x=1)
    assert caught.value is error
    assert await sig.send_async(_errors="collect", x=1) == [(failing, error)]


async def test_single_receiver_is_cancelled_with_its_sender() -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sig.send_async)
            await hanging.started.wait()
            tg.cancel_scope.cancel()
    assert hanging.cancelled
