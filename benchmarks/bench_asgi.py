"""Case 8: what ``asignal.adapters.starlette.install`` costs a request, in-process.

Three copies of one app are called directly as ASGI apps, with a fresh scope per request
and no-op ``receive``/``send``, so no network or server is timed. Two apps:

- ``starlette``: one route returning a 2-byte ``PlainTextResponse``, the least work a
  Starlette request can do, so the largest relative overhead;
- ``fastapi``: ``GET /items/{item_id}?q=`` with a typed path and query parameter,
  returning a dict as JSON: a typical small API call.

The three copies:

- ``bare``: not installed;
- ``installed``: ``install(app)``, nothing connected (the hot path: a few dict lookups);
- ``3 receivers``: ``install(app)`` with three no-op ``async def`` receivers connected to
  ``request_started`` and three to ``request_finished`` (sender = that app);
- ``no sends`` (no target; it splits the cost): ``install(app)`` with one receiver on
  ``got_background_exception``, which never fires: the middleware is in the path and
  watches the response, but sends nothing. ``3 receivers`` minus this is what the six
  receivers cost through ``send_async``; this minus ``bare`` is the adapter's own work.

The series alternate within every round (the suite's interleaved rounds, rotated so each
goes first equally often) and the figures are medians over rounds; pyperf's worker
processes measure one benchmark at a time, which cannot interleave the three. Targets
(issue 5): ``installed`` ≥ 0.97 times the bare app's requests per second, ``3 receivers``
≥ 0.90 times, i.e. time per request ≤ 1/0.97 and ≤ 1/0.90 of bare.

``run(cfg)`` is the suite's section (``python -m benchmarks --only asgi``);
``python -m benchmarks.bench_asgi`` prints requests per second on its own.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import fastapi
from pyperf import perf_counter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message, Scope

from asignal import signals
from asignal.adapters.starlette import install

from ._harness import FULL, SMOKE, Check, Config, Row, Series, measure_async

US = 1e6
BACKENDS = ("asyncio", "trio")
#: Minimum requests-per-second ratios to the bare app (issue 5).
TARGETS = {"installed": 0.97, "3 receivers": 0.90}
VARIANTS = ("installed", "no sends", "3 receivers")

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


#: app factory and request scope of each profile.
PROFILES: dict[str, tuple[Callable[[], Starlette], Scope]] = {
    "starlette": (_starlette_app, SCOPE),
    "fastapi": (
        _fastapi_app,
        {**SCOPE, "path": "/items/42", "raw_path": b"/items/42", "query_string": b"q=x"},
    ),
}


def _noop_receivers() -> list[Callable[..., Awaitable[None]]]:
    def make() -> Callable[..., Awaitable[None]]:
        async def receiver(sender: Any, **kwargs: Any) -> None:
            return None

        return receiver

    return [make() for _ in range(3)]


def _timed(app: Starlette, scope: Scope) -> Callable[[int], Awaitable[float]]:
    async def run(loops: int) -> float:
        t0 = perf_counter()
        for _ in range(loops):
            # Apps write into the scope (route, path params, asignal's marker): fresh each time.
            await app(dict(scope), _receive, _send)
        return float(perf_counter() - t0)

    return run


def _series(backend: str, profile: str) -> dict[str, Series]:
    make, scope = PROFILES[profile]
    bare, installed, listened, watched = make(), make(), make(), make()
    install(installed)
    install(listened)
    install(watched)
    receivers = _noop_receivers() + _noop_receivers() + _noop_receivers()
    signals.got_background_exception.connect(receivers[6], sender=watched)
    for receiver in receivers[:3]:
        signals.request_started.connect(receiver, sender=listened)
    for receiver in receivers[3:6]:
        signals.request_finished.connect(receiver, sender=listened)
    name = f"{backend}/asgi {profile} request"
    return {
        "bare": Series(f"{name}/bare", _timed(bare, scope)),
        "installed": Series(f"{name}/installed", _timed(installed, scope)),
        "no sends": Series(f"{name}/no sends", _timed(watched, scope), keep=receivers),
        "3 receivers": Series(f"{name}/3 receivers", _timed(listened, scope), keep=receivers),
    }


async def _measure(cfg: Config, backend: str) -> dict[str, dict[str, Series]]:
    series = {profile: _series(backend, profile) for profile in PROFILES}
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
    for variant in VARIANTS:
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
            notes={
                "blinker": "no ASGI integration to compare",
                "django": "no ASGI integration to compare",
            },
            floor_is="the same app, not installed (in-process ASGI call)",
        )
        target = TARGETS.get(variant)
        if target is not None:
            label = f"a/floor≤{1 / target:.3f}"
            row.checks.append(Check(label, row.ratio("floor"), 1 / target))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print requests per second for the three apps and the ratios to the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--smoke", action="store_true", help="tiny counts, figures mean nothing")
    args = parser.parse_args(argv)
    cfg = SMOKE if args.smoke else FULL
    print(
        f"{'backend':<8} {'app':<10} {'variant':<12} {'req/s':>9} {'x bare':>7} {'target':>7}  ok"
    )
    failed = False
    for backend in BACKENDS:
        for profile, series in measure(cfg, backend).items():
            bare = series["bare"].median()
            for name, s in series.items():
                ratio = bare / s.median()
                target = TARGETS.get(name)
                ok = "" if target is None else ("PASS" if ratio >= target else "FAIL")
                failed |= ok == "FAIL"
                shown = "" if target is None else f"≥{target:.2f}"
                print(
                    f"{backend:<8} {profile:<10} {name:<12} {1 / s.median():>9,.0f}"
                    f" {ratio:>7.3f} {shown:>7}  {ok}"
                )
    return 1 if failed and not args.smoke else 0


if __name__ == "__main__":
    raise SystemExit(main())
