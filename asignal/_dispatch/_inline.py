"""The inline fast path: receivers awaited one after another in the sender's task.

A coroutine receiver that returns without suspending costs here what a plain ``await``
costs: no task, no per-receiver exception (the whole phase ends with one
``StopIteration``). The first time a receiver really suspends, its suspension surfaces
out of :func:`inline` to the caller (``send_async``, or a tier's run), which hands the
rest of the tier to a backend (see ``_tier.py``) and drives the suspended receiver on
with :func:`drive`.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

from ._common import Entry, Result, collected, collectible, own_cancellation

if TYPE_CHECKING:
    from .._signal import Signal

__all__ = ["drive", "inline", "spawned"]


@types.coroutine
def drive(coro: Any, pending: Any, run: Callable[..., Any]) -> Generator[Any, Any, Any]:
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
            except BaseException:
                # trio resumes a task with an outcome: an Error holds the exception that
                # now leaves through this frame, which must then not hold the Error.
                del sent
                raise


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
    # generic call path, a fifth of what a receiver that returns at once costs. The
    # ``except BaseException`` clauses cost nothing until something raises.
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
            except BaseException as exc:
                if not collectible(exc, collect):
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
            except BaseException as exc:
                if not collectible(exc, collect):
                    raise
                value = collected(signal, receiver, exc)
            results.append((receiver, value))
    # A collected exception of a sync receiver links back to this frame (its
    # traceback's frame's f_back), which must then not hold the results: a cycle.
    del results
    value = None


async def spawned(
    signal: Signal,
    receiver: Any,
    sender: Any,
    kwargs: dict[str, Any],
    slots: list[Any],
    index: int,
    collect: bool,
    failures: list[tuple[int, BaseException]],
) -> None:
    """A receiver started beside the suspended one, as a task of its own: its value goes
    to ``slots[index]``; under the raise policy its failure is also recorded."""
    try:
        slots[index] = await receiver(sender, **kwargs)
    except Exception as exc:
        if not collect:
            failures.append((index, exc))
            raise
        slots[index] = collected(signal, receiver, exc)
    except BaseException as exc:
        if not collect or not own_cancellation(exc):
            raise
        slots[index] = collected(signal, receiver, exc)
