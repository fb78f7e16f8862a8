"""One request's spans: the Starlette example app behind OpenTelemetry's ASGI middleware,
asignal instrumented with :mod:`asignal.contrib.opentelemetry`, an in-memory exporter.

``GET /fail`` raises in the app, so the adapter sends ``got_request_exception`` and then
``request_finished``; the receivers of :mod:`examples.receivers` listen (a request logger,
a slow receiver, one that hangs until the adapter's timeout cuts it off, an error
reporter). The printed tree is what a tracing backend would show for that request: the
server span, each send's span under it, each receiver's span under its send, the
timeout as an event with error status. Then the receiver metrics the same run recorded.

``python -m examples.tracing_demo`` runs it alone; ``make demo`` runs it at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import anyio
import httpx
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from asignal import Signal, signals
from asignal.contrib import opentelemetry as asignal_otel

from . import receivers, serving, starlette_app

#: The adapter's timeout (seconds) that cuts the hanging receiver off; and in fast mode.
TIMEOUT = 0.3
FAST_TIMEOUT = 0.05


@dataclass
class Traced:
    """What the in-memory exporter and reader collected for one request."""

    status: int
    spans: list[ReadableSpan]
    #: metric name -> [(receiver, value)]: count of a histogram, value of a counter.
    metrics: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name.startswith(prefix)]


class _ServerSpanEnded(SpanProcessor):
    # The server span ends after the response body: only then is the trace complete.
    def __init__(self) -> None:
        self.ended = anyio.Event()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is SpanKind.SERVER:
            self.ended.set()


def _silence(record: logging.LogRecord) -> bool:
    return False


async def trace_one_request(*, fast: bool = False) -> Traced:
    """Serve the example app over HTTP on 127.0.0.1, send it ``GET /fail``, and return
    the spans and metrics of that request. Instruments asignal for the duration only."""
    exporter = InMemorySpanExporter()
    ended = _ServerSpanEnded()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer_provider.add_span_processor(ended)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    timeout = FAST_TIMEOUT if fast else TIMEOUT
    app = OpenTelemetryMiddleware(
        starlette_app.create_app(timeout=timeout), tracer_provider=tracer_provider
    )
    pairs: list[tuple[Signal, receivers.Receiver]] = [
        (signals.request_finished, receivers.log_request),
        (signals.request_finished, partial(receivers.slow_receiver, seconds=timeout / 5)),
        (signals.request_finished, receivers.hanging_receiver),
        (signals.got_request_exception, receivers.report_error),
    ]
    disconnect = receivers.connect(pairs)
    asignal_otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    # The app's failure and the cut-off receiver are expected: keep their logs quiet (a
    # filter, since uvicorn sets its loggers' levels when it starts).
    quiet = [logging.getLogger(n) for n in ("asignal", "uvicorn.error", "examples")]
    for logger in quiet:
        logger.addFilter(_silence)
    try:
        async with (
            serving.serve({"starlette": (app, "uvicorn")}) as running,
            httpx.AsyncClient(base_url=running["starlette"].url) as client,
        ):
            response = await client.get("/fail")
            with anyio.fail_after(10):
                await ended.ended.wait()
    finally:
        asignal_otel.uninstrument()
        disconnect()
        for logger in quiet:
            logger.removeFilter(_silence)
    traced = Traced(response.status_code, list(exporter.get_finished_spans()))
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                traced.metrics[metric.name] = [
                    (
                        str(dict(p.attributes or {}).get("asignal.receiver")),
                        int(getattr(p, "count", getattr(p, "value", 0))),
                    )
                    for p in metric.data.data_points
                ]
    meter_provider.shutdown()
    tracer_provider.shutdown()
    return traced


def span_tree(spans: Sequence[ReadableSpan]) -> list[str]:
    """One line per span, indented under its parent, siblings by start time: name,
    kind, duration, and what went wrong (status, ``asignal.*`` events)."""
    ids = {s.context.span_id for s in spans if s.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for s in spans:
        parent = s.parent.span_id if s.parent is not None and s.parent.span_id in ids else None
        children.setdefault(parent, []).append(s)
    rows: list[tuple[str, ReadableSpan]] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
            rows.append((f"{'  ' * depth}{s.name}", s))
            if s.context is not None:
                walk(s.context.span_id, depth + 1)

    walk(None, 0)
    width = max((len(label) for label, _ in rows), default=0)
    lines = []
    for label, s in rows:
        ms = ((s.end_time or 0) - (s.start_time or 0)) / 1e6
        notes = [e.name for e in s.events if e.name.startswith("asignal.")]
        if s.status.status_code is StatusCode.ERROR:
            notes.insert(0, f"ERROR {s.status.description or ''}".rstrip())
        kind = s.kind.name.lower()
        lines.append(f"  {label:<{width}}  {kind:<8} {ms:7.1f} ms  {', '.join(notes)}".rstrip())
    return lines


def check(traced: Traced) -> list[str]:
    """What the tree must show; each miss is one line."""
    problems = []
    servers = [s for s in traced.spans if s.kind is SpanKind.SERVER]
    sends = traced.named("asignal.send ")
    if traced.status != 500 or len(servers) != 1:
        problems.append(f"tracing: expected one server span of a 500, got {traced.status}")
    elif any(s.parent is None or s.parent.span_id != servers[0].context.span_id for s in sends):
        problems.append("tracing: a send's span is not a child of the request's server span")
    names = sorted(s.name for s in sends)
    want = [f"asignal.send {signals.got_request_exception.name}"]
    want.append(f"asignal.send {signals.request_finished.name}")
    if names != sorted(want):
        problems.append(f"tracing: send spans {names}, expected {sorted(want)}")
    hanging = traced.named("asignal.receiver examples.receivers.hanging_receiver")
    if [[e.name for e in s.events] for s in hanging] != [["asignal.timeout"]]:
        problems.append("tracing: the hanging receiver's span has no asignal.timeout event")
    if len(traced.named("asignal.receiver ")) != 4:
        problems.append("tracing: expected 4 receiver spans")
    return problems


async def run(*, fast: bool = False, out: Callable[[str], None] = print) -> list[str]:
    """Trace one request, print its span tree and metrics; return the problems found."""
    traced = await trace_one_request(fast=fast)
    out("")
    out(
        f"one request's spans (GET /fail -> {traced.status}, Starlette example, "
        "OpenTelemetryMiddleware + asignal.contrib.opentelemetry, in-memory exporter):"
    )
    for line in span_tree(traced.spans):
        out(line)
    out("its metrics:")
    for name, points in sorted(traced.metrics.items()):
        shown = ", ".join(f"{receiver.rsplit('.', 1)[-1]}={n}" for receiver, n in points)
        out(f"  {name:<28} {shown}")
    return check(traced)


def main() -> int:
    problems = anyio.run(partial(run, fast=False), backend="asyncio")
    for problem in problems:
        print(f"  - {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
