"""Case 8: what ``asignal.adapters.starlette.install`` costs a request, in-process.

Copies of one app are driven in-process with a fresh scope per request, so no network
or server is timed. Three profiles:

- ``starlette``: one route returning a 2-byte ``PlainTextResponse``, the least work a
  Starlette request can do, so the largest relative overhead; called directly as an
  ASGI app with no-op ``receive``/``send``;
- ``fastapi``: ``GET /items/{item_id}?q=`` with a typed path and query parameter,
  returning a dict as JSON: a typical small API call; called the same way;
- ``fastapi via httpx``: the same app driven by ``httpx.AsyncClient`` over
  ``httpx.ASGITransport``, the in-process client the tests use: each request also
  pays for building it and reading the response, as it would through a server.

The copies of each app:

- ``bare``: not installed;
- ``installed``: ``install(app)``, nothing connected (the hot path: a few dict lookups);
- ``3 receivers``: ``install(app)`` with three no-op ``async def`` receivers connected to
  ``request_started`` and three to ``request_finished`` (sender = that app);
- ``by hand`` (the floor of ``3 receivers``; no library): the bare app wrapped in the
  least middleware that can do the same work: build the ``Request``, await the three
  receivers directly, wrap ``send``, and at ``http.response.start`` build the response
  record and await the other three. No adapter can cost less;
- ``no sends`` (no target; it splits the cost): ``install(app)`` with one receiver on
  ``got_background_exception``, which never fires: the middleware is in the path and
  watches the response, but sends nothing. ``3 receivers`` minus this is what the six
  receivers cost through ``send_async``; this minus ``bare`` is the adapter's own work.

The series alternate within every round (the suite's interleaved rounds, rotated so each
goes first equally often) and the figures are medians over rounds; pyperf's worker
processes measure one benchmark at a time, which cannot interleave them. Targets (issue 10
§7), all against series of the same run:

- ``installed`` ≥ 0.97 times the bare app's requests per second (every profile);
- the *added* cost of ``3 receivers`` (its time per request minus the bare app's) ≤ 1.25
  times the added cost of ``by hand`` (every profile);
- ``3 receivers`` ≥ 0.90 times the bare app's requests per second through
  ``httpx.ASGITransport`` (the ``fastapi via httpx`` profile).

Every app runs inside its lifespan, as a server runs it, so an installed app's requests
find its background runner and only make it current. ``no lifespan`` (no target) is the
installed app without its lifespan, as ``httpx.ASGITransport`` alone serves it: each
connection then also builds its own runner.

``run(cfg)`` is the suite's section (``python -m benchmarks --only asgi``);
``python -m benchmarks.bench_asgi`` prints requests per second on its own.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import fastapi
import httpx
from pyperf import perf_counter
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asignal import signals
from asignal.adapters.starlette import ResponseInfo, install

from ._harness import FULL, SMOKE, Check, Config, Row, Series, measure_async

US = 1e6
BACKENDS = ("asyncio", "trio")
#: Minimum requests-per-second ratios to the bare app, by variant, and the profiles they
#: apply to (None: all).
TARGETS: dict[str, tuple[float, str | None]] = {
    "installed": (0.97, None),
    "3 receivers": (0.90, "fastapi via httpx"),
}
#: Maximum ratio of the adapter's added cost (3 receivers - bare) to the hand-written
#: middleware's (by hand - bare).
ADDED_COST_TARGET = 1.25


def target(variant: str, profile: str) -> float | None:
    """The minimum requests-per-second ratio to bare of ``variant`` in ``profile``."""
    minimum, only = TARGETS.get(variant, (None, None))
    return minimum if minimum is not None and only in (None, profile) else None


def added_cost_ratio(series: dict[str, Series]) -> float | None:
    """(3 receivers - bare) / (by hand - bare), from the medians; None if by hand adds
    nothing measurable."""
    bare = series["bare"].median()
    by_hand = series["by hand"].median() - bare
    if by_hand <= 0:
        return None
    return (series["3 receivers"].median() - bare) / by_hand


SCOPE: Scope = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("bench", 80),
}


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


async def _endpoint(request: Request) -> Response:
    return PlainTextResponse("ok")


def _starlette_app() -> Starlette:
    return Starlette(routes=[Route("/", _endpoint)])


def _fastapi_app() -> Starlette:
    app = fastapi.FastAPI()

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "q": q}

    return app


#: app factory, request scope, and whether an httpx client drives it, of each profile.
PROFILES: dict[str, tuple[Callable[[], Starlette], Scope, bool]] = {
    "starlette": (_starlette_app, SCOPE, False),
    "fastapi": (
        _fastapi_app,
        {**SCOPE, "path": "/items/42", "raw_path": b"/items/42", "query_string": b"q=x"},
        False,
    ),
    "fastapi via httpx": (_fastapi_app, {**SCOPE, "path": "/items/42?q=x"}, True),
}

Receiver = Callable[..., Awaitable[None]]


def _noop_receivers() -> list[Receiver]:
    def make() -> Receiver:
        async def receiver(sender: Any, **kwargs: Any) -> None:
            return None

        return receiver

    return [make() for _ in range(3)]


class _ByHand:
    """The floor of the ``3 receivers`` work: what a middleware written for exactly this
    job, without a signal library, must do. It is placed outside the whole app, as
    ``install`` places its middleware outside ``ServerErrorMiddleware``."""

    def __init__(self, app: ASGIApp, started: list[Receiver], finished: list[Receiver]) -> None:
        self.app = app
        self.started = started
        self.finished = finished

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        request = Request(scope)
        for receiver in self.started:
            await receiver(app, request=request)
        finished = self.finished

        async def reporting(message: Message) -> None:
            if message["type"] == "http.response.start":
                response = ResponseInfo(message["status"], Headers(raw=message["headers"]))
                for receiver in finished:
                    await receiver(app, request=request, response=response)
            await send(message)

        await app(scope, receive, reporting)


def _timed(app: ASGIApp, scope: Scope) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        t0 = perf_counter()
        for _ in range(loops):
            # Apps write into the scope (route, path params, asignal's marker): fresh each time.
            await app(dict(scope), _receive, _send)
        return float(perf_counter() - t0)

    return run


def _timed_client(app: ASGIApp, scope: Scope) -> Callable[[int], Awaitable[float]]:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://bench")
    url = scope["path"]

    async def run(loops: int) -> float:
        t0 = perf_counter()
        for _ in range(loops):
            response = await client.get(url)
            response.raise_for_status()
        return float(perf_counter() - t0)

    return run


def _series(backend: str, profile: str) -> dict[str, Series]:
    make, scope, client = PROFILES[profile]
    timed = _timed_client if client else _timed
    bare, installed, listened, watched, unstarted = make(), make(), make(), make(), make()
    install(installed)
    install(listened)
    install(watched)
    install(unstarted)
    receivers = _noop_receivers() + _noop_receivers() + _noop_receivers()
    signals.got_background_exception.connect(receivers[6], sender=watched)
    for receiver in receivers[:3]:
        signals.request_started.connect(receiver, sender=listened)
    for receiver in receivers[3:6]:
        signals.request_finished.connect(receiver, sender=listened)
    by_hand = _ByHand(make(), receivers[:3], receivers[3:6])
    name = f"{backend}/asgi {profile} request"
    _LIFESPANS[name] = [bare, installed, listened, watched, by_hand.app]
    return {
        "bare": Series(f"{name}/bare", timed(bare, scope)),
        "installed": Series(f"{name}/installed", timed(installed, scope)),
        "no lifespan": Series(f"{name}/no lifespan", timed(unstarted, scope)),
        "no sends": Series(f"{name}/no sends", timed(watched, scope), keep=receivers),
        "3 receivers": Series(f"{name}/3 receivers", timed(listened, scope), keep=receivers),
        "by hand": Series(f"{name}/by hand", timed(by_hand, scope), keep=receivers),
    }


#: The apps of each profile that run inside their lifespan while measured.
_LIFESPANS: dict[str, list[Any]] = {}


async def _measure(cfg: Config, backend: str) -> dict[str, dict[str, Series]]:
    series = {profile: _series(backend, profile) for profile in PROFILES}
    async with contextlib.AsyncExitStack() as lifespans:
        for apps in _LIFESPANS.values():
            for app in apps:
                # What a server's lifespan start-up runs (Starlette's router does this).
                await lifespans.enter_async_context(app.router.lifespan_context(app))
        _LIFESPANS.clear()
        await measure_async([list(group.values()) for group in series.values()], cfg)
    return series


def measure(cfg: Config, backend: str) -> dict[str, dict[str, Series]]:
    """profile -> the three series of ``backend``, measured (``values``: s/request)."""
    result: dict[str, dict[str, Series]] = anyio.run(_measure, cfg, backend, backend=backend)
    return result


def run(cfg: Config) -> tuple[list[Row], list[Series]]:
    """The suite's ``asgi`` section: one row per installed variant and backend, with the
    installed app in the ``asignal`` column and the bare app as the ``floor``."""
    rows: list[Row] = []
    measured: list[Series] = []
    for backend in BACKENDS:
        for profile, series in measure(cfg, backend).items():
            measured += series.values()
            rows += _rows(backend, profile, series)
    return rows, measured


def _rows(backend: str, profile: str, series: dict[str, Series]) -> list[Row]:
    rows: list[Row] = []
    bare = series["bare"].median() * US
    no_integration = {
        "blinker": "no ASGI integration to compare",
        "django": "no ASGI integration to compare",
    }
    for variant in ("installed", "no lifespan", "no sends", "3 receivers"):
        row = Row(
            "8",
            f"ASGI {profile} request, {variant}",
            backend,
            {"3 receivers": "3+3", "no sends": "1 idle"}.get(variant, "0"),
            "µs/request",
            {
                "asignal": series[variant].median() * US,
                "blinker": None,
                "django": None,
                "floor": bare,
            },
            notes=no_integration,
            floor_is="the same app, not installed",
        )
        minimum = target(variant, profile)
        if minimum is not None:
            label = f"a/floor≤{1 / minimum:.3f}"
            row.checks.append(Check(label, row.ratio("floor"), 1 / minimum))
        rows.append(row)
    by_hand = series["by hand"].median() * US
    added = Row(
        "8",
        f"ASGI {profile} request, 3 receivers' added cost vs by hand's",
        backend,
        "3+3",
        "µs/request added",
        {
            "asignal": series["3 receivers"].median() * US - bare,
            "blinker": None,
            "django": None,
            "floor": by_hand - bare,
        },
        notes={
            **no_integration,
            f"by hand, {profile}": (
                f"{by_hand / bare:.2f} times the bare app's time per request, so "
                f"{bare / by_hand:.2f} times its requests per second"
            ),
        },
        floor_is="what a middleware written by hand for the same work, no library "
        "(bench_asgi._ByHand), adds to the same app's time per request",
    )
    added.checks.append(
        Check(f"added/by hand's≤{ADDED_COST_TARGET}", added_cost_ratio(series), ADDED_COST_TARGET)
    )
    rows.append(added)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print requests per second for every profile and variant, and the ratios to the
    targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--smoke", action="store_true", help="tiny counts, figures mean nothing")
    args = parser.parse_args(argv)
    cfg = SMOKE if args.smoke else FULL
    print(
        f"{'backend':<8} {'app':<18} {'variant':<12} {'req/s':>9} {'x bare':>7} {'target':>7}  ok"
    )
    failed = False
    for backend in BACKENDS:
        for profile, series in measure(cfg, backend).items():
            bare = series["bare"].median()
            for name, s in series.items():
                ratio = bare / s.median()
                minimum = target(name, profile)
                ok = "" if minimum is None else ("PASS" if ratio >= minimum else "FAIL")
                failed |= ok == "FAIL"
                shown = "" if minimum is None else f"≥{minimum:.2f}"
                print(
                    f"{backend:<8} {profile:<18} {name:<12} {1 / s.median():>9,.0f}"
                    f" {ratio:>7.3f} {shown:>7}  {ok}"
                )
            added = added_cost_ratio(series)
            ok = "PASS" if added is not None and added <= ADDED_COST_TARGET else "FAIL"
            failed |= ok == "FAIL"
            shown = "n/a" if added is None else f"{added:.3f}"
            print(
                f"{backend:<8} {profile:<18} {'added cost':<12} {'':>9} {shown:>7}"
                f" {'≤' + str(ADDED_COST_TARGET):>7}  {ok}   (3 receivers vs by hand, over bare)"
            )
    return 1 if failed and not args.smoke else 0


if __name__ == "__main__":
    raise SystemExit(main())
