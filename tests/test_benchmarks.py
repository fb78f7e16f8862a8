"""Smoke run of the benchmark suite (``python -m benchmarks --smoke``), so no case can rot.

It asserts shape only: every case runs and yields its rows with a number in every column
that applies. It never asserts a timing; the figures of a smoke run mean nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
from pathlib import Path
from typing import Any

import pyperf
import pytest

from benchmarks.__main__ import main

LIBS = ("asignal", "blinker", "django", "floor")
NS = {"0", "1", "10", "100"}
#: benchmarks/bench_asgi.py (case 8, the ASGI adapter's cost) joins the suite when present.
HAS_ASGI = importlib.util.find_spec("benchmarks.bench_asgi") is not None


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict[str, Any]]:
    out_dir = tmp_path_factory.mktemp("bench-results")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["--smoke", "--output-dir", str(out_dir)]) == 0
    report = json.loads((out_dir / "latest.json").read_text(encoding="utf-8"))
    return stdout.getvalue(), out_dir, report


def _rows(report: dict[str, Any], case: str, backend: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in report["rows"]
        if r["case"] == case and (backend is None or r["backend"] == backend)
    ]


def test_every_case_yields_its_rows(smoke: tuple[str, Path, dict[str, Any]]) -> None:
    _, _, report = smoke
    assert {r["n"] for r in _rows(report, "1", "-")} == NS
    for backend in ("-", "asyncio", "trio"):
        assert len(_rows(report, "2", backend)) == 2, backend
    for backend in ("asyncio", "trio"):
        assert {r["n"] for r in _rows(report, "3", backend)} == NS, backend
        assert [r["title"].rsplit(": ", 1)[1] for r in _rows(report, "4", backend)] == [
            "wall",
            "extra/recv",
        ]
        # Case 3 at every N plus case 4, once with _timeout and once with _errors="collect".
        assert len(_rows(report, "5", backend)) == 2 * (len(NS) + 1), backend
    assert len(_rows(report, "6")) == 1
    assert len(_rows(report, "7")) == 3
    if HAS_ASGI:
        for backend in ("asyncio", "trio"):
            assert _rows(report, "8", backend), backend


def test_every_applicable_cell_is_a_number(smoke: tuple[str, Path, dict[str, Any]]) -> None:
    _, _, report = smoke
    missing = set()
    for row in report["rows"]:
        where = (row["case"], row["title"], row["backend"], row["n"])
        for lib in LIBS:
            value = row["cells"][lib]
            if value is None:
                missing.add((row["case"], row["backend"], lib))
                assert row["notes"].get(lib), f"{where}: {lib} is empty without a note"
            else:
                assert isinstance(value, int | float), where
                assert math.isfinite(value), where
        for other in ("blinker", "django", "floor"):
            ratio = row["ratios"][f"asignal/{other}"]
            denominator = row["cells"][other]
            if denominator is not None and denominator > 0:
                assert isinstance(ratio, float), (where, other)
                assert math.isfinite(ratio), (where, other)
        for check in row["checks"]:
            assert check["limit"] > 0, where
        assert row["verdict"] in {"PASS", "FAIL", ""}, where
    # The only gaps: django.dispatch cannot run on trio (asend is asyncio.gather) and its
    # quadratic connect rules out the connect/disconnect case; the ASGI case has no
    # blinker or django integration to compare with.
    expected_missing = {
        (r["case"], r["backend"], "django")
        for r in report["rows"]
        if r["backend"] == "trio" or r["case"] in {"7", "8"}
    } | {(r["case"], r["backend"], "blinker") for r in report["rows"] if r["case"] == "8"}
    expected_missing |= {
        (r["case"], r["backend"], x) for r in _rows(report, "bg") for x in LIBS[1:3]
    }
    expected_missing |= {
        (r["case"], r["backend"], x) for r in _rows(report, "bgr") for x in LIBS[1:3]
    }
    expected_missing |= {
        (r["case"], r["backend"], x) for r in _rows(report, "nats") for x in LIBS[1:3]
    }
    expected_missing |= {
        (r["case"], r["backend"], x) for r in _rows(report, "otel") for x in LIBS[1:3]
    }
    assert missing == expected_missing


def test_each_target_of_the_issue_is_checked(smoke: tuple[str, Path, dict[str, Any]]) -> None:
    _, _, report = smoke
    for row in report["rows"]:
        if row["case"] in {"1", "2", "3", "5", "6"} or row["title"].endswith("extra/recv"):
            assert row["checks"], (row["case"], row["title"], row["n"])
    case7 = _rows(report, "7")
    assert [bool(r["checks"]) for r in case7] == [False, True, True]


def test_table_and_files(smoke: tuple[str, Path, dict[str, Any]]) -> None:
    stdout, out_dir, report = smoke
    header = stdout.splitlines()[1]
    for column in ("case", "asignal", "blinker", "django", "floor", "a/blinker", "a/floor"):
        assert column in header
    stamped = [p for p in out_dir.glob("*.json") if p.name[0].isdigit() and ".pyperf" not in p.name]
    assert len(stamped) == 1
    assert json.loads(stamped[0].read_text(encoding="utf-8")) == report
    suite = pyperf.BenchmarkSuite.load(str(out_dir / "latest.pyperf.json"))
    names = suite.get_benchmark_names()
    assert any(name.endswith("/asignal") for name in names)
    assert any(name.startswith("trio/") for name in names)
    assert report["passed"] + report["failed"] == sum(bool(r["checks"]) for r in report["rows"])


def test_background_case_compares_each_path_with_start_soon(
    smoke: tuple[str, Path, dict[str, Any]],
) -> None:
    _, _, report = smoke
    for backend in ("asyncio", "trio"):
        rows = _rows(report, "bg", backend)
        assert [r["title"].rsplit(": ", 1)[1] for r in rows] == [
            "schedule_nowait",
            "await schedule",
            "schedule_nowait, timeout=5",
        ], backend
        for row in rows:
            assert row["cells"]["asignal"] > 0
            assert row["cells"]["floor"] > 0
            assert [c["label"] for c in row["checks"]] == ["a/f≤1.5"]


def test_background_request_case_compares_with_the_bare_app(
    smoke: tuple[str, Path, dict[str, Any]],
) -> None:
    _, _, report = smoke
    for backend in ("asyncio", "trio"):
        rows = _rows(report, "bgr", backend)
        assert [r["title"].split(", 3 x")[0] for r in rows] == ["request in-process"] * 3 + [
            f"request over HTTP ({'uvicorn' if backend == 'asyncio' else 'hypercorn'})"
        ] * 4
        assert [r["title"].rsplit(" receivers ", 1)[1] for r in rows] == [
            "background, vs bare",
            "background, vs handwritten",
            "awaited, vs bare",
            "background, vs bare",
            "background, vs handwritten",
            "background, vs adapter",
            "awaited, vs bare",
        ]
        for row in rows:
            assert row["cells"]["asignal"] > 0
            assert row["cells"]["floor"] > 0
        assert [[c["label"] for c in r["checks"]] for r in rows] == [
            [],
            ["a/f≤1.1"],
            [],
            ["a/f≤1.1"],
            [],
            [],
            [],
        ]


def test_the_import_case_compares_fresh_interpreters(
    smoke: tuple[str, Path, dict[str, Any]],
) -> None:
    (row,) = _rows(smoke[2], "9", "-")
    assert [c["label"] for c in row["checks"]] == ["a/b≤1.5"]
    assert all(row["cells"][lib] > 0 for lib in LIBS)


def test_nats_bridge_rows(smoke: tuple[str, Path, dict[str, Any]]) -> None:
    # benchmarks/bench_nats.py: throughput, p50 latency and send cost vs raw nats-py.
    rows = _rows(report=smoke[2], case="nats")
    assert [r["title"].split(": ")[1].split(" ")[0] for r in rows] == ["200", "end-to-end", "time"]
    for row in rows:
        assert row["cells"]["asignal"] > 0
        assert row["cells"]["floor"] > 0
        assert len(row["checks"]) == 1


def test_soak_counts_each_app_and_receiver_kind(tmp_path: Path) -> None:
    # benchmarks/soak.py (make soak) at a tiny size: one app, one kind, a row each.
    from benchmarks import soak

    out = tmp_path / "soak.json"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        argv = ["--requests", "12", "--concurrency", "3", "--apps", "starlette-uvicorn"]
        assert soak.main([*argv, "--kinds", "sync-raise", "--json", str(out)]) == 0
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert [(r["app"], r["receivers"]) for r in rows] == [
        ("starlette-uvicorn", "none"),
        ("starlette-uvicorn", "sync-raise"),
    ]
    assert all(r["requests"] == 12 and r["tasks left"] == 0 for r in rows)
    assert "dead calls" in stdout.getvalue()


def test_otel_case_compares_hook_traces_and_metrics(
    smoke: tuple[str, Path, dict[str, Any]],
) -> None:
    _, _, report = smoke
    rows = _rows(report, "otel", "asyncio")
    assert [(r["title"], r["n"]) for r in rows] == [
        ("hook, not instrumented: send_async", "10"),
        ("traces: extra per receiver, its send's share included", "10"),
        ("traces: extra per receiver (10 -> 100)", "100"),
        ("traces: extra per send, beyond its receivers", "10"),
        ("traces+metrics: extra per receiver, its send's share included", "10"),
        ("traces+metrics: extra per receiver (10 -> 100)", "100"),
        ("traces+metrics: extra per send, beyond its receivers", "10"),
    ]
    limits = [[1.05], [1.0], [1.0], [], [1.0], [1.0], []]
    assert [[c["limit"] for c in r["checks"]] for r in rows] == limits
    for row in rows:
        assert row["cells"]["floor"] > 0, row["title"]
