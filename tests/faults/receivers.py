"""Faulty receivers, one kind at a time, on every request signal of one app; what they did.

The kinds are the issue's: ``raise`` (an async receiver raising, on its first step or
after a checkpoint), ``sync-raise``, ``hang`` (never finishes on its own), ``slow``
(finishes within the budget, but takes a while) and ``self-cancel`` (raises the
cancellation exception itself while nobody cancelled the send). Every call is recorded as
a :class:`Call`, with the request id of :data:`~tests.faults.apps.REQUEST_ID`. Outside a
request (Quart pushes an app context to run ``before_serving``, for one) they do nothing:
the runs are about responses.

:class:`LogTally` counts what the ``asignal`` logger (and the servers' loggers) report,
keeping no record: a stored record would keep its traceback, frames and request alive,
and that is exactly what the memory checks look for.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel

from asignal import NamedSignal, signals

from .apps import REQUEST_ID, Observed

KINDS = ("raise", "sync-raise", "hang", "slow", "self-cancel")
#: Not a fault: connected to the signals that follow the response only, it waits until
#: its request's ASGI call has returned. The call returns first unless the adapter
#: awaits that send inside the call; then the budget cancels the receiver.
AFTER_RETURN = "after-return"

#: The request-scoped signals that receivers are connected to.
REQUEST_SIGNALS: tuple[NamedSignal, ...] = (
    signals.appcontext_pushed,
    signals.request_started,
    signals.got_request_exception,
    signals.request_finished,
    signals.request_tearing_down,
    signals.appcontext_tearing_down,
    signals.appcontext_popped,
    signals.got_background_exception,
)
#: Of those, the ones sent once the response is out (on Starlette and FastAPI).
AFTER_RESPONSE = frozenset(
    {
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
        "got_background_exception",
    }
)


class Fault(RuntimeError):
    """What the raising receivers raise."""


@dataclass
class Call:
    """One receiver call: which request and signal, when (``time.monotonic()``), and how
    it ended: ``"ok"``, ``"cancelled"`` (it saw the cancellation exception) or the name of
    the exception it raised (``"running"`` until it ends)."""

    rid: int | None
    signal: str
    kind: str
    started: float
    ended: float | None = None
    outcome: str = "running"


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _raise_cancellation() -> None:
    """Raise the running backend's cancellation exception while nobody cancelled us."""
    if _on_asyncio():
        raise asyncio.CancelledError()
    # trio's Cancelled has no public constructor: leak one out of a scope we cancelled.
    leaked: BaseException | None = None
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.lowlevel.checkpoint()
        except anyio.get_cancelled_exc_class() as exc:
            leaked = exc
    assert leaked is not None
    raise leaked


class Faults:
    """Receivers of the given ``kinds`` connected (strongly, ``sender=app``) to every
    signal of :data:`REQUEST_SIGNALS`; ``calls`` records each call. ``slow`` is how long
    (seconds) a slow receiver takes."""

    def __init__(
        self,
        app: Any,
        kinds: tuple[str, ...],
        *,
        slow: float = 0.02,
        served: Observed,
        keep: bool = True,
    ) -> None:
        unknown = set(kinds) - {*KINDS, AFTER_RETURN}
        assert not unknown, f"unknown receiver kinds {unknown}"
        self.app = app
        self.served = served
        self.kinds = kinds
        self.slow = slow
        self.calls: list[Call] = []
        #: With ``keep=False`` (the memory runs) calls are only counted here, by
        #: ``(kind, outcome)``: a record per call would be growth of our own.
        self.keep = keep
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._connected: list[tuple[NamedSignal, Callable[..., Any]]] = []

    def connect(self) -> Faults:
        for sig in REQUEST_SIGNALS:
            name = sig.name.replace("-", "_")  # as in asignal.signals
            for kind in self.kinds:
                if kind == AFTER_RETURN and name not in AFTER_RESPONSE:
                    continue
                receiver = self._make(name, kind)
                sig.connect(receiver, sender=self.app, weak=False)
                self._connected.append((sig, receiver))
        return self

    def disconnect(self) -> None:
        for sig, receiver in self._connected:
            sig.disconnect(receiver, sender=self.app)
        self._connected.clear()

    def _start(self, signal: str, kind: str) -> Call:
        call = Call(REQUEST_ID.get(), signal, kind, time.monotonic())
        if self.keep:
            with self._lock:
                self.calls.append(call)
        return call

    def _end(self, call: Call, outcome: str) -> None:
        call.ended, call.outcome = time.monotonic(), outcome
        if not self.keep:
            with self._lock:
                self.counts[call.kind, outcome] += 1

    def _make(self, signal: str, kind: str) -> Callable[..., Any]:
        if kind == "sync-raise":

            def sync_raise(sender: Any, **kwargs: Any) -> None:
                if REQUEST_ID.get() is None:
                    return  # not a request's (Quart's app context at start-up, say)
                self._end(self._start(signal, kind), "Fault")
                raise Fault(f"sync receiver of {signal}")

            receiver: Callable[..., Any] = sync_raise
        else:

            async def faulty(sender: Any, **kwargs: Any) -> None:
                if REQUEST_ID.get() is None:
                    return
                call = self._start(signal, kind)
                outcome = "ok"
                try:
                    await self._behave(call)
                except anyio.get_cancelled_exc_class():
                    outcome = "cancelled" if kind != "self-cancel" else "self-cancelled"
                    raise
                except Exception as exc:
                    outcome = type(exc).__name__
                    raise
                finally:
                    self._end(call, outcome)

            receiver = faulty
        # The log names receivers by qualified name; the tally recognises the kind by it.
        receiver.__qualname__ = receiver.__name__ = f"fault_{kind.replace('-', '_')}"
        return receiver

    async def _behave(self, call: Call) -> None:
        kind = call.kind
        if kind == "raise":
            if (call.rid or 0) % 2:
                # After a checkpoint: the receiver is no longer on the inline path.
                await anyio.lowlevel.checkpoint()
            raise Fault(f"receiver of {call.signal}")
        if kind == "hang":
            await anyio.sleep_forever()
        elif kind == "slow":
            await anyio.sleep(self.slow)
        elif kind == "self-cancel":
            await _raise_cancellation()
        elif kind == AFTER_RETURN and call.rid is not None:
            returned = self.served.returned.get(call.rid)
            if returned is not None:
                await returned.wait()

    def by_kind(self, kind: str) -> list[Call]:
        return [call for call in self.calls if call.kind == kind]


@dataclass(frozen=True)
class Logged:
    """One log record, reduced: its logger, level, the request it was logged for, the
    receiver kind it names (if any), and whether it reports a timeout."""

    logger: str
    level: int
    rid: int | None
    kind: str | None
    timeout: bool
    exception: str | None
    message: str


class LogTally(logging.Handler):
    """Reduces every record of the loggers it is attached to into a :class:`Logged`.

    While attached (``with tally:``), those loggers stop propagating, so nothing else
    (pytest's log capture included) keeps the records, their tracebacks and frames.
    """

    LOGGERS = ("asignal", "asyncio", "uvicorn.error", "hypercorn.error", "asignal-faults")

    def __init__(self, *, keep: bool = True) -> None:
        super().__init__(logging.DEBUG)
        self.logged: list[Logged] = []
        #: With ``keep=False`` records are only counted here, by
        #: ``(logger, kind, timeout, exception)``.
        self.keep = keep
        self.tallied: Counter[tuple[str, str | None, bool, str | None]] = Counter()
        self._saved: list[tuple[logging.Logger, bool, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        error = record.exc_info[1] if record.exc_info else None
        kind = next(
            (k for k in (*KINDS, AFTER_RETURN) if f"fault_{k.replace('-', '_')}" in message),
            None,
        )
        timeout = isinstance(error, TimeoutError) or "did not finish" in message
        exception = type(error).__name__ if error is not None else None
        if not self.keep:
            self.tallied[record.name, kind, timeout, exception] += 1
            return
        self.logged.append(
            Logged(
                record.name,
                record.levelno,
                REQUEST_ID.get(),
                kind,
                timeout,
                exception,
                message.splitlines()[0][:200] if message else "",
            )
        )

    def __enter__(self) -> LogTally:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.propagate, logger.level))
            logger.addHandler(self)
            logger.propagate = False
            if logger.level == logging.NOTSET or logger.level > logging.WARNING:
                logger.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for logger, propagate, level in self._saved:
            logger.removeHandler(self)
            logger.propagate = propagate
            logger.setLevel(level)
        self._saved.clear()

    def counts(self) -> Counter[str]:
        """How many records per logger (``"asignal"``, ``"uvicorn.error"``, ...)."""
        return Counter(entry.logger for entry in self.logged)
