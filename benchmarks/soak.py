"""``python -m benchmarks.soak`` (``make soak``): faults under load at full size (issue 10 §4).

The scenario of tests/test_faults.py, bigger and counted instead of asserted: each app
(FastAPI and Starlette on uvicorn, Quart on hypercorn, Starlette and Quart-Trio on
hypercorn's trio worker) is served by a process of its own, first with asignal installed and nobody
listening, then once per receiver kind (raising, sync-raising, hanging, slow,
self-cancelling, and all of them at once), with weak receivers churning beside them.
Every request is compared with the run without receivers. The client reuses keep-alive
connections everywhere, as real clients do (``--close-after-error`` asks for
``Connection: close`` after the routes that end in an exception, as the test does).

The ``control`` row has no receivers: a plain ASGI middleware in front of the app holds
each request for the budget (``--hold`` to change it), as a hanging receiver does, so the
requests arrive, wait and leave in the same waves. ``control-cpu`` then also burns
``--hold-cpu`` seconds of CPU per request in the server's loop (default 1.5 ms, about
what the receivers of the ``all`` row cost per request on a shared 2-core machine). What
they lose, the server loses under that load with asignal playing no part.

uvicorn closes a keep-alive connection when an exception leaves the ASGI call after a
complete response (the routes that raise, with or without receivers), and that response
does not say so; a client that reuses the connection before the close reaches it sends
its next request into the close ("Server disconnected", or a reset). How often that race
is lost depends on how soon the client reuses a connection, which held, bunched
requests and a busy server make sooner: the control rows lose responses too, and with
``--close-after-error`` (every such close announced) no row loses any.

Printed per app and receiver kind: requests, lost / altered / other errors against the
run without receivers, client latency (median, max), timeout records logged by asignal
(one per send that cut receivers off), the server's cyclic GC (runs, seconds, longest
pause), growth after the warm-up batch (GC tracked objects, RSS), "dead calls": calls of
weak receivers by sends that began once their owner was gone (dropped, and every send
that held it over: something else kept it alive), and "held calls": calls by sends that
began after the drop while an earlier send still held the owner, as blinker's semantics
allow (tests/faults/server.py ``Churn``). ``--json FILE`` writes the same figures.
Figures from one run on a shared machine: compare rows of the same run, not runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx

from tests.faults.apps import APPS
from tests.faults.load import compare, plan, states
from tests.faults.receivers import KINDS
from tests.faults.scenario import Run, control, execute

#: Receiver kinds of the runs; "all" connects every kind at once; "control" none, with
#: each request held for the budget by a plain ASGI middleware; "control-cpu" the same,
#: burning CPU per request too.
CONTROLS = ("control", "control-cpu")
RUN_KINDS = ("none", *CONTROLS, *KINDS, "all")

#: Column name, width and number format of the table.
COLUMNS = (
    ("app", 24, ""),
    ("receivers", 11, ""),
    ("requests", 8, ""),
    ("lost", 5, ""),
    ("altered", 7, ""),
    ("errors", 6, ""),
    ("p50 ms", 7, ".1f"),
    ("max ms", 8, ".1f"),
    ("timeouts", 8, ""),
    ("gc runs", 7, ""),
    ("gc s", 6, ".2f"),
    ("gc max ms", 9, ".1f"),
    ("Δobjects", 8, ""),
    ("ΔRSS KiB", 8, ""),
    ("dead calls", 10, ""),
    ("held calls", 10, ""),
    ("tasks left", 10, ""),
)


def _line(values: Sequence[Any], *, header: bool = False) -> str:
    cells = []
    for (_, width, spec), value in zip(COLUMNS, values, strict=True):
        align = "<" if isinstance(value, str) and (not header or width > 12) else ">"
        cells.append(f"{value:{align}{width}{'' if header else spec}}")
    return "  ".join(cells)


async def _snapshot(client: httpx.AsyncClient, batch: int) -> None:
    await control(client, "collect")


def _soak(app: str, kind: str, args: argparse.Namespace, baseline: Run | None) -> Run:
    requests = plan(args.requests, close_after_error=args.close_after_error)
    kinds: tuple[str, ...] = (
        () if kind == "none" or kind in CONTROLS else KINDS if kind == "all" else (kind,)
    )
    return execute(
        app,
        kinds,
        requests,
        concurrency=args.concurrency,
        budget=args.budget,
        churn=baseline is not None,
        batches=2,  # a warm-up batch, then the rest: memory is compared across the rest
        between=_snapshot,
        hold=(args.budget if args.hold is None else args.hold) if kind in CONTROLS else 0.0,
        hold_cpu=args.hold_cpu if kind == "control-cpu" else 0.0,
    )


def _row(app: str, kind: str, run: Run, baseline: Run) -> dict[str, Any]:
    report = run.report
    comparison = compare(baseline.outcomes, run.outcomes, run.requests)
    latencies = [o.seconds * 1000 for o in run.outcomes.values()] or [0.0]
    snapshots = report.get("snapshots", [])
    warm, end = (snapshots[1], snapshots[-1]) if len(snapshots) >= 3 else ({}, {})
    timeouts = sum(row[-1] for row in report.get("tallied", []) if row[0] == "asignal" and row[2])
    timeouts += sum(1 for row in report.get("logged", []) if row[0] == "asignal" and row[4])
    churn = report.get("churn") or {}
    gc_figures = report.get("gc", {})
    return {
        "app": app,
        "receivers": kind,
        "requests": len(run.requests),
        "unknown": len(comparison.unknown) if run is not baseline else 0,
        "lost": len(comparison.lost) if run is not baseline else states(run.outcomes)["lost"],
        "altered": len(comparison.altered) if run is not baseline else 0,
        "errors": len(comparison.errors) if run is not baseline else states(run.outcomes)["error"],
        "p50 ms": statistics.median(latencies),
        "max ms": max(latencies),
        "timeouts": timeouts,
        "gc runs": gc_figures.get("runs", 0),
        "gc s": gc_figures.get("seconds", 0.0),
        "gc max ms": gc_figures.get("longest", 0.0) * 1000,
        "Δobjects": end.get("objects", 0) - warm.get("objects", 0),
        "ΔRSS KiB": end.get("rss_kib", 0) - warm.get("rss_kib", 0),
        "dead calls": churn.get("dead_calls", 0),
        "held calls": churn.get("held_calls", 0),
        "tasks left": len(report.get("leftover", [])),
        "failure": report.get("failure"),
        "examples": list(comparison.details.values())[:3] if run is not baseline else [],
    }


def _print_row(row: dict[str, Any]) -> None:
    print(_line([row[name] for name, _, _ in COLUMNS]), flush=True)
    if row["failure"]:
        print(f"    server: {row['failure']}")
    for example in row["examples"]:
        print(f"    e.g. {example}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--requests", type=int, default=1000, help="per run (default 1000)")
    parser.add_argument("--concurrency", type=int, default=100, help="client workers (100)")
    parser.add_argument("--budget", type=float, default=0.25, help="install timeout, s")
    parser.add_argument("--apps", default=",".join(APPS), help="comma-separated")
    parser.add_argument("--kinds", default=",".join(RUN_KINDS), help="comma-separated")
    parser.add_argument("--close-after-error", action="store_true")
    parser.add_argument(
        "--hold", type=float, help="how long the control runs hold each request, s (budget)"
    )
    parser.add_argument(
        "--hold-cpu", type=float, default=0.0015, help="CPU burnt per request by control-cpu, s"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    apps = [name for name in args.apps.split(",") if name]
    kinds = [kind for kind in args.kinds.split(",") if kind and kind != "none"]
    unknown = [a for a in apps if a not in APPS] + [k for k in kinds if k not in RUN_KINDS]
    if unknown:
        parser.error(f"unknown apps or kinds: {unknown}")

    print(
        f"soak: {args.requests} requests per run, {args.concurrency} concurrent, "
        f"budget {args.budget} s, keep-alive"
        + (" (Connection: close after errors)" if args.close_after_error else ""),
        flush=True,
    )
    print(_line([name for name, _, _ in COLUMNS], header=True))
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for app in apps:
        baseline = _soak(app, "none", args, None)
        rows.append(_row(app, "none", baseline, baseline))
        _print_row(rows[-1])
        for kind in kinds:
            rows.append(_row(app, kind, _soak(app, kind, args, baseline), baseline))
            _print_row(rows[-1])
    print(f"soak: {time.perf_counter() - started:.0f} s in all")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
