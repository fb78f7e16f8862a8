"""Failures under load, on asyncio and trio: several failures of one scheduling round are
all reported, a receiver's own cancellation is its failure under "collect", and a failing
receiver leaves no reference cycle behind."""

from __future__ import annotations

import gc
import logging
import weakref
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from asignal import Signal

pytestmark = pytest.mark.anyio

# Safety net only: a broken dispatcher must fail a test, not hang the suite.
DEADLOCK = 10


# --- several failures at once ------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"_timeout": 30}])
async def test_failures_after_one_rendezvous_are_all_reported(options: dict[str, Any]) -> None:
    # Both wait for one event, then fail: the first on the sender's task, the second in
    # a task of its own. Both steps are queued in the same scheduling round, so the
    # group must hold both, whichever runs first, in dispatch order.
    sig = Signal()
    event = anyio.Event()

    async def first(sender: Any) -> None:
        await event.wait()
        raise ValueError("first")

    async def second(sender: Any) -> None:
        await event.wait()
        raise KeyError("second")

    async def release(sender: Any) -> None:
        await anyio.lowlevel.checkpoint()
        event.set()

    for receiver in (first, second, release):
        sig.connect(receiver, weak=False)
    with anyio.fail_after(DEADLOCK), pytest.raises(ExceptionGroup) as caught:
        await sig.send_async(**options)
    assert [type(e) for e in caught.value.exceptions] == [ValueError, KeyError]


async def test_a_failure_on_the_first_step_stops_the_rest_as_blinker_does() -> None:
    sig = Signal()
    ran: list[str] = []

    async def failing(sender: Any) -> None:
        raise ValueError("at once")

    async def later(sender: Any) -> None:
        ran.append("later")

    sig.connect(failing, weak=False)
    sig.connect(later, weak=False)
    with pytest.raises(ValueError, match="at once"):
        await sig.send_async()
    assert ran == []


# --- a receiver's own cancellation ---------------------------------------------------------------


async def cancels_itself(sender: Any, **kwargs: Any) -> str:
    """Raises the backend's cancellation exception while nobody cancelled the send: it
    re-raises the one that a scope of its own, since closed, delivered to it."""
    caught: BaseException | None = None
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.lowlevel.checkpoint()
        except anyio.get_cancelled_exc_class() as exc:
            caught = exc
    assert caught is not None
    raise caught


async def returns(sender: Any, **kwargs: Any) -> str:
    await anyio.lowlevel.checkpoint()
    return "fine"


def fine_at_once(sender: Any, **kwargs: Any) -> str:
    return "fine"


@pytest.mark.parametrize(
    ("receivers", "options"),
    [
        ((cancels_itself,), {}),
        ((cancels_itself,), {"_timeout": 30}),
        ((cancels_itself, returns), {}),
        ((returns, cancels_itself, fine_at_once), {}),
        ((returns, cancels_itself), {"_timeout": 30}),
        ((cancels_itself, returns), {"_sequential": True}),
        ((returns, cancels_itself), {"_limit": 1}),
    ],
    ids=[
        "single",
        "single-timeout",
        "on-senders-task",
        "beside",
        "with-timeout",
        "sequential",
        "limit",
    ],
)
async def test_a_receivers_own_cancellation_is_collected_as_its_failure(
    receivers: tuple[Any, ...], options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    sig = Signal()
    for receiver in receivers:
        sig.connect(receiver, weak=False)
    with caplog.at_level(logging.ERROR, logger="asignal"), anyio.fail_after(DEADLOCK):
        results = await sig.send_async(_errors="collect", **options)
    assert [r for r, _ in results] == list(receivers)
    for receiver, value in results:
        if receiver is cancels_itself:
            assert isinstance(value, anyio.get_cancelled_exc_class())
        else:
            assert value == "fine"
    messages = [r.getMessage() for r in caplog.records if r.name == "asignal"]
    cancelled = anyio.get_cancelled_exc_class().__name__
    assert [m for m in messages if "cancels_itself" in m] == [
        f"receiver tests.test_dispatch_failures.cancels_itself of signal {sig!r} raised {cancelled}"
    ]
    assert not any("did not finish" in m for m in messages)
    # The send really was not cancelled: this task goes on.
    await anyio.lowlevel.checkpoint()


async def test_a_real_cancellation_of_the_sender_still_propagates_under_collect() -> None:
    sig = Signal()
    started = anyio.Event()
    finished = False

    async def hangs(sender: Any) -> None:
        started.set()
        await anyio.sleep_forever()

    sig.connect(hangs, weak=False)
    sig.connect(returns, weak=False)

    async def sender() -> None:
        nonlocal finished
        await sig.send_async(_errors="collect")
        finished = True

    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            await started.wait()
            tg.cancel_scope.cancel()
    assert not finished


# --- no reference cycles -----------------------------------------------------------------------


class Owner:
    """Owns a weakly connected bound-method receiver."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def on_signal(self, sender: Any, **kwargs: Any) -> str:
        self.calls.append("owner")
        return "owner"


class Payload:
    """Stands in for a request: what a send's kwargs must not keep alive."""


async def fails(sender: Any, **kwargs: Any) -> None:
    raise ValueError("receiver bug")


async def fails_later(sender: Any, **kwargs: Any) -> None:
    await anyio.lowlevel.checkpoint()
    raise ValueError("receiver bug")


def fails_sync(sender: Any, **kwargs: Any) -> None:
    raise ValueError("receiver bug")


async def suspends_first(sender: Any, **kwargs: Any) -> str:
    await anyio.lowlevel.checkpoint()
    return "lead"


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_cyclic_gc")
@pytest.mark.parametrize(
    ("lead", "failing", "options"),
    [
        (None, fails, {}),
        (None, fails_sync, {}),
        (None, fails_later, {}),
        (suspends_first, fails_sync, {}),
        (suspends_first, fails_later, {"_timeout": 30}),
        (None, fails_sync, {"_sequential": True}),
        (None, fails_later, {"_limit": 2}),
    ],
    ids=[
        "inline",
        "inline-sync",
        "hand-off",
        "hand-off-sync",
        "hand-off-timeout",
        "plain-sync",
        "plain-limit",
    ],
)
async def test_a_failing_receiver_leaves_no_cycle(
    lead: Any, failing: Any, options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # ``lead`` suspends first, so that the others start beside it (the hand-off).
    sig = Signal()
    calls: list[str] = []
    owner = Owner(calls)
    if lead is not None:
        sig.connect(lead, weak=False)
    sig.connect(owner.on_signal)  # weak, as blinker's default
    sig.connect(failing, weak=False)
    sig.connect(returns, weak=False)
    payload = Payload()
    payload_ref = weakref.ref(payload)
    with caplog.at_level(logging.CRITICAL, logger="asignal"):
        results = await sig.send_async(None, _errors="collect", request=payload, **options)
        assert isinstance(results[-2][1], ValueError)
        del results
        # The send is over: the payload must be gone without the cyclic GC's help.
        del payload
        assert payload_ref() is None
        del owner
        results = await sig.send_async(None, _errors="collect", **options)
    assert calls == ["owner"]  # not called by the second send: its owner is gone
    assert [r for r, _ in results][-2:] == [failing, returns]


@pytest.mark.usefixtures("no_cyclic_gc")
@pytest.mark.parametrize(
    ("receivers", "options"),
    [
        ((fails, returns), {}),
        ((fails_sync, returns), {}),
        ((fails_later, returns), {}),
        ((suspends_first, fails_sync, returns), {}),
        ((fails_later, returns), {"_timeout": 30}),
        ((fails_later,), {}),
        ((fails_later, returns), {"_sequential": True}),
        ((fails_later, returns), {"_limit": 2}),
        ((fails_sync, returns), {"_limit": 2}),
    ],
    ids=[
        "inline",
        "inline-sync",
        "hand-off",
        "hand-off-sync",
        "hand-off-timeout",
        "single",
        "sequential",
        "plain-limit",
        "plain-limit-sync",
    ],
)
async def test_a_raised_failure_leaves_no_cycle(
    receivers: tuple[Any, ...], options: dict[str, Any]
) -> None:
    # Under "raise" the exception reaches the caller; once the caller is done with it,
    # the send's kwargs must go at once, like any exception's.
    sig = Signal()
    for receiver in receivers:
        sig.connect(receiver, weak=False)
    payload = Payload()
    payload_ref = weakref.ref(payload)
    raised = False
    try:
        await sig.send_async(None, request=payload, **options)
    except ValueError:
        raised = True
    assert raised
    del payload
    assert payload_ref() is None


@pytest.mark.usefixtures("no_cyclic_gc")
@pytest.mark.parametrize("when", ["first-step", "after-lead-returned"])
async def test_a_failure_beside_a_receiver_that_returns_leaves_nothing(
    when: str, anyio_backend: str
) -> None:
    # A receiver started beside the suspended one fails, and the suspended one then
    # returns: on asyncio the task group's body is over before the group has heard of
    # the failure. Its __aexit__ then cancels this task while it waits, after balancing
    # its cancellations: on CPython 3.11 the task stayed cancelling() == 1 (its next
    # sends' own cancellations misread), and the cancellation that __aexit__ swallowed
    # kept the send's kwargs and resolved weak receivers alive.
    sig = Signal()
    calls: list[str] = []
    owner = Owner(calls)
    owner_ref = weakref.ref(owner)
    returned = anyio.Event()

    async def lead(sender: Any, **kwargs: Any) -> str:
        await anyio.lowlevel.checkpoint()
        returned.set()
        return "lead"

    async def fails_after_lead(sender: Any, **kwargs: Any) -> None:
        await returned.wait()
        raise ValueError("receiver bug")

    sig.connect(lead, weak=False)
    sig.connect(fails if when == "first-step" else fails_after_lead, weak=False)
    sig.connect(owner.on_signal)  # weak, as blinker's default
    payload = Payload()
    payload_ref = weakref.ref(payload)
    raised = False
    try:
        await sig.send_async(None, request=payload)
    except ValueError:
        raised = True
    assert raised
    assert calls == ["owner"]
    if anyio_backend == "asyncio":
        import asyncio

        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0
    del payload, owner
    assert payload_ref() is None
    assert owner_ref() is None
