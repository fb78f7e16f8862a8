"""Case ``otel``: what the observation hook and ``asignal.contrib.opentelemetry`` cost.

One ``send_async`` to N = 10 and N = 100 ``async def`` receivers that return without
suspending (the worst case for relative overhead: the receivers themselves cost almost
nothing), on asyncio, four ways within every round:

- ``never imported`` (N = 10): in a child process that imports ``asignal`` and never
  ``opentelemetry`` (the child checks); the parent asks it for each sample over a pipe,
  so its samples interleave with the others';
- ``uninstrumented``: this process, after ``instrument()`` and ``uninstrument()``: the
  hook's one flag check is all that remains;
- ``traces``: instrumented with the SDK's ``TracerProvider`` (no span processor: the
  SDK's own cost of a span, nothing exported) and the API's no-op meter provider;
- ``traces+metrics``: the same plus the SDK's ``MeterProvider`` (``InMemoryMetricReader``).

And two floors, measured in the same rounds with the same providers, each inside a
parent span (as a receiver's span is):

- ``one span``: ``with tracer.start_as_current_span(name, attributes=...)`` with the
  name and attributes of a receiver's span: the SDK's own cost of one span;
- ``one span + one record``: the same plus one ``Histogram.record`` with a receiver's
  metric attributes.

Rows, for ``traces`` and for ``traces+metrics`` each (extra = instrumented -
uninstrumented, per send):

- ``hook, not instrumented``: uninstrumented / never imported; target <= 1.05 (one flag
  check);
- ``extra per receiver, its send's share included``: extra / N at N = 10, against its
  floor; target <= 1. This includes a tenth of the send's own span;
- ``extra per receiver (10 -> 100)``: the slope of extra between N = 10 and N = 100,
  what each further receiver adds; target <= 1;
- ``extra per send, beyond its receivers``: the intercept (extra at N = 10 minus 10
  slopes): the send's own span and the observed path's bookkeeping. Reported against one
  span, no target: it is paid once per send, not per receiver.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from pyperf import perf_counter

import asignal
from asignal.contrib import opentelemetry as asignal_otel

from ._harness import Check, Config, Row, Series, measure_async

#: Receivers per send: the extra per receiver includes the send's own span, spread over
#: its N receivers (a tenth of a span at 10, a hundredth at 100).
NS = (10, 100)
US = 1e6
SPAN_FLOOR = "with a receiver span's name and attributes, inside a parent span"
RECORD_FLOOR = "one span (as above) + one SDK Histogram.record"
SIGNAL = "bench-otel"
#: The name and attributes of a receiver's span (and of its metric points).
SPAN_NAME = "asignal.receiver benchmarks.bench_otel.receiver"
ATTRIBUTES = {"asignal.signal": SIGNAL, "asignal.receiver": "benchmarks.bench_otel.receiver"}

# The child: asignal only, one event loop, a sample per line of stdin.
CHILD = f"""
import asyncio, sys
from time import perf_counter
import asignal
sig = asignal.NamedSignal({SIGNAL!r})
receivers = []
for _ in range({NS[0]}):
    async def receiver(sender, **kwargs):
        return None
    receivers.append(receiver)
    sig.connect(receiver)
async def run(loops):
    t0 = perf_counter()
    for _ in range(loops):
        await sig.send_async(None)
    return perf_counter() - t0
assert not [m for m in sys.modules if m.startswith("opentelemetry")]
loop = asyncio.new_event_loop()
for line in sys.stdin:
    print(repr(loop.run_until_complete(run(int(line)))), flush=True)
"""

Timed = Callable[[int], Awaitable[float]]


def _signal(n: int) -> tuple[asignal.NamedSignal, list[Any]]:
    sig = asignal.NamedSignal(SIGNAL)
    receivers = []
    for _ in range(n):

        async def receiver(sender: Any, **kwargs: Any) -> None:
            return None

        receivers.append(receiver)
        sig.connect(receiver)
    return sig, receivers


async def _timed(sig: asignal.NamedSignal, loops: int) -> float:
    t0 = perf_counter()
    for _ in range(loops):
        await sig.send_async(None)
    return float(perf_counter() - t0)


def _sends(sig: asignal.NamedSignal, instrument: Callable[[], None] | None) -> Timed:
    async def run(loops: int) -> float:
        if instrument is None:
            return await _timed(sig, loops)
        instrument()
        try:
            return await _timed(sig, loops)
        finally:
            asignal_otel.uninstrument()

    return run


def _spans(tracer_provider: TracerProvider, meter_provider: MeterProvider | None) -> Timed:
    tracer = tracer_provider.get_tracer("bench")
    histogram = (meter_provider or NoOpMeterProvider()).get_meter("bench").create_histogram("h")

    async def run(loops: int) -> float:
        with tracer.start_as_current_span("parent"):
            t0 = perf_counter()
            if meter_provider is None:
                for _ in range(loops):
                    with tracer.start_as_current_span(SPAN_NAME, attributes=ATTRIBUTES):
                        pass
            else:
                for _ in range(loops):
                    with tracer.start_as_current_span(SPAN_NAME, attributes=ATTRIBUTES):
                        pass
                    histogram.record(0.001, ATTRIBUTES)
            return float(perf_counter() - t0)

    return run


class _Child:
    """The never-imported series: samples taken in a child process, one per request."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    async def run(self, loops: int) -> float:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"{loops}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the never-imported child exited ({self.proc.wait()})")
        return float(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


def run(cfg: Config) -> tuple[list[Row], list[Series]]:
    """The ``otel`` section of ``python -m benchmarks``."""
    tracer_provider = TracerProvider()
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    # Instrument once for real, then undo it: "uninstrumented" is the state after that.
    asignal_otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    asignal_otel.uninstrument()

    def traces() -> None:
        asignal_otel.instrument(tracer_provider=tracer_provider, meter_provider=NoOpMeterProvider())

    def traces_and_metrics() -> None:
        asignal_otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    series: dict[str, Series] = {}
    for n in NS:
        sig, receivers = _signal(n)
        name = f"asyncio/otel/{n}"
        series[f"uninstrumented {n}"] = Series(
            f"{name}/uninstrumented", _sends(sig, None), keep=receivers
        )
        series[f"traces {n}"] = Series(f"{name}/traces", _sends(sig, traces), keep=receivers)
        series[f"traces+metrics {n}"] = Series(
            f"{name}/traces+metrics", _sends(sig, traces_and_metrics), keep=receivers
        )
    series["one span"] = Series("asyncio/otel/one-span", _spans(tracer_provider, None))
    series["one span + one record"] = Series(
        "asyncio/otel/one-span+record", _spans(tracer_provider, meter_provider)
    )
    child = _Child()
    series["never imported"] = Series(f"asyncio/otel/{NS[0]}/never-imported", child.run)
    # Differences of differences amplify noise: three times the suite's rounds.
    rounds = cfg.rounds if cfg.smoke else 3 * cfg.rounds
    try:
        asyncio.run(measure_async([list(series.values())], replace(cfg, rounds=rounds)))
    finally:
        child.close()
        meter_provider.shutdown()
    m = {key: s.median() * US for key, s in series.items()}
    none = {"blinker": "no tracing to compare", "django": "no tracing to compare"}

    def row(title: str, n: int, unit: str, value: float, floor: float, floor_is: str) -> Row:
        cells = {"asignal": value, "blinker": None, "django": None, "floor": floor}
        return Row("otel", title, "asyncio", str(n), unit, cells, dict(none), floor_is=floor_is)

    rows = [
        row(
            "hook, not instrumented: send_async",
            NS[0],
            "us/send",
            m[f"uninstrumented {NS[0]}"],
            m["never imported"],
            "the same send in a process that never imported opentelemetry",
        )
    ]
    rows[0].checks.append(Check("<= 1.05 x never imported", rows[0].ratio("floor"), 1.05))
    small, large = NS
    floors = {
        "traces": ("one span", "<= 1 span", "one SDK start_as_current_span " + SPAN_FLOOR),
        "traces+metrics": ("one span + one record", "<= 1 span + 1 record", RECORD_FLOOR),
    }
    for kind, (floor, label, floor_is) in floors.items():
        # Extra time per send at each N; a line through the two splits it into a cost
        # per receiver (the slope) and a cost per send (the intercept).
        extra = {n: m[f"{kind} {n}"] - m[f"uninstrumented {n}"] for n in NS}
        slope = (extra[large] - extra[small]) / (large - small)
        all_in = row(
            f"{kind}: extra per receiver, its send's share included",
            small,
            "us/receiver",
            extra[small] / small,
            m[floor],
            floor_is,
        )
        marginal = row(
            f"{kind}: extra per receiver ({small} -> {large})",
            large,
            "us/receiver",
            slope,
            m[floor],
            floor_is,
        )
        per_send = row(
            f"{kind}: extra per send, beyond its receivers",
            small,
            "us/send",
            extra[small] - slope * small,
            m[floor],
            floor_is,
        )
        all_in.checks.append(Check(label, all_in.ratio("floor"), 1.0))
        marginal.checks.append(Check(label, marginal.ratio("floor"), 1.0))
        rows += [all_in, marginal, per_send]
    return rows, list(series.values())


if __name__ == "__main__":
    from ._harness import FULL, format_table

    rows, _ = run(FULL)
    print(format_table(rows, {}))
