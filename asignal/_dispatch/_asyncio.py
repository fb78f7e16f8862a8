"""The concurrent path on asyncio: a tier's hand-off in an ``asyncio.TaskGroup``.

On asyncio nothing must be opened before a receiver starts: a task group can be entered
at the hand-off, once a receiver has suspended, and a deadline armed only then. So
``send_async`` runs every tier's inline phase itself and calls :func:`resume` only when
a receiver suspends: a send whose receivers never suspend costs no task, no group and
no timer.

asyncio is taken from ``sys.modules``: it is imported whenever this code runs, and
``import asignal`` must not import it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from time import monotonic
from typing import TYPE_CHECKING, Any

from ._common import (
    Entry,
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
    import asyncio

    from .._signal import Signal

__all__ = ["resume", "resume_single", "run"]


async def run(
    send: Send,
    plan: Plan,
    send_timeout: float | None,
    started: float | None = None,
    first: TierRun | None = None,
) -> list[Result]:
    """Run every tier of ``plan`` under ``send_timeout`` seconds. ``first``: the first
    tier, already past its inline phase (begun by ``send_async``) at ``started`` on
    ``time.monotonic``."""
    timeout = send_timeout
    aio = sys.modules["asyncio"]
    loop = aio.get_running_loop()
    if timeout is not None:
        elapsed = monotonic() - started if started is not None else 0.0
        send.deadline = loop.time() + timeout - elapsed
    failure: BaseException | None = None
    try:
        for tier_run, suspended, _ in send.runs(plan, first, timeout, loop.time):
            try:
                if suspended or tier_run.begin():
                    if timeout is None:
                        await _rest(aio, tier_run)
                    else:
                        # Armed only now that something suspended: a send whose receivers
                        # all finish inline never pays for a timer.
                        async with aio.timeout_at(send.deadline):
                            await _rest(aio, tier_run)
            except TimeoutError:
                if send.failures:
                    raise  # a receiver's own TimeoutError
                if not send.collect:
                    raise send_expired(send.signal, timeout or 0.0) from None
            except BaseExceptionGroup as group:
                failure = send.failure_of(group)
            if failure is not None:
                try:
                    raise failure  # outside the handler: see failure_of
                finally:
                    del failure  # this frame is in its traceback
            tier_run.finish(timeout)
    except BaseException:
        # Its traceback holds frames that reference this send, which must then not
        # hold the failures: a reference cycle (see failure_of).
        send.failures.clear()
        raise
    return send.take_results()


async def _rest(aio: Any, tier_run: TierRun) -> None:
    """The hand-off: start the rest of the tier in a task group, drive the suspended
    receiver on this task inside the group's body."""
    task = aio.current_task()
    if not any(is_async for _, is_async, _ in tier_run.rest):
        await tier_run.drive_beside(no_start, task.cancel)
        return
    tasks: list[asyncio.Task[Any]] = []
    async with aio.TaskGroup() as tg:

        def start(fn: Callable[..., Any], *args: Any) -> None:
            tasks.append(tg.create_task(fn(*args)))

        await tier_run.start_beside(start, task.cancel)
        try:
            await tier_run.drive()
        except Exception:
            if len(tier_run.send.failures) == 1:
                # Ours is the round's first failure. Leaving the group's body now would
                # cancel siblings whose steps this same scheduling round has already
                # queued (both woken by one event, say), and their failures would be
                # lost. One trip through the loop lets those steps run first, as they
                # do when a child task fails first: the group then reports them all.
                await aio.sleep(0)
            raise
        # Children still running, or failed with their group not told yet (its
        # done-callback is queued): waited for here, in the body. A child failing
        # while the group's __aexit__ waits has the group cancel this task once
        # __aexit__ has balanced its cancellations: CPython 3.11 then leaves the task
        # cancelling(), and the cancellation, swallowed in __aexit__, keeps the send's
        # kwargs alive.
        waiting = [
            t for t in tasks if not t.done() or (not t.cancelled() and t.exception() is not None)
        ]
        if waiting:
            await aio.wait(waiting)


async def resume(
    signal: Signal,
    plan: Plan,
    sender: Any,
    kwargs: dict[str, Any],
    collect: bool,
    send_timeout: float | None,
    started: float | None,
    results: list[Result],
    inline: tuple[Any, Any, Callable[..., Any], Iterator[Entry]],
) -> list[Result]:
    """Carry on a ``send_async`` whose inline phase, started by the caller, hit a
    receiver that suspended. ``inline`` is ``(coroutine, its pending yield, the
    context's run, the shared iterator)``."""
    send = Send(signal, sender, kwargs, collect)
    send.results = results
    first = TierRun(send, plan.tiers[0])
    first.adopt(*inline)
    return await run(send, plan, send_timeout, started, first)


async def resume_single(
    signal: Signal,
    receiver: Any,
    coro: Any,
    pending: Any,
    step: Callable[..., Any],
    collect: bool,
    send_timeout: float | None,
    started: float,
) -> list[Result]:
    """Carry on a send to a tier of one coroutine receiver, whose first step (started by
    ``send_async`` in ``step``'s context at ``started`` on ``time.monotonic``) suspended
    with ``pending``. Nothing can run beside it, so it needs no task group and no
    nursery: it goes on on the sender's task, on either backend. (On trio a send timeout
    takes the general path instead: its scope must be open before the receiver starts.)
    """
    timer: asyncio.Timeout | None = None
    try:
        if send_timeout is None:
            value = await drive(coro, pending, step)
        else:
            # Placed on the loop's clock only now that the receiver has suspended.
            aio = sys.modules["asyncio"]
            deadline = aio.get_running_loop().time() + send_timeout - (monotonic() - started)
            async with aio.timeout_at(deadline) as timer:
                value = await drive(coro, pending, step)
    except TimeoutError as exc:
        if timer is None or not timer.expired():
            if not collect:
                raise  # the receiver's own TimeoutError
            value = collected(signal, receiver, exc)
        elif collect:
            value = expired(signal, receiver, send_timeout or 0.0, log=True)
        else:
            raise send_expired(signal, send_timeout or 0.0) from None
    except BaseException as exc:
        if not collectible(exc, collect):
            raise
        value = collected(signal, receiver, exc)
    return [(receiver, value)]
