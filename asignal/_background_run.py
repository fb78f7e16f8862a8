"""How a :class:`~asignal.BackgroundRunner` runs what it was handed: one call, or the
batch of a send's background receivers, in tasks of its one task group (and how a call
is handed to it from another thread).

Scheduling only queues the work: the runner's feeder task (:func:`feed`) creates the
tasks at the event loop's next turn, off the path of whoever scheduled.

A batch (every background receiver of one send) is started as **one** task. That task
takes the calls in dispatch order and steps each inline, in a copy of the send's context:
a call that returns without suspending has then cost no task at all. The first call that
suspends keeps the task; the rest of the batch is handed, as one task again, to the task
group before the suspended call is driven on. So a batch costs one task plus one per call
that suspends, never more than one task per call, and the calls still run concurrently.

Each call keeps everything a call of its own has: its :class:`~asignal.Scheduled`
record, its slot of ``max_pending``, its timeout (a cancel scope opened before its first
step: trio's scopes nest strictly, and a receiver may open its own in that step), its
count in ``stats``, and its log line by name. A call still waiting in a batch that the
drain cancels is counted and logged with the calls its runner never got to start.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import anyio

from . import _observe
from ._dispatch._inline import drive

if TYPE_CHECKING:
    from ._background import BackgroundRunner
    from ._background_types import Scheduled

__all__ = ["Item", "feed", "from_thread", "inside", "run_batch", "run_call"]

logger: Final = logging.getLogger("asignal")

#: One call as a task runs it: ``(fn, args, its Scheduled, its timeout in seconds)``.
Item = tuple[Callable[..., Awaitable[Any]], tuple[Any, ...], "Scheduled", "float | None"]


#: The runner whose call is running in this context (see ``BackgroundRunner._takes``).
inside: contextvars.ContextVar[BackgroundRunner | None] = contextvars.ContextVar(
    "asignal_background_inside", default=None
)


class _Waiter:
    """An async caller waiting for room; ``granted`` once a finished call handed it its
    slot (the slot is then already counted in ``_pending``). ``inside``: one of the
    runner's own calls, which the drain does not refuse."""

    __slots__ = ("event", "granted", "inside")

    def __init__(self, inside: bool) -> None:
        self.event = anyio.Event()
        self.granted = False
        self.inside = inside


class _Rest:
    """The calls of a batch after the one being stepped, and whether they were handed to
    a task of their own (the stepped call suspended)."""

    __slots__ = ("handed", "items", "next", "snapshot")

    def __init__(self, items: list[Item], next: int, snapshot: contextvars.Context) -> None:
        self.items: Final = items
        self.next: Final = next
        #: The send's context: every call of the batch runs in a copy of it.
        self.snapshot: Final = snapshot
        self.handed = False


async def feed(runner: BackgroundRunner) -> None:
    """The runner's feeder task: start each batch queued by ``_start_batch``, in its
    snapshot of the scheduling context. Starting a task costs more than the rest of
    scheduling it; done here, it is off the path of whoever scheduled (a request handler
    returns before any task of its background receivers is even created). Runs until the
    runner's exit cancels it, once the drain is over."""
    tg = runner._tg
    assert tg is not None
    assert runner._feeder is not None
    spawn: Callable[..., object] = tg.start_soon
    with runner._feeder:
        while True:
            wake = runner._wake
            assert wake is not None
            await wake.wait()
            runner._wake = anyio.Event()
            queue, runner._queue = runner._queue, []
            for items, snapshot in queue:
                name = items[0][2].name
                if len(items) == 1:
                    snapshot.run(spawn, run_call, runner, *items[0], name=name)
                else:
                    snapshot.run(spawn, run_batch, runner, items, 0, snapshot, name=name)


async def run_batch(
    runner: BackgroundRunner, items: list[Item], start: int, snapshot: contextvars.Context
) -> None:
    """Run ``items[start:]`` as described in the module, the last one (or the one that
    suspends) in this task."""
    last = len(items) - 1
    for index in range(start, last):
        rest = _Rest(items, index + 1, snapshot)
        await run_call(runner, *items[index], rest)
        if rest.handed:
            return
    # The last call needs no copy of its own: this task's context is one already.
    await run_call(runner, *items[last])


async def _stepped(
    runner: BackgroundRunner, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], rest: _Rest
) -> None:
    """``await fn(*args)``, its first step taken here: if it suspends, the rest of the
    batch goes to a task of its own first."""
    run = rest.snapshot.copy().run
    coro: Any = run(fn, *args)
    try:
        pending = run(coro.send, None)
    except StopIteration:
        return
    rest.handed = True
    tg = runner._tg
    assert tg is not None
    start_soon: Callable[..., object] = tg.start_soon
    following = rest.items[rest.next][2].name
    rest.snapshot.run(
        start_soon, run_batch, runner, rest.items, rest.next, rest.snapshot, name=following
    )
    await drive(coro, pending, run)


async def run_call(
    runner: BackgroundRunner,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    scheduled: Scheduled,
    limit: float | None,
    rest: _Rest | None = None,
) -> None:
    """Run one call in its slot, bounded by ``limit`` seconds, and account for it: count
    its outcome, log a failure, a timeout or a cancellation by name, free its slot.
    ``rest``: the calls of its batch still to run (see :func:`_stepped`)."""
    inside.set(runner)
    if _observe.observer is not None:  # observation hook: see asignal/_observe/
        fn = _observe.background(fn, scheduled.name, limit)
    stats = runner.stats
    try:
        # Created here, run (its first step included) when awaited, inside the scope.
        call = fn(*args) if rest is None else _stepped(runner, fn, args, rest)
        if limit is None:
            await call
        else:
            with anyio.move_on_after(limit) as scope:
                await call
            if scope.cancelled_caught:
                stats.timed_out += 1
                logger.warning("background call %s timed out after %s s", scheduled.name, limit)
                return
        stats.completed += 1
    except Exception:
        stats.failed += 1
        logger.exception("background call %s raised", scheduled.name)
    except BaseException:
        # Cancelled by the drain's deadline or from outside (or interrupted). The calls of
        # the batch not handed on stay live: the runner's exit counts and logs them.
        runner._cancelled(scheduled)
        raise
    finally:
        runner._live.discard(scheduled)
        runner._release_slot()


def from_thread(
    runner: BackgroundRunner,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    options: dict[str, Any],
) -> Scheduled | None:
    """``runner.schedule_nowait(fn, *args, **options)`` from a thread other than the
    runner's event loop thread, through ``anyio.from_thread`` with the runner's token;
    the call's context defaults to a copy of this thread's."""
    if runner._token is None or not runner._takes():
        runner._drop(options["name"])
        return None
    from anyio import from_thread

    if options["context"] is None:
        options["context"] = contextvars.copy_context()
    try:
        # from_thread.run, not run_sync: on asyncio, spawning in a worker thread's
        # context (where anyio clears the async library) needs to happen in a task.
        return from_thread.run(_on_loop, runner, fn, args, options, token=runner._token)
    except RuntimeError:
        # The event loop has finished (anyio's RunFinishedError) since we looked.
        runner._drop(options["name"])
        return None


async def _on_loop(
    runner: BackgroundRunner,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    options: dict[str, Any],
) -> Scheduled | None:
    return runner.schedule_nowait(fn, *args, **options)
