"""The concurrent engine behind ``send_async``: ordering, timeouts, error policy, limits.

How a tier of equal-priority receivers runs in the default (concurrent) mode:

1. *Inline phase.* One coroutine, ``_inline``, awaits the receivers one after another in
   the sender's task, in a copy of the sender's context. A receiver that returns without
   suspending costs what a plain ``await`` costs: no task, no per-receiver exception (the
   whole phase ends with one ``StopIteration``).
2. *Hand-off.* The first time a receiver really suspends, its suspension surfaces out of
   ``_inline`` to us. That receiver stays on the sender's task (its first step ran there:
   whatever it captured, ``current_task()``, cancel scopes, stays true), and the
   receivers not yet started are taken from the shared iterator and started as real
   tasks of the running backend (``asyncio.TaskGroup``, or a trio nursery). ``_resume``
   then drives the suspended receiver to its end inside the group's body.

The other modes (``_sequential``, ``_limit``, per-receiver timeouts, ``_sync_wrapper``)
take a plainer path built on anyio, where every receiver starts inside the scopes that
bound it. Nothing here imports trio unless trio is the running backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sys
import types
from collections.abc import Awaitable, Callable, Generator, Iterator
from time import monotonic
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import anyio

from ._receivers import Record, check_timeout, describe

if TYPE_CHECKING:
    from ._signal import Signal

__all__ = [
    "ErrorPolicy",
    "Plan",
    "check_errors",
    "check_limit",
    "check_timeout",
    "collected",
    "dispatch",
    "inline",
    "label",
    "logger",
    "on_trio",
    "resume",
    "resume_single",
]

#: Receivers' exceptions under ``_errors="collect"`` are logged here.
logger: Final = logging.getLogger("asignal")

ErrorPolicy: TypeAlias = Literal["raise", "collect"]
Entry: TypeAlias = tuple[Callable[[], Any], bool, Record]
Result: TypeAlias = tuple[Any, Any]

_PENDING: Final[Any] = object()


def check_errors(value: object) -> ErrorPolicy:
    """Validate an error policy. Raises ``ValueError`` for anything but ``"raise"`` or
    ``"collect"``."""
    if value == "raise":
        return "raise"
    if value == "collect":
        return "collect"
    raise ValueError(f'_errors must be "raise" or "collect", got {value!r}')


def check_limit(value: object) -> int:
    """Validate a concurrency limit: an int >= 1. Raises ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"_limit must be an int >= 1 or None, got {value!r}")
    if value < 1:
        raise ValueError(f"_limit must be >= 1, got {value!r}")
    return value


class Plan:
    """The receivers of one sender, resolved once and cached until the next connect or
    disconnect: entries in dispatch order, split into priority tiers."""

    __slots__ = (
        "async_counts",
        "entries",
        "getters",
        "has_async",
        "has_sync",
        "simple",
        "single",
        "tiers",
        "timed",
    )

    def __init__(self, records: list[Record]) -> None:
        records.sort(key=lambda r: (-r.priority, r.seq))
        self.entries: tuple[Entry, ...] = tuple((r.get, r.is_async, r) for r in records)
        self.getters: tuple[Callable[[], Any], ...] = tuple(r.get for r in records)
        tiers: list[tuple[Entry, ...]] = []
        start = 0
        for i in range(1, len(records) + 1):
            if i == len(records) or records[i].priority != records[start].priority:
                tiers.append(self.entries[start:i])
                start = i
        self.tiers: tuple[tuple[Entry, ...], ...] = tuple(tiers)
        self.async_counts = tuple(sum(1 for e in tier if e[1]) for tier in tiers)
        self.has_async = any(self.async_counts)
        self.has_sync = any(not r.is_async for r in records)
        self.timed = any(r.timeout is not None for r in records)
        #: One tier, no per-receiver timeouts: ``send_async`` may start it inline.
        self.simple = len(tiers) == 1 and not self.timed
        #: Just one receiver, a coroutine one, without a timeout of its own.
        self.single = self.simple and len(records) == 1 and records[0].is_async


# --- helpers shared by every path -----------------------------------------------------------


def label(signal: Signal) -> str:
    """How messages name a signal: its name if it has one, else its repr."""
    name = getattr(signal, "name", None)
    return repr(name) if name is not None else repr(signal)


def collected(signal: Signal, receiver: Any, exc: Exception) -> Exception:
    """Log ``exc``, raised by ``receiver`` under the collect policy; return it (its value)."""
    logger.error(
        "receiver %s of signal %s raised %s",
        describe(receiver),
        label(signal),
        type(exc).__name__,
        exc_info=exc,
    )
    return exc


def _expired(signal: Signal, receiver: Any, seconds: float, *, log: bool) -> TimeoutError:
    exc = TimeoutError(
        f"receiver {describe(receiver)} of signal {label(signal)} did not finish "
        f"within {seconds:g} s"
    )
    if log:
        logger.error("%s", exc)
    return exc


def _send_expired(signal: Signal, seconds: float) -> TimeoutError:
    return TimeoutError(f"send_async of signal {label(signal)} timed out after {seconds:g} s")


def _raise_failures(signal: Signal, failures: list[tuple[int, BaseException]]) -> None:
    """Raise what failed, in dispatch order: one exception as itself, several as an
    ``ExceptionGroup`` (a ``BaseExceptionGroup`` if any is not an ``Exception``)."""
    failures.sort(key=lambda f: f[0])
    excs = [exc for _, exc in failures]
    if len(excs) == 1:
        exc = excs[0]
        try:
            raise exc
        finally:
            del exc, excs
    raise BaseExceptionGroup(f"{len(excs)} receivers of signal {label(signal)} raised", excs)


def on_trio() -> bool:
    """Whether the running backend is trio. trio marks sniffio's thread-local while it
    steps its tasks (in guest mode too); without sniffio imported, trio cannot be
    running."""
    sniffio = sys.modules.get("sniffio")
    return sniffio is not None and sniffio.thread_local.name == "trio"


@types.coroutine
def _resume(coro: Any, pending: Any, run: Callable[..., Any]) -> Generator[Any, Any, Any]:
    """Drive ``coro``, already started and suspended with ``pending`` yielded, to its end
    from the current task, stepping it in its own context with ``run``; return its
    value."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation and errors thrown in by the loop
            try:
                pending = run(coro.throw, exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = run(coro.send, sent)
            except StopIteration as stop:
                return stop.value


async def inline(
    signal: Signal,
    it: Iterator[Entry],
    sender: Any,
    kwargs: dict[str, Any],
    results: list[Result],
    collect: bool,
) -> None:
    """The inline phase: await each receiver in turn.

    It pulls from a shared iterator so that a hand-off can take the rest of the tier
    away from it: once the iterator is drained, the loop ends after the current receiver.
    """
    # Two loops, one without ``**kwargs``: a call through ``**{}`` costs CPython's
    # generic call path, a fifth of what a receiver that returns at once costs.
    if kwargs:
        for get, is_async, _record in it:
            receiver = get()
            if receiver is None:
                continue
            try:
                if is_async:
                    value = await receiver(sender, **kwargs)
                else:
                    value = receiver(sender, **kwargs)
            except Exception as exc:
                if not collect:
                    raise
                value = collected(signal, receiver, exc)
            results.append((receiver, value))
    else:
        for get, is_async, _record in it:
            receiver = get()
            if receiver is None:
                continue
            try:
                value = await receiver(sender) if is_async else receiver(sender)
            except Exception as exc:
                if not collect:
                    raise
                value = collected(signal, receiver, exc)
            results.append((receiver, value))


async def _spawned(
    signal: Signal,
    receiver: Any,
    sender: Any,
    kwargs: dict[str, Any],
    slots: list[Any],
    index: int,
    collect: bool,
    failures: list[tuple[int, BaseException]],
) -> None:
    try:
        slots[index] = await receiver(sender, **kwargs)
    except Exception as exc:
        if not collect:
            failures.append((index, exc))
            raise
        slots[index] = collected(signal, receiver, exc)


# --- the concurrent path ----------------------------------------------------------------------


class _Send:
    """One concurrent ``send_async``: the tiers run one after another, each as a
    :class:`_TierRun`, all under one deadline."""

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
            _TierRun(self, tier).begin()
        return self.results

    async def run_asyncio(
        self,
        plan: Plan,
        send_timeout: float | None,
        started: float | None = None,
        first: _TierRun | None = None,
    ) -> list[Result]:
        """Run every tier on asyncio. ``first``: the first tier, already past its inline
        phase (begun by :func:`resume`) at ``started`` on ``time.monotonic``."""
        timeout = send_timeout
        loop = asyncio.get_running_loop()
        if timeout is not None:
            elapsed = monotonic() - started if started is not None else 0.0
            self.deadline = loop.time() + timeout - elapsed
        for run, suspended, _ in self._runs(plan, first, timeout, loop.time):
            try:
                if suspended or run.begin():
                    if timeout is None:
                        await run.asyncio_rest()
                    else:
                        # Armed only now that something suspended: a send whose
                        # receivers all finish inline never pays for a timer.
                        async with asyncio.timeout_at(self.deadline):
                            await run.asyncio_rest()
            except TimeoutError:
                if self.failures:
                    raise  # a receiver's own TimeoutError
                if not self.collect:
                    raise _send_expired(self.signal, timeout or 0.0) from None
            except BaseExceptionGroup as group:
                self._reraise(group)
            run.finish(timeout)
        return self.results

    async def run_trio(
        self, plan: Plan, send_timeout: float | None, first: _TierRun | None = None
    ) -> list[Result]:
        """Run every tier on trio. ``first``: the first tier, already past its inline
        phase (begun by :func:`resume`); only without a timeout, under "collect"."""
        timeout = send_timeout
        import trio

        if timeout is not None:
            self.deadline = trio.current_time() + timeout
        for run, suspended, async_count in self._runs(plan, first, timeout, trio.current_time):
            # trio's cancel scopes nest strictly, and a receiver may open its own during
            # its first step: a scope of ours must be open before any receiver starts.
            # It is needed for a deadline, and under the raise policy to cancel the
            # receiver left on this task when another fails; otherwise nothing opens
            # (which is why a tier begun elsewhere can only come without either).
            scope = (
                trio.CancelScope(deadline=self.deadline)
                if timeout is not None or not self.collect
                else None
            )
            cancel = scope.cancel if scope is not None else None
            try:
                with scope if scope is not None else contextlib.nullcontext():
                    if suspended or run.begin():
                        if async_count < 2:
                            # Nothing but sync receivers can run beside the suspended one.
                            await run.drive_beside(_no_start, cancel)
                        else:
                            await _TrioChildren(cancel).run(run)
            except Exception:
                if len(self.failures) > 1:
                    _raise_failures(self.signal, self.failures)
                raise
            if self.failures:
                # Failed children while the receiver on this task was cancelled.
                _raise_failures(self.signal, self.failures)
            if scope is not None and scope.cancelled_caught and not self.collect:
                raise _send_expired(self.signal, timeout or 0.0)
            run.finish(timeout)
        return self.results

    def _runs(
        self,
        plan: Plan,
        first: _TierRun | None,
        timeout: float | None,
        now: Callable[[], float],
    ) -> Iterator[tuple[_TierRun, bool, int]]:
        """Each tier's run in turn, with whether it has already begun (``first``, the
        first tier's) and its number of coroutine receivers. A tier that the deadline
        passed before it started is not run: its receivers are expired instead."""
        for tier, async_count in zip(plan.tiers, plan.async_counts, strict=True):
            if first is not None:
                yield first, True, async_count
                first = None
            elif timeout is not None and now() >= self.deadline:
                self._expire_unstarted(tier, timeout)
            else:
                yield _TierRun(self, tier), False, async_count

    def _reraise(self, group: BaseExceptionGroup[BaseException]) -> None:
        """An ``asyncio.TaskGroup`` gathered failures: give them back in dispatch order,
        one as itself. Anything that is not an ``Exception`` (cancellation) goes on as
        the group did."""
        if group.subgroup(lambda e: not isinstance(e, Exception)) is None:
            if self.failures:
                _raise_failures(self.signal, self.failures)
            if len(group.exceptions) == 1:
                _raise_failures(self.signal, [(0, group.exceptions[0])])
        raise group

    def _expire_unstarted(self, tier: tuple[Entry, ...], timeout: float) -> None:
        if not self.collect:
            raise _send_expired(self.signal, timeout)
        for get, _, _ in tier:
            receiver = get()
            if receiver is not None:
                self.results.append((receiver, _expired(self.signal, receiver, timeout, log=True)))


class _TrioChildren:
    """The receivers a hand-off starts on trio, without a nursery.

    An empty nursery still costs a trip through trio's scheduler when it closes, and it
    would have to be opened before every send's first receiver (see :meth:`run_trio`),
    suspending or not. Instead the receivers that must run beside the suspended one are
    started only at the hand-off, as system tasks, each under a cancel scope of its own,
    and the send keeps a nursery's promises itself: it waits for every child before it
    returns or raises (shielded, when it is unwinding), a failing child cancels its
    siblings and the sender's scope, and a cancelled or expired sender cancels them all.
    """

    __slots__ = ("cancel_sender", "done", "fatal", "pending", "scopes")

    def __init__(self, cancel_sender: Callable[[], Any] | None) -> None:
        import trio

        self.cancel_sender = cancel_sender
        self.pending = 0
        self.done = trio.Event()
        self.scopes: list[Any] = []
        self.fatal: BaseException | None = None

    def start(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        import trio

        scope = trio.CancelScope()
        self.scopes.append(scope)
        self.pending += 1
        # Each child runs in a copy of the sender's context, as a spawned task would.
        trio.lowlevel.spawn_system_task(
            self._child, scope, fn, args, context=contextvars.copy_context()
        )

    async def _child(
        self, scope: Any, fn: Callable[..., Awaitable[None]], args: tuple[Any, ...]
    ) -> None:
        import trio

        try:
            with scope:
                await fn(*args)
        except BaseException as exc:
            # A system task must not raise: keep what is not our own cancellation for
            # the sender, and stop everything else, as a nursery would.
            if isinstance(exc, Exception):
                pass  # a receiver's failure: _spawned has recorded it
            elif not isinstance(exc, trio.Cancelled):
                self.fatal = self.fatal or exc
            self.cancel_all()
            if self.cancel_sender is not None:
                self.cancel_sender()
        finally:
            self.pending -= 1
            if not self.pending:
                self.done.set()

    def cancel_all(self) -> None:
        for scope in self.scopes:
            scope.cancel()

    async def wait(self) -> None:
        if self.pending:
            await self.done.wait()

    async def run(self, tier: _TierRun) -> None:
        import trio

        try:
            await tier.drive_beside(self.start, self.cancel_sender)
            await self.wait()
        except BaseException:
            self.cancel_all()
            with trio.CancelScope(shield=True):
                await self.wait()
            raise
        finally:
            if self.fatal is not None:
                raise self.fatal


class _TierRun:
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

    def __init__(self, send: _Send, tier: tuple[Entry, ...]) -> None:
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
        self.slots: list[Any] = [_PENDING] * len(self.tier)
        self.receivers: list[Any] = [None] * len(self.tier)

    async def asyncio_rest(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        if not any(is_async for _, is_async, _ in self.rest):
            await self.drive_beside(_no_start, task.cancel)
            return
        async with asyncio.TaskGroup() as tg:

            def start(fn: Callable[..., Any], *args: Any) -> None:
                tg.create_task(fn(*args))

            await self.drive_beside(start, task.cancel)

    async def drive_beside(
        self, start: Callable[..., Any], cancel: Callable[[], Any] | None
    ) -> None:
        """Start the rest of the tier with ``start``, then drive the suspended receiver
        to its end. ``cancel`` cancels this task (asyncio) or a scope around the tier
        (trio); ``None`` where no scope was opened because no failure can be raised
        (the collect policy)."""
        try:
            self._start_rest(start)
        except BaseException:
            # A sync receiver failed under the raise policy: the suspended receiver is
            # on this task, so no group will cancel it for us.
            await self._abort(cancel)
            raise
        await self.drive()

    async def _abort(self, cancel: Callable[[], Any] | None) -> None:
        if cancel is None:
            # Only a BaseException can get here (collect policy, trio, no scope): close
            # the suspended receiver so its finally blocks run, then let it propagate.
            self.drv.close()
            return
        trio = on_trio()
        task = None if trio else asyncio.current_task()
        cancel()
        try:
            await _resume(self.drv, self.pending, self.run)
        except BaseException as exc:
            # Swallow only the cancellation just requested; anything else goes on.
            if trio:
                import trio as trio_module

                if not isinstance(exc, trio_module.Cancelled):
                    raise
            elif task is None or not isinstance(exc, asyncio.CancelledError) or task.uncancel() > 0:
                raise

    async def drive(self) -> None:
        """Drive the suspended receiver to its end on this task."""
        try:
            await _resume(self.drv, self.pending, self.run)
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
                    _spawned,
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
                send.results.append((receiver, _expired(send.signal, receiver, seconds, log=True)))
        for receiver, value in zip(self.receivers, self.slots, strict=True):
            if receiver is None:
                continue
            if value is _PENDING:
                value = _expired(send.signal, receiver, seconds, log=True)
            send.results.append((receiver, value))


def _no_start(*args: Any) -> None:  # pragma: no cover - only reached with async receivers
    raise AssertionError("no async receiver left to start")


async def resume_single(
    signal: Signal,
    receiver: Any,
    coro: Any,
    pending: Any,
    run: Callable[..., Any],
    collect: bool,
    send_timeout: float | None,
    started: float,
) -> list[Result]:
    """Carry on a send to a tier of one coroutine receiver, whose first step (started by
    ``send_async`` in ``run``'s context at ``started`` on ``time.monotonic``) suspended
    with ``pending``. Nothing can run beside it, so it needs no task group and no
    nursery: it goes on on the sender's task. (On trio a send timeout takes the general
    path instead: its scope must be open before the receiver starts.)"""
    timer: asyncio.Timeout | None = None
    try:
        if send_timeout is None:
            value = await _resume(coro, pending, run)
        else:
            # Placed on the loop's clock only now that the receiver has suspended.
            deadline = asyncio.get_running_loop().time() + send_timeout - (monotonic() - started)
            async with asyncio.timeout_at(deadline) as timer:
                value = await _resume(coro, pending, run)
    except TimeoutError as exc:
        if timer is None or not timer.expired():
            if not collect:
                raise  # the receiver's own TimeoutError
            value = collected(signal, receiver, exc)
        elif collect:
            value = _expired(signal, receiver, send_timeout or 0.0, log=True)
        else:
            raise _send_expired(signal, send_timeout or 0.0) from None
    except Exception as exc:
        if not collect:
            raise
        value = collected(signal, receiver, exc)
    return [(receiver, value)]


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
    trio: bool,
) -> list[Result]:
    """Carry on a ``send_async`` whose inline phase, started by the caller, hit a
    receiver that suspended. ``inline`` is ``(coroutine, its pending yield, the
    context's run, the shared iterator)``. On trio the caller starts the inline phase
    only when no scope must enclose it: no ``send_timeout``, the collect policy."""
    send = _Send(signal, sender, kwargs, collect)
    send.results = results
    first = _TierRun(send, plan.tiers[0])
    first.adopt(*inline)
    if trio:
        return await send.run_trio(plan, send_timeout, first)
    return await send.run_asyncio(plan, send_timeout, started, first)


# --- the plain paths: sequential, limited, per-receiver timeouts -----------------------------


class _Plain:
    """``_sequential``, ``_limit``, per-receiver timeouts and ``_sync_wrapper``: every
    receiver starts inside the anyio scopes that bound it."""

    __slots__ = (
        "collect",
        "kwargs",
        "limit",
        "receiver_timeout",
        "sender",
        "sequential",
        "signal",
        "sync_wrapper",
    )

    def __init__(
        self,
        signal: Signal,
        sender: Any,
        kwargs: dict[str, Any],
        *,
        collect: bool,
        sequential: bool,
        limit: int | None,
        receiver_timeout: float | None,
        sync_wrapper: Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]] | None,
    ) -> None:
        self.signal = signal
        self.sender = sender
        self.kwargs = kwargs
        self.collect = collect
        self.sequential = sequential
        self.limit = limit
        self.receiver_timeout = receiver_timeout
        self.sync_wrapper = sync_wrapper

    async def run(self, plan: Plan, send_timeout: float | None) -> list[Result]:
        timeout = send_timeout
        # One slot per entry; dead receivers stay None and are left out at the end.
        receivers: list[Any] = [None] * len(plan.entries)
        slots: list[Any] = [_PENDING] * len(plan.entries)
        failures: list[tuple[int, BaseException]] = []
        with anyio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
            base = 0
            for tier in plan.tiers:
                try:
                    await self._tier(tier, base, receivers, slots, failures)
                except BaseExceptionGroup as group:
                    if not failures or group.subgroup(lambda e: not isinstance(e, Exception)):
                        raise
                    _raise_failures(self.signal, failures)
                base += len(tier)
        if scope.cancelled_caught and timeout is not None and not self.collect:
            raise _send_expired(self.signal, timeout)
        results: list[Result] = []
        for index, (get, _, _) in enumerate(plan.entries):
            receiver = receivers[index]
            if receiver is None and slots[index] is _PENDING:
                receiver = get()  # never started: the send's deadline passed first
                if receiver is None:
                    continue
            elif receiver is None:
                continue
            value = slots[index]
            if value is _PENDING:
                assert timeout is not None
                value = _expired(self.signal, receiver, timeout, log=True)
            results.append((receiver, value))
        return results

    def _callable(self, receiver: Any, is_async: bool) -> tuple[Any, bool]:
        if not is_async and self.sync_wrapper is not None:
            return self.sync_wrapper(receiver), True
        return receiver, is_async

    async def _tier(
        self,
        tier: tuple[Entry, ...],
        base: int,
        receivers: list[Any],
        slots: list[Any],
        failures: list[tuple[int, BaseException]],
    ) -> None:
        if self.sequential:
            for offset, (get, is_async, record) in enumerate(tier):
                receiver = get()
                if receiver is None:
                    continue
                receivers[base + offset] = receiver
                await self._one(receiver, is_async, record, base + offset, slots, failures)
            return
        limiter = anyio.Semaphore(self.limit) if self.limit is not None else None
        async with anyio.create_task_group() as tg:
            for offset, (get, is_async, record) in enumerate(tier):
                receiver = get()
                if receiver is None:
                    continue
                receivers[base + offset] = receiver
                if limiter is not None:
                    # Acquired here, not in the task, so receivers start in dispatch order.
                    await limiter.acquire()
                tg.start_soon(
                    self._one, receiver, is_async, record, base + offset, slots, failures, limiter
                )

    async def _one(
        self,
        receiver: Any,
        is_async: bool,
        record: Record,
        index: int,
        slots: list[Any],
        failures: list[tuple[int, BaseException]],
        limiter: anyio.Semaphore | None = None,
    ) -> None:
        fn, is_async = self._callable(receiver, is_async)
        timeout = record.timeout if record.timeout is not None else self.receiver_timeout
        try:
            if not is_async:
                slots[index] = fn(self.sender, **self.kwargs)
            elif timeout is None:
                slots[index] = await fn(self.sender, **self.kwargs)
            else:
                with anyio.move_on_after(timeout) as scope:
                    slots[index] = await fn(self.sender, **self.kwargs)
                if scope.cancelled_caught:
                    expired = _expired(self.signal, receiver, timeout, log=self.collect)
                    if not self.collect:
                        raise expired
                    slots[index] = expired
        except Exception as exc:
            if not self.collect:
                failures.append((index, exc))
                raise
            slots[index] = collected(self.signal, receiver, exc)
        finally:
            if limiter is not None:
                limiter.release()


# --- entry point --------------------------------------------------------------------------------


async def dispatch(
    signal: Signal,
    plan: Plan,
    sender: Any,
    kwargs: dict[str, Any],
    *,
    sync_wrapper: Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]] | None,
    sequential: bool,
    send_timeout: float | None,
    receiver_timeout: float | None,
    limit: int | None,
    collect: bool,
) -> list[Result]:
    """Run ``plan``'s receivers for one ``send_async``; see :meth:`Signal.send_async`."""
    if (
        sequential
        or limit is not None
        or receiver_timeout is not None
        or plan.timed
        or (sync_wrapper is not None and plan.has_sync)
    ):
        plain = _Plain(
            signal,
            sender,
            kwargs,
            collect=collect,
            sequential=sequential,
            limit=limit,
            receiver_timeout=receiver_timeout,
            sync_wrapper=sync_wrapper,
        )
        return await plain.run(plan, send_timeout)
    send = _Send(signal, sender, kwargs, collect)
    if not plan.has_async:
        return await send.run_inline(plan)
    if on_trio():
        return await send.run_trio(plan, send_timeout)
    return await send.run_asyncio(plan, send_timeout)
