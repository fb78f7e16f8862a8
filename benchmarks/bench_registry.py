"""Cases 6 and 7: the receiver registry.

- 6: memory per connected weak receiver (tracemalloc, after connecting many distinct ones);
- 7: connect then disconnect many receivers, at two sizes 10x apart.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from pyperf import perf_counter

from . import _libs
from ._harness import LIBS, Check, Config, Row, Series, measure

MS = 1e3
DICT_FLOOR = "a dict {id(receiver): weakref.ref(receiver)}"
#: django.dispatch's connect scans its whole receiver list, so N connects cost O(N^2).
QUADRATIC = "connect scans the whole receiver list (O(N²)): 10 000 connects take seconds"


def _connect_all(lib: str, receivers: Sequence[_libs.Receiver]) -> Any:
    if lib == "floor":
        table = {}
        ref = weakref.ref
        for r in receivers:
            table[id(r)] = ref(r)
        return table
    sig = _libs.new_signal(lib)
    connect = sig.connect
    for r in receivers:
        connect(r)
    return sig


def bytes_per_receiver(lib: str, receivers: Sequence[_libs.Receiver]) -> float:
    """Bytes tracemalloc sees allocated by connecting ``receivers`` to a fresh signal."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        registry = _connect_all(lib, receivers)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del registry
    return (after - before) / len(receivers)


def _churn(lib: str, receivers: Sequence[_libs.Receiver]) -> Callable[[int], float]:
    def run(loops: int) -> float:
        total = 0.0
        for _ in range(loops):
            if lib == "floor":
                table: dict[int, Any] = {}
                ref = weakref.ref
                t0 = perf_counter()
                for r in receivers:
                    table[id(r)] = ref(r)
                for r in receivers:
                    del table[id(r)]
                total += perf_counter() - t0
                continue
            sig = _libs.new_signal(lib)
            connect, disconnect = sig.connect, sig.disconnect
            t0 = perf_counter()
            for r in receivers:
                connect(r)
            for r in receivers:
                disconnect(r)
            total += perf_counter() - t0
        return total

    return run


def run(cfg: Config) -> tuple[list[Row], list[Series]]:
    rows: list[Row] = []
    all_series: list[Series] = []

    # Case 6.
    receivers = _libs.sync_receivers(cfg.memory_n)
    cells: dict[str, float | None] = {}
    for lib in LIBS:
        some = receivers[: cfg.memory_n_django] if lib == "django" else receivers
        t0 = perf_counter()
        cells[lib] = bytes_per_receiver(lib, some)
        duration = perf_counter() - t0
        all_series.append(
            Series(
                f"memory/{len(some)} weak receivers/{lib}",
                lambda loops: 0.0,
                loops=1,
                unit="byte",
                values=[cells[lib] or 0.0],
                duration=duration,
            )
        )
    row = Row(
        "6",
        "memory per weak receiver",
        "-",
        f"{cfg.memory_n:,}".replace(",", " "),
        "B/recv",
        cells,
        floor_is=DICT_FLOOR,
    )
    n_django = f"{cfg.memory_n_django:,}".replace(",", " ")
    row.notes["django"] = f"measured over {n_django} receivers: {QUADRATIC}"
    row.checks.append(Check("a≤400 B", cells["asignal"], 400))
    rows.append(row)
    del receivers

    # Case 7.
    small, large = cfg.churn_sizes
    pool = _libs.sync_receivers(large)
    groups: dict[int, dict[str, Series]] = {}
    for size in (small, large):
        groups[size] = {
            lib: Series(
                f"connect+disconnect/{size}/{lib}",
                _churn(lib, pool[:size]),
                loops=1,
                rounds=cfg.churn_rounds,
                # A warm-up of the large size would cost as much as a round.
                warmup=size == small,
                keep=pool,
            )
            for lib in LIBS
            if lib != "django"
        }
    measure([list(g.values()) for g in groups.values()], cfg)
    medians = {size: {lib: s.median() for lib, s in g.items()} for size, g in groups.items()}
    for size in (small, large):
        cells = {lib: medians[size].get(lib) for lib in LIBS}
        cells = {lib: (None if v is None else v * MS) for lib, v in cells.items()}
        row = Row(
            "7",
            "connect+disconnect",
            "-",
            f"{size:,}".replace(",", " "),
            "ms",
            cells,
            floor_is=DICT_FLOOR + ", insert then delete",
        )
        row.notes["django"] = QUADRATIC
        if size == large:
            row.checks.append(Check("a≤1000 ms", cells["asignal"], 1000.0))
        rows.append(row)
    growth: dict[str, float | None] = {
        lib: (medians[large][lib] / medians[small][lib] if lib in medians[large] else None)
        for lib in LIBS
    }
    row = Row(
        "7",
        "connect+disconnect: growth",
        "-",
        f"{small:,}→{large:,}".replace(",", " "),
        "x",
        growth,
    )
    row.notes["django"] = QUADRATIC
    row.checks.append(Check(f"a≤{1.2 * large / small:g}x", growth["asignal"], 1.2 * large / small))
    rows.append(row)
    for g in groups.values():
        all_series.extend(g.values())
    return rows, all_series
