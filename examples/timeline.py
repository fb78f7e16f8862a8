"""The demo's instrument: which signal fired, for which sender, and when each receiver
started and ended, in milliseconds from the start of the request.

The demo, the servers and the receivers share one process and one event loop, so one
clock (:func:`time.perf_counter`) times them all, and the recorder needs no IPC. Requests
are sent one after another; every event between :meth:`Timeline.begin` and the end of
that request belongs to it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from asignal import Signal

from .receivers import Receiver, describe_app

#: Outcome of a receiver cancelled by the timeout of its send.
CUT_OFF = "cut off"


@dataclass
class Fired:
    """A signal was sent."""

    signal: str
    sender: Any
    at: float
    kwargs: dict[str, Any]

    @property
    def detail(self) -> str:
        return _detail(self.kwargs)


@dataclass
class Span:
    """One receiver ran, from ``start`` to ``end`` (``perf_counter`` seconds)."""

    signal: str
    receiver: str
    start: float
    end: float | None = None
    outcome: str = "running"
    value: str = ""


@dataclass
class LogLine:
    at: float
    logger: str
    message: str


@dataclass
class Exchange:
    """Everything recorded during one request (or during serving start-up/shut-down)."""

    label: str
    t0: float
    fired: list[Fired] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    result: str = ""
    status: int | None = None
    body: str = ""
    answered_at: float | None = None

    def names(self) -> list[str]:
        """The names of the signals fired, in the order they fired."""
        return [f.signal for f in self.fired]

    def spans_of(self, receiver: str) -> list[Span]:
        return [s for s in self.spans if s.receiver == receiver]

    def fired_of(self, signal: str) -> list[Fired]:
        return [f for f in self.fired if f.signal == signal]

    def render(self) -> list[str]:
        """The exchange as printable lines, times in ms from ``t0``."""

        def ms(t: float) -> str:
            return f"{(t - self.t0) * 1000:7.1f}"

        lines = [f"{self.label}  {self.result}".rstrip()]
        if self.answered_at is not None:
            lines[0] += f"  (answered after {ms(self.answered_at).strip()} ms)"
        # Firings (each with its receivers) and log lines, in the order they happened.
        events: list[tuple[float, list[str]]] = []
        for fired in self.fired:
            block = [
                f"  {ms(fired.at)} ms  {fired.signal:<24} sender={describe_app(fired.sender)}"
                + (f"  {fired.detail}" if fired.detail else "")
            ]
            for span in self.spans:
                if span.signal == fired.signal and _owner(self.fired, span) is fired:
                    end = ms(span.end).strip() if span.end is not None else "…"
                    value = f": {span.value}" if span.value else ""
                    block.append(
                        f"             └ {span.receiver:<18} {ms(span.start).strip():>6} → "
                        f"{end:>6} ms  {span.outcome}{value}"
                    )
            events.append((fired.at, block))
        for entry in self.logs:
            events.append((entry.at, [f"  {ms(entry.at)} ms  log {entry.logger}: {entry.message}"]))
        if self.answered_at is not None and self.spans:
            # Where the response left, among receivers that may end after it (background).
            events.append((self.answered_at, [f"  {ms(self.answered_at)} ms  <- answer received"]))
        events.sort(key=lambda event: event[0])
        return lines + [line for _, block in events for line in block]


def _owner(fired: list[Fired], span: Span) -> Fired | None:
    """The last firing of the span's signal at or before the span started."""
    owner = None
    for f in fired:
        if f.signal == span.signal and f.at <= span.start:
            owner = f
    return owner


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _detail(kwargs: dict[str, Any]) -> str:
    """The interesting keyword arguments of a signal, in a few words."""
    parts = []
    if (response := kwargs.get("response")) is not None and hasattr(response, "status_code"):
        parts.append(f"status={response.status_code}")
    for key in ("exception", "exc"):
        if kwargs.get(key) is not None:
            parts.append(f"{key}={type(kwargs[key]).__name__}")
    if (template := kwargs.get("template")) is not None:
        parts.append(f"template={getattr(template, 'name', template)}")
    for key in ("message", "category", "user", "ip"):
        if key in kwargs:
            parts.append(f"{key}={_short(kwargs[key])!r}")
    return " ".join(parts)


class Timeline:
    """Records signals and receiver spans into the current :class:`Exchange`.

    Use :meth:`trace` as the ``wrap=`` of :func:`examples.receivers.connect`, and
    :meth:`watch` on every signal whose firings should appear even without receivers.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.serving = Exchange("serving (lifespan start-up and shut-down)", clock())
        self.current: Exchange | None = None
        self.exchanges: list[Exchange] = []
        self._tick = anyio.Event()

    def _changed(self) -> None:
        self._tick.set()
        self._tick = anyio.Event()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` is true, re-checking whenever a signal fires; give up
        after ``timeout`` seconds. Returns whether it became true."""
        with anyio.move_on_after(timeout):
            while not predicate():
                await self._tick.wait()
            return True
        return False

    @property
    def _target(self) -> Exchange:
        return self.current if self.current is not None else self.serving

    @contextmanager
    def begin(self, label: str) -> Iterator[Exchange]:
        """Record into a new exchange until the block ends."""
        exchange = Exchange(label, self.clock())
        self.exchanges.append(exchange)
        self.current = exchange
        try:
            yield exchange
        finally:
            self.current = None

    def watch(self, signals: Iterable[Signal]) -> Callable[[], None]:
        """Record every firing of ``signals``; return a function that stops it.

        The recorder is a sync receiver with ``priority=1``: a tier of its own that runs
        before the receivers of default priority, so a firing is stamped before any of its
        receivers starts.
        """
        undo = []
        for signal in signals:
            name = signal_name(signal)

            def record(sender: Any, /, _name: str = name, **kwargs: Any) -> None:
                self._target.fired.append(Fired(_name, sender, self.clock(), kwargs))
                self._changed()

            signal.connect(record, weak=False, priority=1)
            undo.append((signal, record))

        def unwatch() -> None:
            for signal, record in undo:
                signal.disconnect(record)

        return unwatch

    def trace(self, signal: Signal, receiver: Receiver) -> Receiver:
        """Wrap ``receiver`` so that its start, end, outcome and value are recorded."""
        name = signal_name(signal)
        label = receiver_name(receiver)

        async def traced(sender: Any, /, **kwargs: Any) -> Any:
            span = Span(name, label, self.clock())
            self._target.spans.append(span)
            try:
                value = receiver(sender, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
            except anyio.get_cancelled_exc_class():
                span.outcome = CUT_OFF
                raise
            except Exception as exc:
                span.outcome = f"raised {type(exc).__name__}"
                raise
            else:
                span.outcome = "ok"
                span.value = "" if value is None else _short(value)
                return value
            finally:
                span.end = self.clock()
                # A background receiver ends after its request's signals: wake waiters.
                self._changed()

        # The asignal logger names receivers by qualified name: keep the original's.
        traced.__name__ = label
        traced.__qualname__ = getattr(receiver, "__qualname__", label)
        traced.__module__ = getattr(receiver, "__module__", __name__)
        return traced

    @contextmanager
    def capture_logs(self, show: Iterable[str], hide: Iterable[str] = ()) -> Iterator[None]:
        """Until the block ends, record warnings and errors of the ``show`` loggers into the
        timeline, and drop the ``hide`` loggers' records, instead of printing them: the
        demo prints the timeline. Handlers are restored afterwards."""
        handler = _TimelineHandler(self)
        saved = []
        for name, shown in [(n, True) for n in show] + [(n, False) for n in hide]:
            logger = logging.getLogger(name)
            saved.append((logger, logger.propagate, list(logger.handlers)))
            for old in list(logger.handlers):
                logger.removeHandler(old)
            logger.addHandler(handler if shown else logging.NullHandler())
            logger.propagate = False
        try:
            yield
        finally:
            for logger, propagate, handlers in saved:
                for current in list(logger.handlers):
                    logger.removeHandler(current)
                for old in handlers:
                    logger.addHandler(old)
                logger.propagate = propagate


class _TimelineHandler(logging.Handler):
    def __init__(self, timeline: Timeline) -> None:
        super().__init__(logging.WARNING)
        self.timeline = timeline

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().splitlines()[0] if record.getMessage() else ""
        self.timeline._target.logs.append(
            LogLine(self.timeline.clock(), record.name, _short(message, 110))
        )


def signal_name(signal: Signal) -> str:
    """``request_finished`` for the signal named ``request-finished``."""
    return str(getattr(signal, "name", "signal")).replace("-", "_")


def receiver_name(receiver: Receiver) -> str:
    if isinstance(receiver, functools.partial):
        receiver = receiver.func
    name = getattr(receiver, "__name__", None) or type(receiver).__name__
    owner = getattr(receiver, "__self__", None)
    return f"{type(owner).__name__}.{name}" if owner is not None else name
