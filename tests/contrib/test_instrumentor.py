"""The instrumentor's shape, what uninstrumenting undoes, trace context across processes,
and what ``import asignal`` does not import."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asignal import NamedSignal, _observe
from asignal.contrib import opentelemetry as asignal_otel
from asignal.contrib.opentelemetry import AsignalInstrumentor

from .conftest import Telemetry


async def noop(sender: Any) -> None:
    await anyio.sleep(0)


def test_one_instrumentor_per_process() -> None:
    assert AsignalInstrumentor() is AsignalInstrumentor()
    assert "asignal >= 0.1" in AsignalInstrumentor().instrumentation_dependencies()


def test_registered_for_opentelemetry_instrument() -> None:
    [ep] = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "asignal"]
    assert ep.load() is AsignalInstrumentor


def test_instrument_uninstrument_and_instrument_again(telemetry: Telemetry) -> None:
    sig = NamedSignal("toggled")

    def receiver(sender: Any) -> None:
        return None

    instrumentor = AsignalInstrumentor()
    assert instrumentor.is_instrumented_by_opentelemetry
    with sig.connected_to(receiver):
        sig.send(None)
        assert len(telemetry.spans()) == 2
        asignal_otel.uninstrument()
        assert _observe.observer is None
        assert not instrumentor.is_instrumented_by_opentelemetry
        sig.send(None)
        assert len(telemetry.spans()) == 2  # nothing more
        # Keyword arguments of BaseInstrumentor.instrument are accepted.
        instrumentor.instrument(tracer_provider=telemetry.tracer_provider, skip_dep_check=True)
        sig.send(None)
        assert len(telemetry.spans()) == 4


def test_instrumenting_twice_keeps_the_first_providers(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    other = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(other))
    asignal_otel.instrument(tracer_provider=provider)
    assert "Attempting to instrument while already instrumented" in caplog.text
    sig = NamedSignal("twice")
    with sig.connected_to(print):
        sig.send("x")
    assert other.get_finished_spans() == ()
    assert len(telemetry.spans()) == 2


@pytest.mark.anyio
async def test_trace_context_crosses_through_headers(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    headers: dict[str, str] = {}
    with tracer.start_as_current_span("publisher") as publisher:
        _observe.inject(headers)
    assert headers["traceparent"].startswith("00-")
    with tracer.start_as_current_span("publisher again") as again:
        later = _observe.trace_headers()
    assert later is not None
    assert later["traceparent"].split("-")[2] == format(again.get_span_context().span_id, "016x")
    sig = NamedSignal("remote")
    # The receiving side: no span is current; the headers carry the publisher's.
    with sig.connected_to(noop), _observe.extract(headers):
        await sig.send_async(None)
    send = telemetry.span("asignal.send remote")
    assert send.parent is not None
    assert send.parent.span_id == publisher.get_span_context().span_id
    assert send.parent.is_remote
    assert send.context is not None
    assert send.context.trace_id == publisher.get_span_context().trace_id


def test_inject_and_extract_do_nothing_uninstrumented() -> None:
    assert _observe.observer is None
    headers: dict[str, str] = {}
    _observe.inject(headers)
    assert headers == {}
    assert _observe.trace_headers() is None
    with _observe.extract({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}):
        pass


def test_import_asignal_imports_no_opentelemetry() -> None:
    code = (
        "import sys, asignal, asignal.signals\n"
        "bad = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.anyio
async def test_uninstrumenting_during_a_send_ends_its_spans(telemetry: Telemetry) -> None:
    sig = NamedSignal("midway")

    async def first(sender: Any) -> None:
        asignal_otel.uninstrument()

    async def second(sender: Any) -> str:
        return "still reported"

    with sig.connected_to(first), sig.connected_to(second):
        results = await sig.send_async(None)
        assert results == [(first, None), (second, "still reported")]
        await sig.send_async(None)  # after: not reported
    assert sorted(s.name for s in telemetry.spans()) == sorted(
        [
            "asignal.send midway",
            f"asignal.receiver {first.__module__}.{first.__qualname__}",
            f"asignal.receiver {second.__module__}.{second.__qualname__}",
        ]
    )
