"""Measuring machinery shared by every case: interleaved rounds, medians, rows and output.

pyperf's ``Runner`` measures one benchmark at a time, each in its own worker processes, so
it cannot alternate libraries within a round. The suite therefore drives the rounds itself
with pyperf's clock (``pyperf.perf_counter``), takes ``statistics.median`` over rounds, and
hands every measured series to pyperf as a ``Benchmark`` so the raw values can be inspected
with ``python -m pyperf stats|hist|compare_to`` (see ``docs/performance.md``).
"""

from __future__ import annotations

import gc
import io
import json
import math
import statistics
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyperf

#: Library columns of the table, in order. "floor" is the raw-Python lower bound of a case.
LIBS = ("asignal", "blinker", "django", "floor")


@dataclass(frozen=True)
class Config:
    """Sizes and iteration counts for one run of the suite."""

    smoke: bool
    #: Interleaved rounds for the cheap cases (median over these).
    rounds: int
    #: Seconds one sample should last; loops per sample are calibrated to it (0 = 1 loop).
    sample_time: float
    #: Rounds for the case whose receivers sleep (each blinker sample takes N x sleep).
    sleep_rounds: int
    #: Seconds each receiver of the sleeping case sleeps.
    sleep: float
    #: Receivers in the sleeping case.
    sleep_n: int
    #: Sends per sample in the sleeping case (blinker always does one).
    sleep_loops: int
    #: Receivers connected for the memory case.
    memory_n: int
    #: django's ``connect`` scans its whole list (quadratic), so it gets fewer receivers.
    memory_n_django: int
    #: Receiver counts for the connect/disconnect case (the second is 10x the first).
    churn_sizes: tuple[int, int]
    #: Interleaved rounds for the connect/disconnect case.
    churn_rounds: int


FULL = Config(
    smoke=False,
    rounds=15,
    sample_time=0.025,
    sleep_rounds=7,
    sleep=0.01,
    sleep_n=100,
    sleep_loops=5,
    memory_n=100_000,
    memory_n_django=2_000,
    churn_sizes=(10_000, 100_000),
    churn_rounds=3,
)

SMOKE = Config(
    smoke=True,
    rounds=2,
    sample_time=0.0,
    sleep_rounds=1,
    sleep=0.001,
    sleep_n=5,
    sleep_loops=1,
    memory_n=300,
    memory_n_django=50,
    churn_sizes=(50, 500),
    churn_rounds=1,
)


@dataclass
class Series:
    """One library at one measurement point.

    ``run(loops)`` performs the operation ``loops`` times and returns the elapsed seconds
    (for async series it returns an awaitable of them). ``values`` holds one figure per
    round: seconds per operation.
    """

    name: str
    run: Callable[[int], Any]
    #: Operations per sample; 0 means calibrate to ``Config.sample_time``.
    loops: int = 0
    #: Take part in at most this many rounds (None: all).
    rounds: int | None = None
    #: Run one untimed sample before the rounds (skipped for very slow series).
    warmup: bool = True
    unit: str = "second"
    values: list[float] = field(default_factory=list)
    #: Objects to keep alive while measuring (the libraries hold receivers weakly).
    keep: object = None
    #: Seconds spent measuring, for series whose values are not times (pyperf's duration).
    duration: float | None = None

    def median(self) -> float:
        return statistics.median(self.values)


def _next_loops(loops: int, elapsed: float, cfg: Config) -> int | None:
    """Calibration step: None when ``loops`` is enough, else the next count to try."""
    if elapsed >= cfg.sample_time / 4 or loops >= 1 << 22:
        return None
    return loops * 2


def _final_loops(loops: int, elapsed: float, cfg: Config) -> int:
    return max(1, math.ceil(loops * cfg.sample_time / max(elapsed, 1e-9)))


def _rotated(group: Sequence[Series], round_no: int) -> list[Series]:
    # Each library goes first equally often, so start-of-group effects hit all alike.
    k = round_no % len(group)
    order = [*group[k:], *group[:k]]
    return [s for s in order if s.rounds is None or round_no < s.rounds]


def _rounds_of(groups: Sequence[Sequence[Series]], cfg: Config) -> int:
    return max((cfg.rounds if s.rounds is None else s.rounds) for group in groups for s in group)


def measure(groups: Sequence[Sequence[Series]], cfg: Config) -> None:
    """Calibrate, then run interleaved rounds of synchronous series."""
    for group in groups:
        for s in group:
            if s.loops == 0:
                if cfg.smoke:
                    s.loops = 2
                else:
                    loops = 1
                    while True:
                        elapsed = s.run(loops)
                        nxt = _next_loops(loops, elapsed, cfg)
                        if nxt is None:
                            break
                        loops = nxt
                    s.loops = _final_loops(loops, elapsed, cfg)
            if s.warmup:
                s.run(s.loops)
    for round_no in range(_rounds_of(groups, cfg)):
        gc.collect()
        for group in groups:
            for s in _rotated(group, round_no):
                s.values.append(s.run(s.loops) / s.loops)


async def measure_async(groups: Sequence[Sequence[Series]], cfg: Config) -> None:
    """Same as :func:`measure` for series whose ``run`` returns an awaitable."""
    for group in groups:
        for s in group:
            run: Callable[[int], Awaitable[float]] = s.run
            if s.loops == 0:
                if cfg.smoke:
                    s.loops = 2
                else:
                    loops = 1
                    while True:
                        elapsed = await run(loops)
                        nxt = _next_loops(loops, elapsed, cfg)
                        if nxt is None:
                            break
                        loops = nxt
                    s.loops = _final_loops(loops, elapsed, cfg)
            if s.warmup:
                await run(s.loops)
    for round_no in range(_rounds_of(groups, cfg)):
        gc.collect()
        for group in groups:
            for s in _rotated(group, round_no):
                s.values.append(await s.run(s.loops) / s.loops)


@dataclass
class Check:
    """One target: ``value <= limit`` (``value`` None when it could not be computed)."""

    label: str
    value: float | None
    limit: float

    @property
    def ok(self) -> bool:
        return self.value is not None and math.isfinite(self.value) and self.value <= self.limit


@dataclass
class Row:
    """One line of the result table; ``cells`` are in ``unit``, keyed by :data:`LIBS`."""

    case: str
    title: str
    backend: str
    n: str
    unit: str
    cells: dict[str, float | None]
    #: Why a cell is empty, or how it was measured differently, keyed by library.
    notes: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    #: What the "floor" column holds for this row.
    floor_is: str = ""

    def ratio(self, other: str) -> float | None:
        a, b = self.cells.get("asignal"), self.cells.get(other)
        if a is None or b is None or b <= 0:
            return None
        return a / b

    @property
    def verdict(self) -> str:
        if not self.checks:
            return ""
        return "PASS" if all(c.ok for c in self.checks) else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "title": self.title,
            "backend": self.backend,
            "n": self.n,
            "unit": self.unit,
            "floor_is": self.floor_is,
            "cells": self.cells,
            "ratios": {
                "asignal/blinker": self.ratio("blinker"),
                "asignal/django": self.ratio("django"),
                "asignal/floor": self.ratio("floor"),
            },
            "notes": self.notes,
            "checks": [
                {"label": c.label, "value": c.value, "limit": c.limit, "ok": c.ok}
                for c in self.checks
            ],
            "verdict": self.verdict,
        }


def scaled(seconds: float | None, factor: float) -> float | None:
    return None if seconds is None else seconds * factor


def ratio_check(label: str, row: Row, other: str, limit: float) -> Check:
    return Check(label, row.ratio(other), limit)


def fmt_num(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    mag = abs(value)
    if mag >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    if mag >= 100:
        return f"{value:.0f}"
    if mag >= 10:
        return f"{value:.1f}"
    if mag >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _header(versions: dict[str, str]) -> list[str]:
    return [
        "case",
        "backend",
        "N",
        "unit",
        "asignal",
        f"blinker {versions.get('blinker', '?')}",
        f"django {versions.get('django', '?')}",
        "floor",
        "a/blinker",
        "a/django",
        "a/floor",
        "target",
        "ok",
    ]


def table_lines(rows: Iterable[Row], versions: dict[str, str]) -> list[list[str]]:
    lines = []
    for r in rows:
        lines.append(
            [
                f"{r.case} {r.title}",
                r.backend,
                r.n,
                r.unit,
                *(fmt_num(r.cells.get(lib)) for lib in LIBS),
                *(fmt_num(r.ratio(lib)) for lib in ("blinker", "django", "floor")),
                ", ".join(c.label for c in r.checks),
                r.verdict,
            ]
        )
    return lines


def format_table(rows: Sequence[Row], versions: dict[str, str]) -> str:
    """Plain-text table, one line per row, then the notes that explain odd cells."""
    header = _header(versions)
    body = table_lines(rows, versions)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    numeric = set(range(4, 11))

    def fmt(line: list[str]) -> str:
        cells = [
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    out = [fmt(header), "  ".join("-" * w for w in widths)]
    out += [fmt(line) for line in body]
    notes = _notes(rows)
    if notes:
        out.append("")
        out += notes
    return "\n".join(out)


def format_markdown(rows: Sequence[Row], versions: dict[str, str]) -> str:
    """The same table as GitHub markdown (for docs/performance.md)."""
    header = _header(versions)
    body = table_lines(rows, versions)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in body]
    notes = _notes(rows)
    if notes:
        out.append("")
        out += [f"- {n}" for n in notes]
    return "\n".join(out)


def _notes(rows: Iterable[Row]) -> list[str]:
    """Footnotes, each once, tagged with the cases (and backends) it applies to."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        tag = r.case if r.backend == "-" else f"{r.case}/{r.backend}"
        items = [("floor", r.floor_is)] if r.floor_is else []
        for key, text in [*items, *r.notes.items()]:
            tags = grouped.setdefault((key, text), [])
            if tag not in tags:
                tags.append(tag)
    return [f"{key} [{', '.join(tags)}]: {text}" for (key, text), tags in grouped.items()]


def pyperf_suite(series: Iterable[Series]) -> pyperf.BenchmarkSuite | None:
    """Every measured series as a pyperf ``Benchmark`` (values per operation)."""
    benchmarks = []
    for s in series:
        if not s.values or any(v <= 0 for v in s.values):
            continue
        metadata: dict[str, Any] = {"name": s.name, "unit": s.unit}
        if s.unit == "second":
            metadata["loops"] = max(1, s.loops)
        if s.duration:
            metadata["duration"] = s.duration
        run = pyperf.Run(s.values, metadata=metadata, collect_metadata=False)
        benchmarks.append(pyperf.Benchmark([run]))
    if not benchmarks:
        return None
    return pyperf.BenchmarkSuite(benchmarks)


def suite_json(suite: pyperf.BenchmarkSuite) -> dict[str, Any]:
    buf = io.StringIO()
    suite.dump(buf)
    data: dict[str, Any] = json.loads(buf.getvalue())
    return data
