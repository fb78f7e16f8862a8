"""The concurrent path on trio: a real nursery, opened on the sender's task before the
tier's first receiver starts.

trio's cancel scopes nest strictly, and a receiver may open its own during its first
step, so a scope of ours, and the nursery its siblings will run in, must be open before
any receiver starts, even when none of them will ever suspend. That costs an empty
nursery per send (benchmarks/bench_async.py measures it against trio's own floor), and
buys what trio users rely on: receivers are ordinary children of the sender's task
(Ctrl-C reaches a busy receiver, the task tree is true), a failure cancels its siblings
and is raised with every other failure of the same scheduling round, and a cancelled or
expired sender cancels them all.

A tier with fewer than two coroutine receivers has nothing to run beside the suspended
one: it opens just a cancel scope, and only when a deadline or the raise policy needs
one. trio is taken from ``sys.modules``: it is imported whenever this code runs.
"""

from __future__ import annotations

import sys
from contextvars import copy_context
from typing import TYPE_CHECKING, Any

from ._common import (
    Plan,
    Result,
    collected,
    collectible,
    expired,
    send_expired,
)
from ._inline import drive
from ._tier import Send, TierRun, no_start

if TYPE_CHECKING:
    from .._signal import Signal

__all__ = ["run", "single_on_trio"]


async def run(send: Send, plan: Plan, send_timeout: float | None) -> list[Result]:
    """Run every tier of ``plan`` on trio, under ``send_timeout`` seconds for them all."""
    timeout = send_timeout
    trio = sys.modules["trio"]
    if timeout is not None:
        send.deadline = trio.current_time() + timeout
    try:
        for tier_run, _, async_count in send.runs(plan, None, timeout, trio.current_time):
            if async_count > 1:
                await _in_nursery(trio, send, tier_run, timeout)
            else:
                await _in_scope(trio, send, tier_run, timeout)
            tier_run.finish(timeout)
    except BaseException:
        # Its traceback holds frames that reference this send, which must then not
        # hold the failures: a reference cycle (see failure_of).
        send.failures.clear()
        raise
    return send.take_results()


async def _in_nursery(trio: Any, send: Send, tier_run: TierRun, send_timeout: float | None) -> None:
    timeout = send_timeout
    failure: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            # The nursery's own scope carries the deadline: one scope fewer to open.
            scope = nursery.cancel_scope
            if timeout is not None:
                scope.deadline = send.deadline
            if tier_run.begin():
                await tier_run.drive_beside(nursery.start_soon, scope.cancel)
    except BaseExceptionGroup as group:
        failure = send.failure_of(group)
    if failure is not None:
        try:
            raise failure  # outside the handler: see failure_of
        finally:
            del failure  # this frame is in its traceback
    if scope.cancelled_caught and timeout is not None and not send.collect:
        raise send_expired(send.signal, timeout)


async def _in_scope(trio: Any, send: Send, tier_run: TierRun, send_timeout: float | None) -> None:
    timeout = send_timeout
    # The scope serves the deadline, and under the raise policy cancels the receiver
    # left on this task when a sync receiver beside it fails.
    if timeout is None and send.collect:
        if tier_run.begin():
            await tier_run.drive_beside(no_start, None)
        return
    with trio.CancelScope(deadline=send.deadline) as scope:
        if tier_run.begin():
            await tier_run.drive_beside(no_start, scope.cancel)
    if scope.cancelled_caught and timeout is not None and not send.collect:
        raise send_expired(send.signal, timeout)


async def single_on_trio(
    signal: Signal,
    receiver: Any,
    sender: Any,
    kwargs: dict[str, Any],
    collect: bool,
    send_timeout: float,
) -> list[Result]:
    """A send to one coroutine receiver under ``send_timeout`` seconds: the deadline's
    scope, then the receiver inside it, in a copy of the sender's context. (trio's cancel
    scope is most of what this costs; the general path would add a tier's machinery.)"""
    timeout = send_timeout
    trio = sys.modules["trio"]
    step = copy_context().run
    value: Any = None
    with trio.CancelScope(deadline=trio.current_time() + timeout) as scope:
        try:
            coro = receiver(sender, **kwargs)
            try:
                pending = step(coro.send, None)
            except StopIteration as stop:
                value = stop.value
            else:
                value = await drive(coro, pending, step)
        except BaseException as exc:
            if not collectible(exc, collect):
                raise
            value = collected(signal, receiver, exc)
    if scope.cancelled_caught:
        if not collect:
            raise send_expired(signal, timeout)
        value = expired(signal, receiver, timeout, log=True)
    return [(receiver, value)]
