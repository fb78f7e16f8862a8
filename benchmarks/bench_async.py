"""Cases 2 to 5 (``send_async``), each backend inside one event loop.

- 2: nobody listening;
- 3: N ``async def`` receivers that return without suspending;
- 4: N receivers that each sleep (10 ms in the full run);
- 5: cases 3 and 4 again with ``_timeout=5`` and with ``_errors="collect"``.

On trio, concurrent receivers run in a nursery opened before the first one starts (the
price of structured concurrency there), so where two or more receivers run (N >= 2) the
target of cases 3 and 5 is: asignal <= 1.3 x (blinker's sequential send_async + one
empty nursery opened and closed), all three measured in the same rounds. Likewise a
send to one receiver with ``_timeout`` opens a cancel scope first: its target is
asignal <= 1.3 x (blinker + one cancel scope with a deadline).

The sleeping receivers use the backend's native sleep (``asyncio.sleep`` / ``trio.sleep``),
not ``anyio.sleep``: anyio's wrapper would add the same few microseconds to every library
and to the floors alike, blurring the per-receiver dispatch cost this case compares.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from typing import Any

from pyperf import perf_counter

from . import _libs
from ._harness import Check, Config, Row, Series, measure_async, ratio_check

NS = (0, 1, 10, 100)
OTHERS = 100
US = 1e6
MS = 1e3
#: The whole-send deadline of case 5; far above any send here, so it never fires.
TIMEOUT = 5

Send = Callable[..., Awaitable[Any]]


def _timed(send: Send, sender: Any) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        t0 = perf_counter()
        for _ in range(loops):
            await send(sender)
        return float(perf_counter() - t0)

    return run


# Separate loops per option (not ``**options``) so each call site costs the same as a
# user's would: a literal keyword, no dict unpacking.
def _timed_timeout(send: Send, sender: Any) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        t0 = perf_counter()
        for _ in range(loops):
            await send(sender, _timeout=TIMEOUT)
        return float(perf_counter() - t0)

    return run


def _timed_collect(send: Send, sender: Any) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        t0 = perf_counter()
        for _ in range(loops):
            await send(sender, _errors="collect")
        return float(perf_counter() - t0)

    return run


def _timed_nursery() -> Callable[[int], Awaitable[float]]:
    """One empty trio nursery opened and closed: what structured concurrency costs a
    send whose receivers never suspend."""
    import trio

    async def run(loops: int) -> float:
        t0 = perf_counter()
        for _ in range(loops):
            async with trio.open_nursery():
                pass
        return float(perf_counter() - t0)

    return run


def _timed_scope() -> Callable[[int], Awaitable[float]]:
    """One trio cancel scope with a deadline entered and left: what ``_timeout`` costs a
    send to one receiver on trio, whose scope must be open before the receiver starts."""
    import trio

    async def run(loops: int) -> float:
        t0 = perf_counter()
        for _ in range(loops):
            with trio.CancelScope(deadline=trio.current_time() + TIMEOUT):
                pass
        return float(perf_counter() - t0)

    return run


def _timed_sleep(
    sleep: Callable[[float], Awaitable[None]], seconds: float
) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        t0 = perf_counter()
        for _ in range(loops):
            await sleep(seconds)
        return float(perf_counter() - t0)

    return run


def _contenders(backend: str) -> tuple[str, ...]:
    # django's asend is built on asyncio.gather: it cannot run under trio.
    return ("asignal", "blinker", "django") if backend == "asyncio" else ("asignal", "blinker")


def _group(
    backend: str,
    tag: str,
    receivers: list[_libs.Receiver],
    listen_to: object | None,
    sender: Any,
    floor: Callable[[list[_libs.Receiver]], Send],
    variants: bool,
) -> dict[str, Series]:
    """Series keyed by column: asignal, asignal+timeout, asignal+collect, blinker, ..."""
    out: dict[str, Series] = {}
    name = f"{backend}/send_async/{tag}"
    for lib in _contenders(backend):
        sig = _libs.build(lib, receivers, listen_to)
        send = sig.asend if lib == "django" else sig.send_async
        out[lib] = Series(f"{name}/{lib}", _timed(send, sender), keep=receivers)
        if lib == "asignal" and variants:
            out["asignal+timeout"] = Series(
                f"{name}/asignal+_timeout={TIMEOUT}", _timed_timeout(send, sender), keep=receivers
            )
            out["asignal+collect"] = Series(
                f"{name}/asignal+_errors=collect", _timed_collect(send, sender), keep=receivers
            )
    gets = receivers if listen_to is None or listen_to is sender else []
    out["floor"] = Series(f"{name}/floor", _timed(floor(gets), sender), keep=receivers)
    if backend == "trio" and variants and len(receivers) >= NURSERY_FROM:
        out["nursery"] = Series(f"{name}/trio nursery open+close", _timed_nursery())
    elif backend == "trio" and variants and len(receivers) == 1:
        out["scope"] = Series(f"{name}/trio cancel scope with deadline", _timed_scope())
    return out


#: On trio, sends to this many receivers or more open a nursery (see the module doc).
NURSERY_FROM = 2
#: The trio target: asignal <= this x (blinker + one nursery).
NURSERY_LIMIT = 1.3


def _trio_check(group: dict[str, Series], key: str, price: str) -> Check:
    """asignal's series ``key`` / (blinker + what trio's structure costs, the series
    ``price``), paired within each round and the median taken over rounds, so drift
    between rounds cancels."""
    per_round = [
        a / (b + p)
        for a, b, p in zip(
            group[key].values, group["blinker"].values, group[price].values, strict=False
        )
    ]
    return Check(f"a/(b+{price})≤{NURSERY_LIMIT:g}", statistics.median(per_round), NURSERY_LIMIT)


def _trio_note(row: Row, group: dict[str, Series], price: str) -> Row:
    what = {
        "nursery": "N>=2: one empty nursery opened and closed",
        "scope": "N=1 with _timeout: one cancel scope with a deadline",
    }[price]
    row.notes[f"target ({price})"] = (
        f"trio, {what}: asignal / (blinker + it, {group[price].median() * US:.2f} µs in "
        "this run), paired per round; trio's structure must be in place before the "
        "first receiver starts"
    )
    return row


def _medians(group: dict[str, Series], scale: float, **columns: str) -> dict[str, float | None]:
    """Row cells from ``group``: column -> series key (default: the same name)."""
    cells: dict[str, float | None] = {}
    for column in ("asignal", "blinker", "django", "floor"):
        key = columns.get(column, column)
        cells[column] = group[key].median() * scale if key in group else None
    return cells


def _extra_per_receiver(series: Series, bare: Series, n: int) -> float:
    """Median over rounds of (send wall - bare sleep wall) / n, paired within each round so
    drift and timer overshoot cancel."""
    pairs = zip(series.values, bare.values, strict=False)
    return statistics.median((v - b) / n for v, b in pairs)


def _na_django(backend: str, row: Row) -> Row:
    if backend != "asyncio":
        row.notes["django"] = "asend is built on asyncio.gather and cannot run on trio"
    return row


async def _main(cfg: Config, backend: str) -> tuple[list[Row], list[Series]]:
    if backend == "asyncio":
        import asyncio

        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        concurrent_floor = _libs.taskgroup_floor
        floor_name = "asyncio.TaskGroup, one task per receiver"
    else:
        import trio

        sleep = trio.sleep
        concurrent_floor = _libs.nursery_floor
        floor_name = "a native trio nursery, one task per receiver"

    sender, other = _libs.App(), _libs.App()
    quick = {
        n: _group(
            backend, f"N={n}", _libs.async_receivers(n), None, sender, _libs.async_floor, True
        )
        for n in NS
    }
    idle_other = _group(
        backend,
        f"N=0 ({OTHERS} other)",
        _libs.async_receivers(OTHERS),
        other,
        sender,
        _libs.async_floor,
        False,
    )
    n = cfg.sleep_n
    slow = _group(
        backend,
        f"N={n} sleeping {cfg.sleep * MS:g} ms",
        _libs.sleeping_receivers(n, sleep, cfg.sleep),
        None,
        sender,
        concurrent_floor,
        True,
    )
    slow["bare"] = Series(f"{backend}/sleep {cfg.sleep * MS:g} ms", _timed_sleep(sleep, cfg.sleep))
    for s in slow.values():
        s.rounds = cfg.sleep_rounds
        s.loops = cfg.sleep_loops
    # blinker awaits one receiver after another: one send takes n x sleep (1 s in the full
    # run), so it does one send per sample and skips the warm-up.
    slow["blinker"].loops = 1
    slow["blinker"].warmup = False

    groups = [list(g.values()) for g in (*quick.values(), idle_other, slow)]
    await measure_async(groups, cfg)

    rows: list[Row] = []
    seq_floor = "a sequential `await r(sender)` loop collecting results"
    # Case 2: nobody listening.
    for group, n_label in ((quick[0], "0"), (idle_other, f"0 ({OTHERS} other)")):
        row = Row(
            "2",
            "send_async, nobody listening",
            backend,
            n_label,
            "µs/send",
            _medians(group, US),
            floor_is=seq_floor,
        )
        row.checks.append(ratio_check("a/b≤1", row, "blinker", 1.0))
        rows.append(_na_django(backend, row))
    # Case 3: receivers that never suspend.
    for n_ in NS:
        row = Row(
            "3",
            "send_async, no suspension",
            backend,
            str(n_),
            "µs/send",
            _medians(quick[n_], US),
            floor_is=seq_floor,
        )
        if "nursery" in quick[n_]:
            # A nursery alone costs several times this floor: the trio target replaces
            # both blinker's and the floor's (the hardening issue's decision).
            row.checks.append(_trio_check(quick[n_], "asignal", "nursery"))
            _trio_note(row, quick[n_], "nursery")
        else:
            row.checks.append(ratio_check("a/b≤1", row, "blinker", 1.0))
        # With nobody listening django's asend returns [] at once: no dispatch to compare.
        if backend == "asyncio" and n_ > 0:
            row.checks.append(ratio_check("a/d≤0.2", row, "django", 0.2))
        if "nursery" not in quick[n_]:
            row.checks.append(ratio_check("a/f≤4", row, "floor", 4.0))
        rows.append(_na_django(backend, row))
    # Case 4: receivers that sleep.
    sleep_ms = cfg.sleep * MS
    title4 = f"send_async, sleep {sleep_ms:g} ms"
    wall = Row(
        "4", f"{title4}: wall", backend, str(n), "ms/send", _medians(slow, MS), floor_is=floor_name
    )
    if backend == "asyncio":
        wall.checks.append(Check(f"a≤{1.2 * sleep_ms:g} ms", wall.cells["asignal"], 1.2 * sleep_ms))
    rows.append(_na_django(backend, wall))

    extra_us = {
        key: _extra_per_receiver(s, slow["bare"], n) * US
        for key, s in slow.items()
        if key != "bare"
    }
    cells = {col: extra_us.get(col) for col in ("asignal", "blinker", "django", "floor")}
    extra = Row(
        "4", f"{title4}: extra/recv", backend, str(n), "µs/recv", cells, floor_is=floor_name
    )
    extra.notes["extra/recv"] = (
        "(wall of one send - wall of one bare sleep in the same round) / N, median over rounds"
    )
    extra.checks.append(ratio_check("a/f≤1.5", extra, "floor", 1.5))
    rows.append(_na_django(backend, extra))

    # Case 5: the options must not cost more than 30 %.
    for option, label in (("timeout", f"_timeout={TIMEOUT}"), ("collect", '_errors="collect"')):
        key = f"asignal+{option}"
        for n_ in NS:
            row = Row(
                "5",
                f"case 3 + {label}",
                backend,
                str(n_),
                "µs/send",
                _medians(quick[n_], US, asignal=key, floor="asignal"),
                floor_is="asignal's own figure without the option (same round)",
            )
            if "nursery" in quick[n_]:
                # The trio target covers the options too: same budget, same run.
                row.checks.append(_trio_check(quick[n_], key, "nursery"))
                _trio_note(row, quick[n_], "nursery")
            elif "scope" in quick[n_] and option == "timeout":
                row.checks.append(_trio_check(quick[n_], key, "scope"))
                _trio_note(row, quick[n_], "scope")
            else:
                row.checks.append(ratio_check("a/f≤1.3", row, "floor", 1.3))
            rows.append(_na_django(backend, row))
        cells = {
            "asignal": extra_us[key],
            "blinker": extra_us.get("blinker"),
            "django": extra_us.get("django"),
            "floor": extra_us["asignal"],
        }
        row = Row(
            "5",
            f"case 4 + {label}: extra/recv",
            backend,
            str(n),
            "µs/recv",
            cells,
            floor_is="asignal's own figure without the option (same round)",
        )
        row.checks.append(ratio_check("a/f≤1.3", row, "floor", 1.3))
        rows.append(_na_django(backend, row))

    series = [s for g in groups for s in g]
    return rows, series


def run(cfg: Config, backend: str) -> tuple[list[Row], list[Series]]:
    """Measure every async case inside one ``asyncio.run`` / ``trio.run``."""
    if backend == "asyncio":
        import asyncio

        return asyncio.run(_main(cfg, backend))
    if backend == "trio":
        import trio

        return trio.run(_main, cfg, backend)
    raise ValueError(backend)
