"""OpenTelemetry traces and metrics for every send and every receiver.

Set up (``pip install 'asignal[otel]'``)::

    from asignal.contrib import opentelemetry as asignal_otel

    asignal_otel.instrument()  # the global tracer and meter providers, or pass your own

or ``AsignalInstrumentor().instrument(tracer_provider=..., meter_provider=...)``, the
shape of the ``opentelemetry-instrumentation-*`` packages; ``opentelemetry-instrument``
finds it through the ``opentelemetry_instrumentor`` entry point ``asignal``.

Spans (all ``INTERNAL``):

- ``asignal.send <signal>``, one per ``send``/``send_async``, a child of the span current
  in the sender. Attributes ``asignal.signal``, ``asignal.sender_type``,
  ``asignal.receiver_count``, ``asignal.mode`` (``sync``, ``concurrent``, ``sequential``,
  ``limited``), ``asignal.errors`` (``raise``/``collect``), ``asignal.timeout`` (seconds,
  when set). Error status when the send raises; an event ``asignal.timeout`` when its
  ``_timeout`` expired.
- ``asignal.receiver <receiver>``, one per receiver that runs, a child of the send's span
  and current inside the receiver. Attributes ``asignal.signal``, ``asignal.receiver``
  (its qualified name) and, unless it returned, ``asignal.outcome`` (``error``,
  ``timeout``, ``cancelled``). An exception is recorded with error status under either
  error policy; a timeout is an ``asignal.timeout`` event plus error status; a
  cancellation is an ``asignal.cancelled`` event and leaves the status unset (it is not
  the receiver's fault).

Metrics (attributes ``asignal.signal`` and ``asignal.receiver``):

- ``asignal.receiver.duration`` (histogram, ``s``): how long each receiver ran;
- ``asignal.receiver.failures`` (counter; plus ``error.type``): receivers that raised;
- ``asignal.receiver.timeouts`` (counter): receivers cut off by a timeout;
- ``asignal.background.dropped`` and ``asignal.background.cancelled`` (counters, attribute
  ``asignal.receiver``): background calls refused because the runner was full or closed,
  and background calls cancelled when the runner's drain deadline passed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Generator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from time import perf_counter
from typing import Any, TypeAlias

from opentelemetry import context, propagate, trace
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider, get_meter
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

import asignal

from .. import _observe
from .._observe import Outcome, Site

__all__ = ["AsignalInstrumentor", "instrument", "uninstrument"]

_SCOPE = "asignal"
_log = logging.getLogger(__name__)
# Bound once: these run twice per receiver.
_attach = context.attach
_detach = context.detach
_in_context = trace.set_span_in_context
# No parent: background calls start traces of their own.
_ROOT = context.Context()

# (span, context token, the span's context); (span, token, perf_counter at start, attributes)
_SendHandle: TypeAlias = tuple[trace.Span, object, context.Context]
_ReceiverHandle: TypeAlias = tuple[trace.Span, object, float, dict[str, Any]]


_type_names: dict[type, str] = {}


def _type_name(obj: object) -> str:
    tp = type(obj)
    name = _type_names.get(tp)
    if name is None:
        module = tp.__module__
        name = tp.__qualname__ if module == "builtins" else f"{module}.{tp.__qualname__}"
        if len(_type_names) < 1024:  # senders' types are few; never grow without bound
            _type_names[tp] = name
    return name


class _Observer:
    """The :class:`asignal._observe.Observer` that reports to OpenTelemetry."""

    def __init__(
        self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None
    ) -> None:
        version = asignal.__version__
        self.tracer = trace.get_tracer(_SCOPE, version, tracer_provider)
        #: Whether to record durations: not into a meter provider known to drop them.
        self.measure = not isinstance(meter_provider, NoOpMeterProvider)
        meter = get_meter(_SCOPE, version, meter_provider)
        self.duration = meter.create_histogram(
            "asignal.receiver.duration", unit="s", description="How long each receiver ran."
        )
        self.failures = meter.create_counter(
            "asignal.receiver.failures", unit="{call}", description="Receivers that raised."
        )
        self.timeouts = meter.create_counter(
            "asignal.receiver.timeouts",
            unit="{call}",
            description="Receivers cancelled because a timeout expired.",
        )
        self.dropped = meter.create_counter(
            "asignal.background.dropped",
            unit="{call}",
            description="Background calls refused: the runner was full or closed.",
        )
        self.cancelled = meter.create_counter(
            "asignal.background.cancelled",
            unit="{call}",
            description="Background calls cancelled at the runner's drain deadline.",
        )

    # --- sends ------------------------------------------------------------------------

    def send_started(
        self,
        signal: str,
        sender: object,
        *,
        receivers: int,
        mode: str,
        errors: str,
        timeout: float | None,
    ) -> object:
        attributes: dict[str, Any] = {
            "asignal.signal": signal,
            "asignal.sender_type": _type_name(sender),
            "asignal.receiver_count": receivers,
            "asignal.mode": mode,
            "asignal.errors": errors,
        }
        if timeout is not None:
            attributes["asignal.timeout"] = timeout
        span = self.tracer.start_span(
            f"asignal.send {signal}", kind=SpanKind.INTERNAL, attributes=attributes
        )
        ctx = trace.set_span_in_context(span)
        return span, context.attach(ctx), ctx

    def send_finished(self, handle: object, outcome: Outcome, error: BaseException | None) -> None:
        send: _SendHandle = handle  # type: ignore[assignment]
        span, token, _ = send
        context.detach(token)  # type: ignore[arg-type]
        if outcome != "ok":
            _mark(span, outcome, error)
        span.end()

    # --- receivers --------------------------------------------------------------------

    def receiver_started(self, site: Site, send: object) -> object:
        data = site.data
        if data is None:
            attributes = {"asignal.signal": site.signal, "asignal.receiver": site.name}
            data = site.data = (f"asignal.receiver {site.name}", attributes)
        span = self.tracer.start_span(data[0], send[2], attributes=data[1])  # type: ignore[index]
        return span, _attach(_in_context(span)), perf_counter(), data[1]

    def receiver_finished(
        self, handle: object, outcome: Outcome, error: BaseException | None
    ) -> None:
        receiver: _ReceiverHandle = handle  # type: ignore[assignment]
        span, token, started, attributes = receiver
        seconds = perf_counter() - started
        _detach(token)  # type: ignore[arg-type]
        if outcome != "ok":
            _mark(span, outcome, error)
            if outcome == "error" and error is not None:
                self.failures.add(1, {**attributes, "error.type": _type_name(error)})
            elif outcome == "timeout":
                self.timeouts.add(1, attributes)
        span.end()
        if self.measure:
            self.duration.record(seconds, attributes)

    # --- background calls -------------------------------------------------------------

    def background_started(self, name: str) -> object:
        attributes = {"asignal.receiver": name}
        # A trace of its own (it outlives the request), linked to the span that
        # scheduled it.
        scheduler = trace.get_current_span().get_span_context()
        span = self.tracer.start_span(
            f"asignal.background {name}",
            _ROOT,
            attributes=attributes,
            links=[trace.Link(scheduler)] if scheduler.is_valid else None,
        )
        return span, _attach(_in_context(span)), perf_counter(), attributes

    def background_finished(
        self, handle: object, outcome: Outcome, error: BaseException | None
    ) -> None:
        self.receiver_finished(handle, outcome, error)

    def background_dropped(self, name: str) -> None:
        self.dropped.add(1, {"asignal.receiver": name})

    def background_cancelled(self, name: str) -> None:
        self.cancelled.add(1, {"asignal.receiver": name})

    # --- across processes -------------------------------------------------------------

    def inject(self, headers: MutableMapping[str, str]) -> None:
        propagate.inject(headers)

    def extract(self, headers: Mapping[str, str]) -> AbstractContextManager[None]:
        return _attached(propagate.extract(headers))


@contextmanager
def _attached(ctx: context.Context) -> Generator[None, None, None]:
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def _mark(span: trace.Span, outcome: Outcome, error: BaseException | None) -> None:
    span.set_attribute("asignal.outcome", outcome)
    if outcome == "timeout":
        span.add_event("asignal.timeout")
        span.set_status(Status(StatusCode.ERROR, "timed out"))
        span.set_attribute("error.type", "timeout")
    elif outcome == "cancelled":
        span.add_event("asignal.cancelled")
    elif error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.set_attribute("error.type", _type_name(error))


class AsignalInstrumentor:
    """Instruments asignal for OpenTelemetry, as the ``opentelemetry-instrumentation-*``
    packages' instrumentors do (the same methods and arguments as their
    ``BaseInstrumentor``, without depending on it): one instance per process, and
    :meth:`instrument` twice is one instrumentation."""

    _instance: AsignalInstrumentor | None = None
    _lock = threading.Lock()

    def __new__(cls, *args: Any, **kwargs: Any) -> AsignalInstrumentor:
        with cls._lock:
            if cls._instance is None:
                cls._instance = super().__new__(cls)
            return cls._instance

    def instrumentation_dependencies(self) -> Collection[str]:
        """What must be installed for this instrumentation: ``asignal`` itself."""
        return ("asignal >= 0.1",)

    @property
    def is_instrumented_by_opentelemetry(self) -> bool:
        """Whether :meth:`instrument` is in effect."""
        return isinstance(_observe.observer, _Observer)

    def instrument(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        **kwargs: Any,
    ) -> None:
        """Report every send and receiver from now on.

        Other keyword arguments of ``BaseInstrumentor.instrument`` (``skip_dep_check``,
        ``raise_exception_on_conflict``) are accepted and ignored. Instrumenting again
        while instrumented logs a warning and does nothing (uninstrument first to change
        providers), as ``BaseInstrumentor`` does.

        :param tracer_provider: where spans go (default: the global tracer provider).
        :param meter_provider: where metrics go (default: the global meter provider).
        """
        with self._lock:
            if self.is_instrumented_by_opentelemetry:
                _log.warning("Attempting to instrument while already instrumented")
                return
            _observe.observer = _Observer(tracer_provider, meter_provider)

    def uninstrument(self, **kwargs: Any) -> None:
        """Stop reporting; sends go back to their uninstrumented paths (sends already
        running still end their spans). Logs a warning when not instrumented, as
        ``BaseInstrumentor`` does."""
        with self._lock:
            if self.is_instrumented_by_opentelemetry:
                _observe.observer = None
            else:
                _log.warning("Attempting to uninstrument while already uninstrumented")


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Report every send and receiver to OpenTelemetry: ``AsignalInstrumentor().instrument(
    tracer_provider=..., meter_provider=...)``; ``None`` means the global provider."""
    AsignalInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)


def uninstrument() -> None:
    """Stop reporting: ``AsignalInstrumentor().uninstrument()``."""
    AsignalInstrumentor().uninstrument()
