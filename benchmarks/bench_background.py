"""Case bg: what scheduling one background call costs, against anyio's own ``start_soon``.

Each sample opens a container, schedules ``loops`` calls of the same coroutine (an
``async def`` that returns at once) and closes the container, which waits for all of
them. The container is a ``BackgroundRunner`` for asignal and a bare anyio task group for
the floor, so both figures include creating, running and reaping one task per call; the
opening and closing are shared by the ``loops`` calls of a sample.

- ``schedule_nowait``: the sync path (the one a send takes for a background receiver);
- ``await schedule``: the async path, with room to spare (it never waits here);
- ``schedule_nowait`` with a timeout: each call then runs under a cancel scope, so its
  floor is ``start_soon`` of the coroutine wrapped in ``anyio.move_on_after``.

Target (issue 11): asignal / floor <= 1.5, medians, both backends, same run. blinker and
django.dispatch have no background dispatch, so their columns stay empty.

Then a whole request (case bgr): a Starlette app with three ``request_finished``
receivers that sleep 20 ms each, connected with ``background=True`` (and, to show what
they cost a response otherwise, awaited: about 20 ms more), against two floors: the bare
app (no adapter, no receivers), and the bare app behind the least hand-written middleware
that does the same work (after the response, ``start_soon`` the three sleeps on a task
group that lives for the app's lifespan), which no library can beat. The variants are
built in ``_bg_http.py`` and measured twice, each request timed on its own, p50 over
every request of the run, the variants taking turns within each round:

- in-process, through ``httpx.ASGITransport`` inside each app's ASGI lifespan. Between
  two requests the loop gets one untimed checkpoint, as a server's loop has between
  requests: the calls that the last request scheduled take their first step there; their
  wake-ups 20 ms later land in whatever is being timed then, and count. Here a request
  costs ~0.1 ms, and the three tasks that any implementation needs cost about half as
  much again: 1.1 x the bare app is out of reach of the hand-written floor itself, so the
  target is checked against that floor;
- over real HTTP on 127.0.0.1, as a client sees it: every variant served by ONE server
  process, uvicorn (asyncio) or hypercorn's trio worker, one listening socket each, so
  that all run in the same interpreter and loop (a process per variant differed from
  the next, in memory layout, core and hash seed, by as much as the effect measured).
  Sequential keep-alive requests from one httpx client per variant, timed in blocks:
  in each round, each variant in turn (rotated, each going first once) gets
  :data:`HTTP_REQUESTS` requests, long enough that most of the background variant's own
  20 ms wake-ups land in its own block, then an untimed pause of a few times 20 ms, so
  that whatever the block scheduled has ended before the next variant's block.
  Target (issue 11): p50 <= 1.1 x the bare app's. A third floor splits the gap: the
  app installed with one sync ``request_finished`` receiver, awaited (the adapter's and
  one send's own cost, without background work).
"""

from __future__ import annotations

import contextlib
import gc
import statistics
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
from pyperf import perf_counter

from asignal import BackgroundRunner

from . import _bg_http
from ._harness import Config, Row, Series, measure_async, ratio_check

CASE = "bg"
#: The case of the request rows: a whole request, not one call.
CASE_REQUEST = "bgr"
US = 1e6
#: The timeout of the third row: far above any call here, so it never fires.
TIMEOUT = 5.0
#: Calls per sample (and per container) in the full run.
CALLS = 1000
NO_PEER = "no background dispatch to compare with"
#: Requests per variant and round (one block) over HTTP in the full run: at ~1.5 ms
#: each, the background variant's 20 ms wake-ups of all but the last ~13 land in it.
HTTP_REQUESTS = 60
#: Rounds over HTTP in the full run: each variant goes first in one of them.
HTTP_ROUNDS = len(_bg_http.VARIANTS)

Run = Callable[[int], Awaitable[float]]


async def work() -> None:
    """The scheduled coroutine: returns without suspending."""


async def work_bounded() -> None:
    """The floor's coroutine for the timeout row: ``work`` under the same cancel scope a
    runner puts around a call with a timeout."""
    with anyio.move_on_after(TIMEOUT):
        await work()


def _clean_slate() -> None:
    # Each sample leaves a thousand tasks' (and cancel scopes') garbage behind; collected
    # inside the next sample it would bill that sample's series for the previous one.
    gc.collect()


def floor(fn: Callable[[], Awaitable[None]]) -> Run:
    async def run(loops: int) -> float:
        _clean_slate()
        t0 = perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(loops):
                tg.start_soon(fn)
        return float(perf_counter() - t0)

    return run


def nowait(timeout: float | None = None) -> Run:
    async def run(loops: int) -> float:
        _clean_slate()
        t0 = perf_counter()
        async with BackgroundRunner(max_pending=loops, default_timeout=timeout) as runner:
            for _ in range(loops):
                runner.schedule_nowait(work, name="bench.work")
        return float(perf_counter() - t0)

    return run


def awaited() -> Run:
    async def run(loops: int) -> float:
        _clean_slate()
        t0 = perf_counter()
        async with BackgroundRunner(max_pending=loops) as runner:
            for _ in range(loops):
                await runner.schedule(work, name="bench.work")
        return float(perf_counter() - t0)

    return run


async def _main(cfg: Config, backend: str) -> tuple[list[Row], list[Series]]:
    name = f"{backend}/background"
    # Every series schedules the same number of calls per sample, so that the container's
    # opening and closing, and the timer heap of the timeout row, weigh the same in each.
    loops = 2 if cfg.smoke else CALLS
    plain = Series(f"{name}/start_soon", floor(work))
    bounded = Series(f"{name}/start_soon+move_on_after", floor(work_bounded))
    # Row title -> (asignal's series, the floor it is compared with). The first two rows
    # share one floor, measured once per round alongside both.
    rows_of = {
        "schedule_nowait": (Series(f"{name}/schedule_nowait", nowait()), plain),
        "await schedule": (Series(f"{name}/await schedule", awaited()), plain),
        f"schedule_nowait, timeout={TIMEOUT:g}": (
            Series(f"{name}/schedule_nowait+timeout", nowait(TIMEOUT)),
            bounded,
        ),
    }
    groups = [[plain, rows_of["schedule_nowait"][0], rows_of["await schedule"][0]]]
    groups.append([bounded, rows_of[f"schedule_nowait, timeout={TIMEOUT:g}"][0]])
    for series in (s for g in groups for s in g):
        series.loops = loops
    await measure_async(groups, cfg)
    rows = []
    for title, (a, f) in rows_of.items():
        row = Row(
            CASE,
            f"background call: {title}",
            backend,
            "1",
            "µs/call",
            {"asignal": a.median() * US, "blinker": None, "django": None, "floor": f.median() * US},
            notes={"blinker": NO_PEER, "django": NO_PEER},
            floor_is=(
                "anyio task_group.start_soon of the same coroutine (in the timeout row, "
                "wrapped in anyio.move_on_after), its task run and reaped"
            ),
        )
        row.checks.append(ratio_check("a/f≤1.5", row, "floor", 1.5))
        rows.append(row)
    return rows, [s for g in groups for s in g]


#: Requests per variant and round in the full run (the awaited one takes ~20 ms each).
REQUESTS = 10
MS = 1e3
#: What each variant's p50 is compared with in the request rows, and the target if any:
#: ``(variant, its floor, the check's limit or None)``.
REQUEST_ROWS = (
    ("background", "bare", None),
    ("background", "handwritten", 1.1),
    ("awaited", "bare", None),
)
HTTP_ROWS = (
    ("background", "bare", 1.1),
    ("background", "handwritten", None),
    ("background", "adapter", None),
    ("awaited", "bare", None),
)
FLOORS = {
    "adapter": (
        "the same app installed with one sync request_finished receiver that returns at "
        "once, awaited: the adapter's and one send's own cost"
    ),
    "bare": "the bare Starlette app (no adapter, no receivers)",
    "handwritten": (
        "the bare app behind a hand-written middleware that start_soon()s the three sleeps "
        "after the response on a task group living for the app's lifespan: what no "
        "library can do for less"
    ),
}


@contextlib.asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    """Run ``app``'s ASGI lifespan around the block, as a server does."""
    to_app, app_in = anyio.create_memory_object_stream[dict[str, Any]](2)
    app_out, from_app = anyio.create_memory_object_stream[dict[str, Any]](2)

    async def run() -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        await app(scope, app_in.receive, app_out.send)

    async with anyio.create_task_group() as tg, to_app, from_app, app_in, app_out:
        tg.start_soon(run)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        yield
        await to_app.send({"type": "lifespan.shutdown"})
        assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"


async def _request_p50s(cfg: Config) -> dict[str, float]:
    """variant -> the p50 latency of ``GET /`` through ``httpx.ASGITransport``, seconds,
    over every request of the run."""
    import httpx

    apps = {variant: _bg_http.make_app(variant) for variant in _bg_http.VARIANTS}
    times: dict[str, list[float]] = {name: [] for name in apps}
    requests = 2 if cfg.smoke else REQUESTS
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for name, app in apps.items():
            await stack.enter_async_context(_lifespan(app))
            transport = httpx.ASGITransport(app)
            clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://bench")
            )
        for client in clients.values():  # warm-up
            (await client.get("/")).raise_for_status()
        names = list(apps)
        for round_no in range(cfg.rounds):
            gc.collect()
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                for _ in range(requests):
                    # Untimed, as a server's loop between two requests: what is ready
                    # runs (here, the first step of the calls the last request scheduled).
                    await anyio.lowlevel.checkpoint()
                    t0 = perf_counter()
                    response = await clients[name].get("/")
                    times[name].append(float(perf_counter() - t0))
                    response.raise_for_status()
    return {name: statistics.median(values) for name, values in times.items()}


def _request_rows(
    backend: str,
    how: str,
    p50: dict[str, float],
    rows_of: tuple[tuple[str, str, float | None], ...],
) -> list[Row]:
    rows = []
    for variant, floor, limit in rows_of:
        seconds = _bg_http.RECEIVER_SECONDS * MS
        row = Row(
            CASE_REQUEST,
            f"request {how}, 3 x {seconds:g} ms request_finished receivers {variant}, vs {floor}",
            backend,
            "3",
            "ms p50",
            {
                "asignal": p50[variant] * MS,
                "blinker": None,
                "django": None,
                "floor": p50[floor] * MS,
            },
            notes={"blinker": NO_PEER, "django": NO_PEER},
            floor_is=f"{FLOORS[floor]}, {how}, p50, same run",
        )
        if limit is not None:
            row.checks.append(ratio_check(f"a/f≤{limit:g}", row, "floor", limit))
        rows.append(row)
    return rows


async def _main_with_requests(cfg: Config, backend: str) -> tuple[list[Row], list[Series]]:
    rows, series = await _main(cfg, backend)
    p50 = await _request_p50s(cfg)
    rows += _request_rows(backend, "in-process", p50, REQUEST_ROWS)
    return rows, series


def _http_rows(cfg: Config, backend: str) -> list[Row]:
    """The request over HTTP: uvicorn for asyncio, hypercorn's trio worker for trio."""
    server = "uvicorn" if backend == "asyncio" else "hypercorn"
    requests = 2 if cfg.smoke else HTTP_REQUESTS
    rounds = cfg.rounds if cfg.smoke else HTTP_ROUNDS
    with _bg_http.started(server) as ports:
        p50 = anyio.run(_bg_http.p50s, ports, rounds, requests, backend=backend)
    how = f"over HTTP ({server})"
    return _request_rows(backend, how, p50, HTTP_ROWS)


def run(cfg: Config) -> tuple[list[Row], list[Series]]:
    """Case bg on asyncio, then on trio, each inside one event loop."""
    rows: list[Row] = []
    series: list[Series] = []
    for backend in ("asyncio", "trio"):
        r, s = anyio.run(_main_with_requests, cfg, backend, backend=backend)
        rows += r + _http_rows(cfg, backend)
        series += s
    return rows, series


if __name__ == "__main__":
    # This case alone, printed as the suite prints it.
    import sys

    from .__main__ import main

    raise SystemExit(main(["--only", "background", "--no-json", *sys.argv[1:]]))
