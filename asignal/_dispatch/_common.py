"""What every dispatch path shares: the plan, option checks, failures, messages, the log.

Nothing here imports an event loop, anyio or logging at import time: ``import asignal``
stays cheap, and each backend's module is imported by the first send that needs it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from .._receivers import Record, describe

if TYPE_CHECKING:
    import logging
    from types import FrameType

    from .._signal import Signal

__all__ = [
    "collectible",
    "PENDING",
    "Entry",
    "ErrorPolicy",
    "Plan",
    "Result",
    "check_errors",
    "check_limit",
    "collected",
    "expired",
    "get_logger",
    "label",
    "on_trio",
    "own_cancellation",
    "failure_of",
    "send_expired",
    "timeout_reporter",
]

#: ``send_async``'s ``_errors`` option: ``"raise"`` or ``"collect"``.
ErrorPolicy: TypeAlias = Literal["raise", "collect"]
#: ``(get, is_async, record)``: ``get()`` returns the receiver, or ``None`` once collected.
Entry: TypeAlias = tuple[Callable[[], Any], bool, Record]
Result: TypeAlias = tuple[Any, Any]

#: The value of a receiver slot that no value reached (the receiver was cut off).
PENDING: Final[Any] = object()


def get_logger() -> logging.Logger:
    """The ``asignal`` logger, where collected exceptions go. logging is imported by the
    first failure, not by ``import asignal``."""
    import logging

    return logging.getLogger("asignal")


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
        "background",
        "entries",
        "foreground",
        "getters",
        "has_async",
        "has_sync",
        "simple",
        "single",
        "tiers",
        "timed",
        "wrapped",
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
        #: ``(index in entries, entry)`` of each background receiver: a send schedules
        #: them and runs :attr:`foreground`, the plan of the rest. Computed here so that
        #: a plan without background receivers pays nothing for them on a send.
        self.background: tuple[tuple[int, Entry], ...] = tuple(
            (i, e) for i, e in enumerate(self.entries) if e[2].background
        )
        #: ``None`` without background receivers, never ``self``: a plan referring to
        #: itself would be cyclic garbage once a connect or disconnect drops it.
        self.foreground: Plan | None = (
            Plan([r for r in records if not r.background]) if self.background else None
        )
        #: ``send()`` cannot just call each receiver: some are coroutine receivers or
        #: background ones (see ``_sync.py``).
        self.wrapped = self.has_async or bool(self.background)
        #: One tier, no per-receiver timeouts, nothing to schedule: ``send_async`` may
        #: start it inline.
        self.simple = len(tiers) == 1 and not self.timed and not self.background
        #: Just one receiver, a coroutine one, without a timeout of its own.
        self.single = self.simple and len(records) == 1 and records[0].is_async


def label(signal: Signal) -> str:
    """How messages name a signal: its name if it has one, else its repr."""
    name = getattr(signal, "name", None)
    return repr(name) if name is not None else repr(signal)


# The files whose frames a collected exception's traceback must not keep (see _detach).
_ENGINE_DIR: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SIGNAL_FILES: Final = tuple(
    os.path.join(os.path.dirname(_ENGINE_DIR[:-1]), name) for name in ("_signal.py", "_registry.py")
)


def _detach(exc: BaseException) -> None:
    """Drop the engine's own frames from the head of ``exc``'s traceback.

    A collected exception is stored in the result list, and its traceback starts at the
    engine frame that caught it, whose locals hold that very list (and the receivers,
    and the kwargs): a reference cycle that only the cyclic GC can free. Meanwhile a
    weak receiver whose owner is gone stays alive and is called by the next send, and
    the payload (a request) stays in memory. Starting the traceback at the receiver's
    own frame breaks the cycle and loses nothing a user debugs with.
    """
    tb = exc.__traceback__
    while tb is not None and _is_engine(tb.tb_frame):
        tb = tb.tb_next
    exc.__traceback__ = tb


def _is_engine(frame: FrameType) -> bool:
    filename = frame.f_code.co_filename
    return filename.startswith(_ENGINE_DIR) or filename in _SIGNAL_FILES


def collected(signal: Signal, receiver: Any, exc: BaseException) -> BaseException:
    """Log ``exc``, raised by ``receiver`` under the collect policy; return it (its value)."""
    _detach(exc)
    get_logger().error(
        "receiver %s of signal %s raised %s",
        describe(receiver),
        label(signal),
        type(exc).__name__,
        exc_info=exc,
    )
    return exc


def collectible(exc: BaseException, collect: bool) -> bool:
    """Whether the collect policy turns ``exc``, raised by a receiver, into that
    receiver's value: any ``Exception``, and a cancellation the receiver raised itself
    (:func:`own_cancellation`). Anything else (a real cancellation, ``KeyboardInterrupt``)
    goes on, as it does under the raise policy."""
    return collect and (isinstance(exc, Exception) or own_cancellation(exc))


def own_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is a cancellation that a receiver raised itself, nobody having
    cancelled the send: under the collect policy that is the receiver's failure, and
    must not cancel (and so break) what sent the signal. Called only with a
    ``BaseException`` that is not an ``Exception``, while the receiver's task runs."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and isinstance(exc, asyncio.CancelledError):
        # A real cancellation of this task (the sender's, or a receiver's task that a
        # failing sibling, a timeout or the sender's own cancellation cancels) counts
        # in ``cancelling()`` until it is handled.
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return False
        return task is not None and task.cancelling() == 0
    trio = sys.modules.get("trio")
    if trio is not None and isinstance(exc, trio.Cancelled):
        # A cancel scope around this task really is cancelled exactly when its
        # effective deadline is -inf.
        try:
            return bool(trio.current_effective_deadline() != float("-inf"))
        except RuntimeError:
            return False
    return False


#: Set around a send by a caller that logs that send's timeouts itself (the adapters
#: write one record per send, naming every receiver cut off): :func:`expired` offers it
#: each timeout as ``report(signal, receiver, seconds)``, and logs the ones it declines
#: (``False``), so none goes unlogged.
timeout_reporter: ContextVar[Callable[[Any, Any, float], bool] | None] = ContextVar(
    "asignal_timeout_reporter", default=None
)


def expired(signal: Signal, receiver: Any, seconds: float, *, log: bool) -> TimeoutError:
    """The ``TimeoutError`` of a receiver that the send's or its own deadline cut off;
    ``log``: log it, or hand it to the :data:`timeout_reporter` that takes it."""
    exc = TimeoutError(
        f"receiver {describe(receiver)} of signal {label(signal)} did not finish "
        f"within {seconds:g} s"
    )
    if log:
        report = timeout_reporter.get()
        if report is None or not report(signal, receiver, seconds):
            get_logger().error("%s", exc)
    return exc


def send_expired(signal: Signal, seconds: float) -> TimeoutError:
    return TimeoutError(f"send_async of signal {label(signal)} timed out after {seconds:g} s")


def failure_of(signal: Signal, failures: list[tuple[int, BaseException]]) -> BaseException:
    """What to raise for ``failures``, in dispatch order: one exception as itself, several
    as an ``ExceptionGroup`` (a ``BaseExceptionGroup`` if any is not an ``Exception``).

    ``failures`` is emptied: it belongs to an object that the raised traceback's frames
    reference, and must not hold the exceptions in a cycle with them. Raise the result
    outside any ``except`` block, or it gets the group being handled as its
    ``__context__``: another cycle (the group holds it); and drop the local that held
    it, since the raising frame joins its traceback.
    """
    failures.sort(key=lambda f: f[0])
    excs = [exc for _, exc in failures]
    failures.clear()
    if len(excs) == 1:
        return excs[0]
    return BaseExceptionGroup(f"{len(excs)} receivers of signal {label(signal)} raised", excs)


def on_trio() -> bool:
    """Whether the running backend is trio. trio marks sniffio's thread-local while it
    steps its tasks (in guest mode too); without trio (or sniffio) imported, trio cannot
    be running, and asking ``sys.modules`` is cheaper than the thread-local."""
    if "trio" not in sys.modules:
        return False
    sniffio = sys.modules.get("sniffio")
    return sniffio is not None and sniffio.thread_local.name == "trio"
