"""Background receivers in a send, and ``Signal.send_background``: calls handed to the
current :class:`~asignal.BackgroundRunner`, never awaited by the sender.

A send whose plan has background receivers first finds the runner (or raises, before
any receiver runs), schedules each live background receiver in dispatch order, then runs
the plan's foreground and merges both into one result list in dispatch order, with the
:class:`~asignal.Scheduled` record as each background receiver's value. Scheduling from
the sender's task hands the call a copy of the sender's context as it is at the send.

``asignal._background`` (which imports anyio and logging) is imported with the first
runner, not by ``import asignal``: what is needed here before that is in the modules
that import neither (``_background_types``, ``_runner_current``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._background_types import DEFAULT
from .._options import SEND_ASYNC_OPTIONS, check_underscored
from .._receivers import describe
from .._runner_current import require_runner
from ._common import Plan, Result, label

if TYPE_CHECKING:
    from .._background import BackgroundRunner, Scheduled
    from .._signal import Signal

__all__ = ["merge", "schedule_async", "schedule_nowait", "send_background"]

#: ``(index in plan.entries, receiver, its Scheduled or None when dropped)``.
Slot = tuple[int, Any, "Scheduled | None"]


async def _call_async(receiver: Any, sender: Any, kwargs: dict[str, Any]) -> Any:
    return await receiver(sender, **kwargs)


async def _call_sync(receiver: Any, sender: Any, kwargs: dict[str, Any]) -> Any:
    # A sync background receiver runs in the background too: in the runner's task.
    return receiver(sender, **kwargs)


def _name(signal: Signal, receiver: Any) -> str:
    # The runner logs failures, timeouts and drops under this name: it carries both the
    # receiver and the signal.
    return f"receiver {describe(receiver)} of signal {label(signal)}"


#: One background call to schedule: ``(index in plan.entries, receiver, the coroutine
#: function that calls it, its timeout, the name the runner logs it under)``.
_Call = tuple[int, Any, Callable[..., Any], Any, str]


def _calls(signal: Signal, plan: Plan) -> tuple[BackgroundRunner | None, list[_Call]]:
    """The runner and the calls for ``plan``'s live background receivers, found before
    any receiver runs (no live one: ``(None, [])``). Raises ``RuntimeError`` naming the
    first receiver when no runner is current."""
    calls: list[_Call] = []
    for index, (get, is_async, record) in plan.background:
        receiver = get()
        if receiver is not None:
            fn = _call_async if is_async else _call_sync
            timeout = record.timeout if record.timeout is not None else DEFAULT
            calls.append((index, receiver, fn, timeout, _name(signal, receiver)))
    if not calls:
        return None, calls
    return require_runner(f"background receiver {calls[0][4]}"), calls


def _batched(
    runner: BackgroundRunner, calls: list[_Call], sender: Any, kwargs: Any
) -> list[Slot] | None:
    """Start ``calls`` as one batch (one task, and one more per call that suspends; see
    ``asignal._background_run``) when the runner has room for all of them now, else
    ``None``."""
    batch = runner._batch([(fn, (r, sender, kwargs), name, t) for _, r, fn, t, name in calls])
    if batch is None:
        return None
    return [(call[0], call[1], scheduled) for call, scheduled in zip(calls, batch, strict=True)]


def schedule_nowait(signal: Signal, plan: Plan, sender: Any, kwargs: dict[str, Any]) -> list[Slot]:
    """Schedule ``plan``'s background receivers for ``send()``: a full runner drops the
    calls it has no room for (counted and logged by the runner; their value is
    ``None``)."""
    runner, calls = _calls(signal, plan)
    if runner is None:
        return []
    slots = _batched(runner, calls, sender, kwargs)
    if slots is not None:
        return slots
    slots = []
    for index, receiver, fn, timeout, name in calls:
        scheduled = runner.schedule_nowait(fn, receiver, sender, kwargs, name=name, timeout=timeout)
        slots.append((index, receiver, scheduled))
    return slots


async def schedule_async(
    signal: Signal, plan: Plan, sender: Any, kwargs: dict[str, Any]
) -> list[Slot]:
    """Schedule ``plan``'s background receivers for ``send_async()``: a full runner
    makes the sender wait for room. A runner that stops accepting meanwhile drops the
    call (its value is ``None``)."""
    runner, calls = _calls(signal, plan)
    if runner is None:
        return []
    batch = _batched(runner, calls, sender, kwargs)
    if batch is not None:
        return batch
    # Short of room (or off the runner's thread): one call at a time, each waiting for
    # its slot in turn.
    slots: list[Slot] = []
    for index, receiver, fn, timeout, name in calls:
        scheduled: Scheduled | None
        try:
            scheduled = await runner.schedule(
                fn, receiver, sender, kwargs, name=name, timeout=timeout
            )
        except RuntimeError:
            if runner.accepting:
                raise
            scheduled = None  # dropped: the runner counted and logged it
        slots.append((index, receiver, scheduled))
    return slots


def merge(plan: Plan, results: list[Result], slots: list[Slot]) -> list[Result]:
    """The foreground ``results`` and the background ``slots`` in dispatch order.

    ``results`` hold one entry per foreground receiver that was alive when the send ran,
    in order. A receiver alive then is alive now (its result holds it), and a collected
    one never comes back: so each foreground entry that still dereferences takes the next
    result. (No identity check: an observed send's results hold wrappers.)
    """
    if not results:
        return [(receiver, scheduled) for _, receiver, scheduled in slots]
    merged: list[Result] = []
    pending = iter(results)
    at = {index: (receiver, scheduled) for index, receiver, scheduled in slots}
    for index, (get, _, _) in enumerate(plan.entries):
        if index in at:
            merged.append(at[index])
        elif get() is not None and (result := next(pending, None)) is not None:
            merged.append(result)
    return merged


async def _send_collect(signal: Signal, sender: Any, kwargs: dict[str, Any]) -> None:
    await signal.send_async(sender, _errors="collect", **kwargs)


def send_background(signal: Signal, sender: Any, kwargs: dict[str, Any]) -> Scheduled | None:
    """See :meth:`asignal.Signal.send_background`."""
    if "_errors" in kwargs:
        raise TypeError(
            f"send_background() of signal {label(signal)} takes no _errors: failures of "
            "a background send are always collected and logged"
        )
    for key in kwargs:
        if key.startswith("_"):
            check_underscored(key, SEND_ASYNC_OPTIONS, "send_background")
    if signal.is_muted or not signal.has_receivers_for(sender):
        return None
    what = f"send_background() of signal {label(signal)}"
    runner = require_runner(what)
    return runner.schedule_nowait(_send_collect, signal, sender, kwargs, name=what)
