"""The concurrent path, backend-neutral part: one send's tiers, and one tier's hand-off.

How a tier of equal-priority receivers runs in the default (concurrent) mode:

1. *Inline phase* (``_inline.py``): the receivers are awaited one after another in the
   sender's task, in a copy of the sender's context.
2. *Hand-off*: the first time a receiver really suspends, its suspension surfaces to
   :meth:`TierRun.begin`. That receiver stays on the sender's task (its first step ran
   there: whatever it captured, ``current_task()``, cancel scopes, stays true); the
   receivers not yet started are taken from the shared iterator and started beside it
   as real tasks of the running backend (``_asyncio.py``: an ``asyncio.TaskGroup``;
   ``_trio.py``: a nursery opened before the tier's first receiver started), and the
   suspended receiver is driven to its end on the sender's task.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._common import (
    PENDING,
    Entry,
    Plan,
    Result,
    collected,
    expired,
    failure_of,
    on_trio,
    own_cancellation,
    send_expired,
)
from ._inline import drive, inline, spawned

if TYPE_CHECKING:
    from .._signal import Signal

__all__ = ["Send", "TierRun", "no_start"]


class Send:
    """One concurrent ``send_async``: the tiers run one after another, each as a
    :class:`TierRun`, all under one deadline (on the running backend's clock)."""

    __slots__ = ("collect", "deadline", "failures", "kwargs", "results", "sender", "signal")

    def __init__(self, signal: Signal, sender: Any, kwargs: dict[str, Any], collect: bool) -> None:
        self.signal = signal
        self.sender = sender
        self.kwargs = kwargs
        self.collect = collect
        self.results: list[Result] = []
        # (index in tier, exception) of each failed receiver, raise policy only.
        self.failures: list[tuple[int, BaseException]] = []
        self.deadline = float("inf")

    async def run_inline(self, plan: Plan) -> list[Result]:
        """Only sync receivers: nothing can suspend, on any backend."""
        for tier in plan.tiers:
            TierRun(self, tier).begin()
        return self.take_results()

    def take_results(self) -> list[Result]:
        """The results, which this send then forgets: a collected exception of a sync
        receiver links back to frames that reference this object, which must then not
        lead back to the exception (a reference cycle)."""
        results = self.results
        self.results = []
        return results

    def runs(
        self,
        plan: Plan,
        first: TierRun | None,
        timeout: float | None,
        now: Callable[[], float],
    ) -> Iterator[tuple[TierRun, bool, int]]:
        """Each tier's run in turn, with whether it has already begun (``first``, the
        first tier's) and its number of coroutine receivers. A later tier that the
        deadline passed before it started is not run: its receivers are expired instead.

        The first tier always runs, even under a deadline already past (``_timeout=0``,
        an adapter's spent budget), as the body of anyio's and trio's
        ``fail_after(0)`` does: each receiver runs until its first checkpoint, where it
        is cancelled. Receivers that return without suspending keep their values, on
        both backends alike (asyncio's inline fast path never checks the clock first).
        """
        for index, (tier, async_count) in enumerate(
            zip(plan.tiers, plan.async_counts, strict=True)
        ):
            if first is not None:
                yield first, True, async_count
                first = None
            elif index and timeout is not None and now() >= self.deadline:
                self._expire_unstarted(tier, timeout)
            else:
                yield TierRun(self, tier), False, async_count

    def failure_of(self, group: BaseExceptionGroup[BaseException]) -> BaseException:
        """What to raise for what a task group or nursery gathered: the failures in
        dispatch order, one as itself. A group that holds anything but the receivers'
        ``Exception``\\ s (a cancellation, ``KeyboardInterrupt``) goes on as it is,
        unwrapped when it holds just one. Raise it outside the ``except`` block that
        caught ``group`` (see ``_common.failure_of``)."""
        if group.subgroup(lambda e: not isinstance(e, Exception)) is None and self.failures:
            failure = failure_of(self.signal, self.failures)
        elif len(group.exceptions) == 1:
            failure = group.exceptions[0]
        else:
            return group
        # The group is dropped. CPython 3.11's TaskGroup (and anyio's) keeps it in a
        # cycle through its traceback's __aexit__ frame, and with it our frames (and so
        # the send's kwargs) until the cyclic GC runs.
        group.__traceback__ = None
        context = group.__context__
        if context is not None and not isinstance(context, Exception):
            # The cancellation that the group swallowed (it cancelled this task when a
            # child failed). The running step of the task holds it until the task next
            # suspends, and its traceback holds our frames, and so the send's kwargs.
            context.__traceback__ = None
        return failure

    def _expire_unstarted(self, tier: tuple[Entry, ...], timeout: float) -> None:
        if not self.collect:
            raise send_expired(self.signal, timeout)
        for get, _, _ in tier:
            receiver = get()
            if receiver is not None:
                self.results.append((receiver, expired(self.signal, receiver, timeout, log=True)))


class TierRun:
    """One tier of equal-priority receivers: the inline phase, then, if a receiver
    suspended, the hand-off of the rest."""

    __slots__ = (
        "at",
        "current",
        "drv",
        "pending",
        "receivers",
        "rest",
        "run",
        "send",
        "slots",
        "tier",
    )

    def __init__(self, send: Send, tier: tuple[Entry, ...]) -> None:
        self.send = send
        self.tier = tier
        self.rest: list[Entry] = []
        self.at = -1

    def begin(self) -> bool:
        """Run the inline phase. Returns whether a receiver suspended (then ``adopt``
        has recorded it and the receivers it left unstarted)."""
        send = self.send
        it = iter(self.tier)
        drv = inline(send.signal, it, send.sender, send.kwargs, send.results, send.collect)
        run = contextvars.copy_context().run
        try:
            pending = run(drv.send, None)
        except StopIteration:
            return False
        except Exception as exc:
            send.failures.append((-1, exc))
            raise
        self.adopt(drv, pending, run, it)
        return True

    def adopt(
        self,
        drv: Any,
        pending: Any,
        run: Callable[..., Any],
        it: Iterator[Entry],
    ) -> None:
        """Take over an inline phase whose receiver suspended with ``pending``.

        The rest of the tier is taken from the shared iterator to be started beside it.
        """
        self.drv = drv
        self.pending = pending
        self.run = run
        self.rest = list(it)  # drains the iterator: the inline loop ends after this one
        self.at = len(self.send.results)
        # The suspended receiver's index in the tier: just before the ones taken.
        self.current = len(self.tier) - len(self.rest) - 1
        self.slots: list[Any] = [PENDING] * len(self.tier)
        self.receivers: list[Any] = [None] * len(self.tier)

    async def drive_beside(
        self, start: Callable[..., Any], cancel: Callable[[], Any] | None
    ) -> None:
        """:meth:`start_beside`, then :meth:`drive`."""
        await self.start_beside(start, cancel)
        await self.drive()

    async def start_beside(
        self, start: Callable[..., Any], cancel: Callable[[], Any] | None
    ) -> None:
        """Start the rest of the tier with ``start`` (a task group's or nursery's), and
        call its sync receivers. ``cancel`` cancels this task (asyncio) or a scope around
        the tier (trio); ``None`` where no scope was opened because no failure can be
        raised (the collect policy)."""
        try:
            self._start_rest(start)
        except BaseException:
            # A sync receiver failed under the raise policy: the suspended receiver is
            # on this task, so no group will cancel it for us.
            await self._abort(cancel)
            raise

    async def _abort(self, cancel: Callable[[], Any] | None) -> None:
        if cancel is None:
            # Only a BaseException can get here (collect policy, no scope): close the
            # suspended receiver so its finally blocks run, then let it propagate.
            self.drv.close()
            return
        trio = sys.modules.get("trio") if on_trio() else None
        asyncio = None if trio is not None else sys.modules["asyncio"]
        task = None if asyncio is None else asyncio.current_task()
        cancel()
        try:
            await drive(self.drv, self.pending, self.run)
        except BaseException as exc:
            # Swallow only the cancellation just requested; anything else goes on.
            if trio is not None:
                if not isinstance(exc, trio.Cancelled):
                    raise
            elif (
                asyncio is None
                or task is None
                or not isinstance(exc, asyncio.CancelledError)
                or task.uncancel() > 0
            ):
                raise
            # Swallowed; but asyncio's task may keep it for reuse, and its traceback
            # would keep this frame (and the send's kwargs) alive with it.
            exc.__traceback__ = None

    async def drive(self) -> None:
        """Drive the suspended receiver to its end on this task."""
        try:
            await drive(self.drv, self.pending, self.run)
        except Exception as exc:
            self.send.failures.append((self.current, exc))
            raise

    def _start_rest(self, start: Callable[..., Any]) -> None:
        send = self.send
        for index, (get, is_async, _) in enumerate(self.rest, self.current + 1):
            receiver = get()
            if receiver is None:
                continue
            self.receivers[index] = receiver
            if is_async:
                start(
                    spawned,
                    send.signal,
                    receiver,
                    send.sender,
                    send.kwargs,
                    self.slots,
                    index,
                    send.collect,
                    send.failures,
                )
                continue
            # Sync receivers are called right here, in dispatch order, in the context of
            # the inline phase.
            try:
                self.slots[index] = self.run(receiver, send.sender, **send.kwargs)
            except Exception as exc:
                if not send.collect:
                    send.failures.append((index, exc))
                    raise
                self.slots[index] = collected(send.signal, receiver, exc)
            except BaseException as exc:
                if not send.collect or not own_cancellation(exc):
                    raise
                self.slots[index] = collected(send.signal, receiver, exc)

    def finish(self, timeout: float | None) -> None:
        """Append the hand-off's results in dispatch order; under the collect policy a
        receiver the deadline cut off gets a ``TimeoutError`` as its value."""
        if self.at < 0:
            return
        send = self.send
        seconds = timeout or 0.0
        if len(send.results) == self.at:
            # The suspended receiver never finished: the deadline cut it off.
            receiver = self.tier[self.current][0]()
            if receiver is not None:
                send.results.append((receiver, expired(send.signal, receiver, seconds, log=True)))
        for receiver, value in zip(self.receivers, self.slots, strict=True):
            if receiver is None:
                continue
            if value is PENDING:
                value = expired(send.signal, receiver, seconds, log=True)
            send.results.append((receiver, value))
        self.slots.clear()  # see Send.take_results


def no_start(*args: Any) -> None:  # pragma: no cover - only reached with async receivers
    raise AssertionError("no async receiver left to start")
