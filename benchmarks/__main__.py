"""``python -m benchmarks``: run the suite, print the table, write it as JSON.

Options: ``--smoke`` (every case once, tiny counts, no JSON unless ``--output-dir`` is
given), ``--only SECTION`` (repeatable), ``--markdown`` (print the table as markdown too),
``--output-dir DIR`` (default ``benchmarks/results``), ``--no-json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import json
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pyperf import perf_counter

from . import _libs, bench_async, bench_import, bench_registry, bench_sync
from ._harness import (
    FULL,
    SMOKE,
    Config,
    Row,
    Series,
    format_markdown,
    format_table,
    pyperf_suite,
    suite_json,
)

RESULTS = Path(__file__).resolve().parent / "results"

Section = Callable[[Config], tuple[list[Row], list[Series]]]


def _asgi_section() -> Section | None:
    """benchmarks/bench_asgi.py (written separately) joins the table when it is present."""
    if importlib.util.find_spec(f"{__package__}.bench_asgi") is None:
        return None
    module = importlib.import_module(f"{__package__}.bench_asgi")
    run = getattr(module, "run", None)
    return run if callable(run) else None


def sections() -> dict[str, Section]:
    out: dict[str, Section] = {
        "sync": bench_sync.run,
        "asyncio": lambda cfg: bench_async.run(cfg, "asyncio"),
        "trio": lambda cfg: bench_async.run(cfg, "trio"),
    }
    asgi = _asgi_section()
    if asgi is not None:
        out["asgi"] = asgi
    out["background"] = importlib.import_module(f"{__package__}.bench_background").run
    out["nats"] = importlib.import_module(f"{__package__}.bench_nats").run
    out["otel"] = importlib.import_module(f"{__package__}.bench_otel").run
    # Last: its 100 000 receivers leave a large heap behind, which made the garbage
    # collector's passes, and so the ASGI figures, noisier when it ran before them.
    out["import"] = bench_import.run
    out["registry"] = bench_registry.run
    return out


def collect(cfg: Config, only: Sequence[str] = ()) -> tuple[list[Row], list[Series]]:
    """Run the chosen sections (all by default); rows come back in case order."""
    rows: list[Row] = []
    series: list[Series] = []
    for name, section in sections().items():
        if only and name not in only:
            continue
        r, s = section(cfg)
        rows += r
        series += s
    rows.sort(key=lambda row: row.case)  # stable: keeps each section's own order
    return rows, series


def report(
    rows: Sequence[Row], cfg: Config, seconds: float, versions: dict[str, str]
) -> dict[str, Any]:
    return {
        "schema": 1,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": sys.version,
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": versions,
        "config": cfg.__dict__,
        "seconds": round(seconds, 1),
        "passed": sum(r.verdict == "PASS" for r in rows),
        "failed": sum(r.verdict == "FAIL" for r in rows),
        "rows": [r.as_dict() for r in rows],
    }


def write(out_dir: Path, data: dict[str, Any], series: Sequence[Series]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"{stamp}.json"
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    (out_dir / "latest.json").write_text(text, encoding="utf-8")
    suite = pyperf_suite(series)
    if suite is not None:
        # The raw per-round values, readable by `python -m pyperf stats|hist|compare_to`.
        raw = json.dumps(suite_json(suite)) + "\n"
        (out_dir / f"{stamp}.pyperf.json").write_text(raw, encoding="utf-8")
        (out_dir / "latest.pyperf.json").write_text(raw, encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts; no JSON by default")
    parser.add_argument("--only", action="append", default=[], choices=sorted(sections()))
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)

    cfg = SMOKE if args.smoke else FULL
    versions = _libs.versions()
    t0 = perf_counter()
    rows, series = collect(cfg, args.only)
    seconds = perf_counter() - t0

    print(
        f"asignal benchmarks{' (smoke: numbers meaningless)' if cfg.smoke else ''}: "
        f"Python {platform.python_version()}, {platform.platform()}, "
        f"medians of {cfg.rounds} interleaved rounds ({cfg.sleep_rounds} for the sleeping "
        f"case, {cfg.churn_rounds} for connect/disconnect); a/x = asignal / x"
    )
    print(format_table(rows, versions))
    if args.markdown:
        print()
        print(format_markdown(rows, versions))
    data = report(rows, cfg, seconds, versions)
    print(f"\n{data['passed']} rows pass, {data['failed']} fail; {seconds:.0f} s")

    out_dir = args.output_dir or (None if cfg.smoke else RESULTS)
    if out_dir is not None and not args.no_json:
        print(f"written: {write(out_dir, data, series)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
