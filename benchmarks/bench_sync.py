"""Cases 1 and 2 (``send``): N sync receivers, and nobody listening."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyperf import perf_counter

from . import _libs
from ._harness import LIBS, Config, Row, Series, measure, ratio_check

NS = (0, 1, 10, 100)
#: Receivers connected for *another* sender in the "nobody listening for this sender" row.
OTHERS = 100
US = 1e6


def _timed(send: Callable[[Any], Any], sender: Any) -> Callable[[int], float]:
    def run(loops: int) -> float:
        t0 = perf_counter()
        for _ in range(loops):
            send(sender)
        return float(perf_counter() - t0)

    return run


def _group(tag: str, n: int, listen_to: object | None, sender: Any) -> list[Series]:
    receivers = _libs.sync_receivers(n)
    group = []
    for lib in LIBS:
        if lib == "floor":
            gets = receivers if listen_to is None or listen_to is sender else []
            send = _libs.sync_floor(gets)
        else:
            send = _libs.build(lib, receivers, listen_to).send
        group.append(Series(f"sync/send/{tag}/{lib}", _timed(send, sender), keep=receivers))
    return group


def _cells(group: list[Series]) -> dict[str, float | None]:
    return {lib: s.median() * US for lib, s in zip(LIBS, group, strict=True)}


def run(cfg: Config) -> tuple[list[Row], list[Series]]:
    sender = _libs.App()
    other = _libs.App()
    groups: dict[int | str, list[Series]] = {n: _group(f"N={n}", n, None, sender) for n in NS}
    groups["other"] = _group(f"N=0 ({OTHERS} other)", OTHERS, other, sender)
    measure(list(groups.values()), cfg)

    rows = []
    for n in NS:
        row = Row("1", "send, sync receivers", "-", str(n), "µs/send", _cells(groups[n]))
        if n >= 10:
            row.checks.append(ratio_check("a/b≤0.5", row, "blinker", 0.5))
        row.checks.append(ratio_check("a/f≤3", row, "floor", 3.0))
        row.floor_is = "`for r in receivers: results.append((r, r(sender)))`"
        rows.append(row)
    for key, n_label in ((0, "0"), ("other", f"0 ({OTHERS} other)")):
        row = Row("2", "send, nobody listening", "-", n_label, "µs/send", _cells(groups[key]))
        row.checks.append(ratio_check("a/b≤1", row, "blinker", 1.0))
        row.floor_is = "the same loop over the receivers this sender gets (none)"
        if key == "other":
            row.notes["N"] = f"{OTHERS} receivers are connected to another sender, none to this one"
        rows.append(row)
    series = [s for g in groups.values() for s in g]
    return rows, series
