"""Background work: supervised, bounded fire-and-forget calls, drained on exit
(:class:`BackgroundRunner`).

Which runner is current is decided in ``asignal._runner_current``; the values a runner
hands out (:class:`Scheduled`, :class:`BackgroundStats`, :data:`DEFAULT`) are defined in
``asignal._background_types``. Both are re-exported here. How a call (or a send's batch
of calls) runs in the runner's task group is in ``asignal._background_run``.
"""

from __future__ import annotations

import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, suppress
from threading import get_ident
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio

from . import _observe
from ._background_run import Item, _Waiter, feed, from_thread, inside
from ._background_types import DEFAULT as DEFAULT
from ._background_types import BackgroundStats, Scheduled, _check_max_pending, _Default
from ._receivers import check_timeout
from ._runner_current import _Activation, _current, _open, current_runner, require_runner
from ._runner_current import _loop_token as _loop_token

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.lowlevel import EventLoopToken

__all__ = ["BackgroundRunner", "BackgroundStats", "Scheduled", "current_runner", "require_runner"]

logger: Final = logging.getLogger("asignal")

#: One call of a batch: ``(fn, args, name, timeout)``, as :meth:`BackgroundRunner.schedule`
#: takes them.
_Call = tuple[Callable[..., Awaitable[Any]], tuple[Any, ...], str, "float | _Default | None"]


class BackgroundRunner:
    """Runs fire-and-forget calls in one anyio task group: bounded, supervised, and
    drained with a deadline on exit.

    ::

        async with asignal.BackgroundRunner(max_pending=100, drain_timeout=5) as runner:
            runner.schedule_nowait(notify, user, name="notify")   # returns at once
            ...                                                    # notify runs meanwhile
        # here: notify has finished, or was cancelled after 5 s and logged

    Inside ``async with`` the runner is current (see :func:`current_runner`), so
    background receivers and ``send_background`` of code in the block schedule onto it.
    Works on asyncio and trio.

    :param max_pending: at most this many calls are scheduled or running at once; past
        it, :meth:`schedule` waits for room and :meth:`schedule_nowait` drops the call.
    :param drain_timeout: seconds that exiting waits for pending calls before cancelling
        the rest (``None``: no limit).
    :param default_timeout: seconds each call may run before it is cancelled, unless it
        is scheduled with its own ``timeout`` (``None``: no limit).
    :raises TypeError: ``max_pending`` is not an int, or a timeout is not a number.
    :raises ValueError: ``max_pending`` < 1, or a timeout is negative or NaN.
    """

    # Class-level too: a subclass that takes calls by its own schedule methods and never
    # runs __init__ (the Starlette adapter's per-connection CallRunner) is then never
    # "accepting" for _batch, and sends fall back to those methods.
    _accepting = False
    _draining = False

    def __init__(
        self,
        *,
        max_pending: int = 1000,
        drain_timeout: float | None = 10.0,
        default_timeout: float | None = None,
    ) -> None:
        #: At most this many calls are scheduled or running at once.
        self.max_pending: Final = _check_max_pending(max_pending)
        #: Seconds the exit waits for pending calls before cancelling them (``None``: no
        #: limit).
        self.drain_timeout: Final = check_timeout(drain_timeout, "drain_timeout")
        #: Seconds each call may run unless scheduled with its own ``timeout`` (``None``:
        #: no limit).
        self.default_timeout: Final = check_timeout(default_timeout, "default_timeout")
        #: Counters of this runner's calls (see :class:`BackgroundStats`).
        self.stats: Final = BackgroundStats()
        self._accepting = False
        self._finished = False
        self._entered = False
        self._pending = 0
        self._live: set[Scheduled] = set()
        self._waiters: deque[_Waiter] = deque()
        self._idle: anyio.Event | None = None
        self._cancelling = False
        # Set by __aenter__: the loop's thread and token, the task group, our ContextVar.
        self._thread: int | None = None
        self._token: EventLoopToken | None = None
        self._tg: TaskGroup | None = None
        self._var_token: contextvars.Token[BackgroundRunner | None] | None = None
        # Batches waiting for the feeder task to start them, and what wakes it.
        self._queue: list[tuple[list[Item], contextvars.Context]] = []
        self._wake: anyio.Event | None = None
        self._feeder: anyio.CancelScope | None = None

    def __repr__(self) -> str:
        state = ("new", "draining", "open", "finished")[
            self._entered + self._accepting + 2 * self._finished
        ]
        return f"<BackgroundRunner {state} pending={self._pending}/{self.max_pending}>"

    @property
    def pending(self) -> int:
        """Calls scheduled or running now (at most ``max_pending``)."""
        return self._pending

    @property
    def accepting(self) -> bool:
        """Whether calls are accepted: entered, and not yet exiting. (While the drain
        waits, calls scheduled from within this runner's own calls are still taken.)"""
        return self._accepting

    def _takes(self) -> bool:
        """Whether a call scheduled here and now is taken: while accepting, and during the
        drain from within one of this runner's calls."""
        return self._accepting or (self._draining and inside.get() is self)

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> BackgroundRunner:
        """Open the task group, start accepting calls, and become the current runner for
        the body of ``async with``.

        :raises RuntimeError: the runner was entered before (a runner is used once).
        """
        if self._entered:
            raise RuntimeError(f"{self!r} was entered before; create a new BackgroundRunner")
        from anyio.lowlevel import current_token

        self._entered = True
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._thread = get_ident()
        self._token = current_token()
        self._accepting = True
        _open.append(self)
        self._var_token = _current.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Stop accepting, wait up to ``drain_timeout`` seconds for the pending calls,
        then cancel the rest, logging each by name, and close the task group. The body's
        exception, if any, propagates after the drain."""
        self._accepting = False
        # Until the deadline, calls still take calls scheduled from within them: the
        # drain waits for that work as for its own (send_background's receivers).
        self._draining = True
        # Other async callers waiting for room are refused now rather than at the deadline.
        waiters = self._waiters
        self._waiters = deque(waiter for waiter in waiters if waiter.inside)
        for waiter in waiters:
            if not waiter.inside:
                waiter.event.set()
        interrupted: BaseException | None = None
        try:
            if self._pending and self.drain_timeout != 0:
                with anyio.move_on_after(self.drain_timeout):
                    await self.wait_idle()
        except BaseException as error:
            # Cancelled (or interrupted) while draining: nothing may wait any longer.
            interrupted = error
        self._draining = False
        if self._feeder is not None:
            self._feeder.cancel()
        if self._pending:
            self._cancelling = True
            assert self._tg is not None
            self._tg.cancel_scope.cancel()
        if interrupted is not None:
            exc = interrupted
        elif isinstance(exc, Exception):
            # Our calls never raise an Exception, so the task group would only wrap the
            # body's own in an ExceptionGroup: close it as if the body had ended, and let
            # the body's exception propagate as itself.
            exc = None
        assert self._tg is not None
        try:
            suppress = await self._tg.__aexit__(
                None if exc is None else type(exc), exc, None if exc is None else exc.__traceback__
            )
        finally:
            self._finish()
        if interrupted is not None and not suppress:
            raise interrupted
        return suppress if exc_type is None or exc is not None else False

    def _cancelled(self, scheduled: Scheduled) -> None:
        self.stats.cancelled += 1
        _observe.background_cancelled(scheduled.name)  # observation hook: asignal/_observe/
        if self._cancelling:
            why = f"still pending when the drain of {self.drain_timeout} s ended"
        else:
            why = "the runner's task group was cancelled"
        logger.warning("background call %s cancelled: %s", scheduled.name, why)

    def _finish(self) -> None:
        self._finished = True
        # Calls cancelled before their first step (asyncio) never ran their own count.
        for scheduled in sorted(self._live, key=lambda s: s.name):
            self._cancelled(scheduled)
        self._live.clear()
        self._pending = 0
        if self in _open:
            _open.remove(self)
        if self._var_token is not None:
            # ValueError: exited in another context than it was entered in (a hand-written
            # lifespan can do that); the entering context is gone anyway.
            with suppress(ValueError):
                _current.reset(self._var_token)
            self._var_token = None

    def activate(self) -> AbstractContextManager[None]:
        """Make this runner current in this context for a ``with`` block (adapters do
        this per connection, so that code in a request finds its app's runner)::

            with runner.activate():
                await app(scope, receive, send)

        :returns: a context manager; not reentrant, enter it once.
        """
        return _Activation(self)

    async def wait_idle(self) -> None:
        """Wait until no call is pending, including calls scheduled while waiting
        (``asignal.testing.settle`` uses it). Returns at once when none is."""
        while self._pending:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    # --- scheduling ----------------------------------------------------------------------

    async def schedule(
        self,
        fn: Callable[..., Awaitable[Any]],
        /,
        *args: Any,
        name: str,
        # The contract's name; it bounds the call, not this await.
        timeout: float | _Default | None = DEFAULT,  # noqa: ASYNC109
        context: contextvars.Context | None = None,
    ) -> Scheduled:
        """Schedule ``await fn(*args)`` in the background; wait for room first while
        ``max_pending`` calls are pending. Returns without a checkpoint when there is
        room.

        :param fn: an async callable (a coroutine function, or any callable returning an
            awaitable).
        :param name: names the call in logs and in :class:`Scheduled`: the receiver's
            qualified name, or what else was scheduled.
        :param timeout: seconds the call may run before it is cancelled; by default the
            runner's ``default_timeout``; ``None``: no limit.
        :param context: the :class:`contextvars.Context` the call runs in a copy of;
            by default a copy of the caller's at this moment.
        :returns: the :class:`Scheduled` record of the call.
        :raises RuntimeError: the runner is not accepting calls (not entered, or exiting);
            the call is counted as dropped and logged. Also raised when awaited on
            another thread than the runner's event loop.
        """
        if self._takes() and self._pending < self.max_pending and get_ident() == self._thread:
            self._pending += 1
            return self._start_batch([(fn, args, name, timeout)], context)[0]
        if get_ident() != self._thread and self._thread is not None:
            raise RuntimeError(
                f"schedule() of {name} was awaited outside the event loop thread of "
                f"{self!r}; use schedule_nowait() from other threads"
            )
        if self._takes():
            waiter = _Waiter(inside.get() is self)
            self._waiters.append(waiter)
            try:
                await waiter.event.wait()
            except BaseException:
                if waiter.granted:
                    self._release_slot()
                else:
                    self._waiters.remove(waiter)
                raise
            # A slot granted to a waiter that resumes after the runner has finished is
            # void: finishing reset the count.
            if waiter.granted and not self._finished:
                return self._start_batch([(fn, args, name, timeout)], context)[0]
        self._drop(name)
        raise RuntimeError(f"cannot schedule {name}: {self._refusal()}")

    def schedule_nowait(
        self,
        fn: Callable[..., Awaitable[Any]],
        /,
        *args: Any,
        name: str,
        timeout: float | _Default | None = DEFAULT,
        context: contextvars.Context | None = None,
    ) -> Scheduled | None:
        """Schedule ``await fn(*args)`` in the background and return at once; drop the
        call when the runner is full or not accepting. Arguments as :meth:`schedule`.

        Callable from sync or async code on the runner's event loop thread, and from any
        other thread (an anyio worker thread, such as a FastAPI sync endpoint's): then the
        call is handed to the event loop through ``anyio.from_thread`` with the runner's
        token, and the context defaults to a copy of that thread's.

        :returns: the :class:`Scheduled` record, or ``None`` when the call was dropped
            (counted in ``stats.dropped`` and logged).
        """
        if get_ident() != self._thread:
            options = {"name": name, "timeout": timeout, "context": context}
            return from_thread(self, fn, args, options)
        if self._takes() and self._pending < self.max_pending:
            self._pending += 1
            return self._start_batch([(fn, args, name, timeout)], context)[0]
        self._drop(name)
        return None

    def _batch(self, calls: list[_Call]) -> list[Scheduled] | None:
        """Start ``calls`` (a send's background receivers) as one batch in a copy of the
        caller's context, if there is room for all of them now and this is the runner's
        thread; else ``None``, and the caller schedules them one by one."""
        n = len(calls)
        if self._takes() and self._pending + n <= self.max_pending and get_ident() == self._thread:
            self._pending += n
            return self._start_batch(calls, None)
        return None

    def _start_batch(
        self, calls: list[_Call], context: contextvars.Context | None
    ) -> list[Scheduled]:
        """Start ``calls`` in the slots the caller already counted in ``_pending``: one
        task for all of them, started by the runner's feeder task, off the caller's path
        (see ``asignal._background_run``)."""
        try:
            items: list[Item] = []
            for fn, args, name, timeout in calls:
                if timeout is DEFAULT:
                    limit = self.default_timeout
                elif timeout is not None:
                    limit = check_timeout(timeout, f"timeout of background call {name}")  # type: ignore[arg-type]
                else:
                    limit = None
                items.append((fn, args, Scheduled(self, name), limit))
            # The context as it is now: the task starts a moment later (see feed()).
            snapshot = contextvars.copy_context() if context is None else context.copy()
            if len(items) > 1:
                # The calls stepped in copies of it are the runner's own (see _takes).
                snapshot.run(inside.set, self)
            queue = self._queue
            queue.append((items, snapshot))
            if len(queue) == 1:
                wake = self._wake
                if wake is None:
                    # Started by the first call, not by __aenter__: a runner that never
                    # had a call exits without a checkpoint, as it always has.
                    wake = self._wake = anyio.Event()
                    self._feeder = anyio.CancelScope()
                    assert self._tg is not None
                    self._tg.start_soon(feed, self, name=f"feeder of {self!r}")
                wake.set()
        except BaseException:
            for _ in calls:
                self._release_slot()
            raise
        scheduled = [item[2] for item in items]
        self._live.update(scheduled)
        self.stats.scheduled += len(scheduled)
        return scheduled

    def _release_slot(self) -> None:
        if self._waiters:
            # Hand the slot straight to the longest waiter: no caller can overtake it.
            waiter = self._waiters.popleft()
            waiter.granted = True
            waiter.event.set()
            return
        self._pending -= 1
        if not self._pending and self._idle is not None:
            self._idle.set()
            self._idle = None

    def _refusal(self) -> str:
        if not self._entered:
            return f"{self!r} is not running; enter it with 'async with' first"
        if not self._accepting:
            return f"{self!r} is shutting down or has shut down"
        return f"{self!r} is full ({self.max_pending} calls pending)"

    def _drop(self, name: str) -> None:
        self.stats.dropped += 1
        _observe.background_dropped(name)  # observation hook: see asignal/_observe/
        logger.warning("background call %s dropped: %s", name, self._refusal())
