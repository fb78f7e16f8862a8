"""The plain path: ``_sequential``, ``_limit``, per-receiver timeouts and
``_sync_wrapper``, built on anyio.

Here every receiver starts inside the scopes that bound it (a task group per tier, a
``move_on_after`` per timed receiver), so the same code is right on asyncio and trio.
These options cost a task or a scope per receiver anyway, so the fast path's tricks
would buy little. anyio is imported by the first send that comes here, not by
``import asignal``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._receivers import Record
from ._common import (
    PENDING,
    Entry,
    Plan,
    Result,
    collected,
    expired,
    failure_of,
    own_cancellation,
    send_expired,
)

if TYPE_CHECKING:
    import anyio

    from .._signal import Signal

__all__ = ["Plain"]


def _cancelled_exc_class() -> type[BaseException]:
    import anyio

    return anyio.get_cancelled_exc_class()


class Plain:
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
        import anyio

        timeout = send_timeout
        # One slot per entry; dead receivers stay None and are left out at the end.
        receivers: list[Any] = [None] * len(plan.entries)
        slots: list[Any] = [PENDING] * len(plan.entries)
        failures: list[tuple[int, BaseException]] = []
        failure: BaseException | None = None
        try:
            with anyio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
                base = 0
                for tier in plan.tiers:
                    try:
                        await self._tier(tier, base, receivers, slots, failures)
                    except BaseExceptionGroup as group:
                        if not failures or group.subgroup(lambda e: not isinstance(e, Exception)):
                            raise
                        failure = failure_of(self.signal, failures)
                        group.__traceback__ = None  # dropped: see TierRun's failure_of
                    if failure is not None:
                        try:
                            raise failure  # outside the handler: see failure_of
                        finally:
                            del failure  # this frame is in its traceback
                    base += len(tier)
        except BaseException:
            # Its traceback holds this frame: the list must not hold the exception
            # too (a reference cycle; see failure_of).
            failures.clear()
            raise
        if scope.cancelled_caught and timeout is not None and not self.collect:
            raise send_expired(self.signal, timeout)
        results: list[Result] = []
        for index, (get, _, _) in enumerate(plan.entries):
            receiver = receivers[index]
            if receiver is None and slots[index] is PENDING:
                receiver = get()  # never started: the send's deadline passed first
                if receiver is None:
                    continue
            elif receiver is None:
                continue
            value = slots[index]
            if value is PENDING:
                assert timeout is not None
                value = expired(self.signal, receiver, timeout, log=True)
            results.append((receiver, value))
        # A collected exception of a sync receiver links back to _one's frame, which
        # references this list: it must not lead back to the exception (a cycle).
        slots.clear()
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
        import anyio

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
                import anyio

                with anyio.move_on_after(timeout) as scope:
                    slots[index] = await fn(self.sender, **self.kwargs)
                if scope.cancelled_caught:
                    cut_off = expired(self.signal, receiver, timeout, log=self.collect)
                    if not self.collect:
                        raise cut_off
                    slots[index] = cut_off
        except Exception as exc:
            if not self.collect:
                failures.append((index, exc))
                raise
            slots[index] = collected(self.signal, receiver, exc)
        except BaseException as exc:
            if not self.collect or not own_cancellation(exc):
                if not self.sequential and isinstance(exc, _cancelled_exc_class()):
                    # anyio's task group, on asyncio, re-raises the cancellation that
                    # this child task ends with inside its done-callback, and keeps it
                    # in a local there: a cycle (that frame, the exception, its
                    # traceback) that would hold this frame and the receiver's, and so
                    # the send's kwargs (a request), until the cyclic GC runs. The group
                    # swallows the cancellation; its traceback shows nothing a user
                    # debugs with. (A bare ``raise`` adds no entry for this frame.)
                    exc.__traceback__ = None
                raise
            slots[index] = collected(self.signal, receiver, exc)
        finally:
            if limiter is not None:
                limiter.release()
