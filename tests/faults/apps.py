"""The applications served under faults: FastAPI, Starlette and Quart, with the same routes.

Every response is a pure function of the request (its ``x-req`` id and query), so two
runs of the same requests must give byte-identical responses, whatever receivers do.
Each app is wrapped in :class:`Observed`, an outer ASGI layer that puts the request id in a
context variable (receivers and the log handler read it: receivers see the sender's
context) and notes, on the loop's clock, when the response starts, when its body is
complete and when the ASGI call returns.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asignal.adapters.starlette import install as install_starlette

if TYPE_CHECKING:
    import fastapi
    import quart

#: The id (``x-req`` header) of the request being served, for receivers and log handlers.
REQUEST_ID: ContextVar[int | None] = ContextVar("faults_request_id", default=None)


class Boom(Exception):
    """Raised by /fail and by the background task of /background; nothing handles it."""


def chunk(rid: int, index: int, size: int) -> bytes:
    """Chunk ``index`` of the stream of request ``rid``: ``size`` bytes, known to both
    sides, different for every request and chunk (a mixed-up chunk shows)."""
    stamp = f"{rid}:{index};".encode()
    return (stamp * (size // len(stamp) + 1))[:size]


def _query_int(params: Any, name: str, default: int) -> int:
    value = params.get(name)
    return default if value is None else int(value)


# --- Starlette and FastAPI ---------------------------------------------------------------


def _rid(request: Request) -> str:
    return request.headers.get("x-req", "-")


async def _fail_later() -> None:
    raise Boom("background failed")


async def st_ok(request: Request) -> Response:
    return PlainTextResponse(f"ok {_rid(request)}", headers={"x-req": _rid(request)})


async def st_json(request: Request) -> Response:
    rid = _rid(request)
    return JSONResponse({"rid": rid, "items": list(range(8))}, headers={"x-req": rid})


async def st_missing(request: Request) -> Response:
    raise HTTPException(status_code=404, detail=f"no {_rid(request)}")


async def st_fail(request: Request) -> Response:
    raise Boom(f"view failed {_rid(request)}")


async def st_background(request: Request) -> Response:
    rid = _rid(request)
    return PlainTextResponse(
        f"queued {rid}", headers={"x-req": rid}, background=BackgroundTask(_fail_later)
    )


async def st_stream(request: Request) -> Response:
    rid = int(_rid(request))
    count = _query_int(request.query_params, "n", 4)
    size = _query_int(request.query_params, "size", 512)

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(count):
            yield chunk(rid, index, size)

    return StreamingResponse(
        chunks(), media_type="application/octet-stream", headers={"x-req": str(rid)}
    )


ROUTES = [
    Route("/ok", st_ok),
    Route("/json", st_json),
    Route("/missing", st_missing),
    Route("/fail", st_fail),
    Route("/background", st_background),
    Route("/stream", st_stream),
]


def make_starlette() -> Starlette:
    return Starlette(routes=list(ROUTES))


def make_fastapi() -> fastapi.FastAPI:
    import fastapi  # here: a server process imports only the framework it serves

    app = fastapi.FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    # FastAPI's own routing and dependency machinery in the path, Starlette's responses.
    for route in ROUTES:
        app.add_api_route(route.path, route.endpoint, methods=["GET"], include_in_schema=False)
    return app


# --- Quart --------------------------------------------------------------------------------


def make_quart(*, on_trio: bool = False) -> quart.Quart:
    """The Quart app; ``on_trio``: the same app as a ``quart_trio.QuartTrio``."""
    import quart

    if on_trio:
        from quart_trio import QuartTrio

        app: quart.Quart = QuartTrio("asignal-faults")
    else:
        app = quart.Quart("asignal-faults")

    def rid() -> str:
        return quart.request.headers.get("x-req", "-")

    @app.get("/ok")
    async def ok() -> Any:
        return f"ok {rid()}", 200, {"x-req": rid()}

    @app.get("/json")
    async def json() -> Any:
        return {"rid": rid(), "items": list(range(8))}, 200, {"x-req": rid()}

    @app.get("/missing")
    async def missing() -> Any:
        quart.abort(404)

    @app.get("/fail")
    async def fail() -> Any:
        raise Boom(f"view failed {rid()}")

    @app.get("/background")
    async def background() -> Any:
        app.add_background_task(_fail_later)
        return f"queued {rid()}", 200, {"x-req": rid()}

    @app.get("/stream")
    async def stream() -> Any:
        number = int(rid())
        count = _query_int(quart.request.args, "n", 4)
        size = _query_int(quart.request.args, "size", 512)

        async def chunks() -> AsyncIterator[bytes]:
            for index in range(count):
                yield chunk(number, index, size)

        headers = {"x-req": str(number), "content-type": "application/octet-stream"}
        return chunks(), 200, headers

    return app


# --- the outer layer ----------------------------------------------------------------------


@dataclass
class Times:
    """When one request's ASGI call entered, started its response, completed the body and
    returned (``time.monotonic()`` seconds; ``None`` if it never got there)."""

    entered: float
    started: float | None = None
    body_done: float | None = None
    returned: float | None = None


@dataclass
class Observed:
    """ASGI app serving ``app``; records :class:`Times` per request id in ``times``.

    ``control`` answers ``GET /__control/<what>`` itself (the app never sees those): the
    server process uses it to take measurements between batches of the load.
    """

    app: ASGIApp
    times: dict[int, Times] = field(default_factory=dict)
    control: Callable[[str], bytes] | None = None
    #: Off for the memory runs, where a record per request would be growth of our own.
    keep_times: bool = True
    #: Per request in flight: an event set once its ASGI call has returned.
    returned: dict[int, anyio.Event] = field(default_factory=dict)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if self.control is not None and path.startswith("/__control/"):
            body = self.control(path.removeprefix("/__control/"))
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        rid = next((int(v) for k, v in scope["headers"] if k == b"x-req"), None)
        if rid is None:
            await self.app(scope, receive, send)
            return
        times = Times(time.monotonic())
        if self.keep_times:
            self.times[rid] = times
        returned = self.returned[rid] = anyio.Event()

        async def observed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.start":
                times.started = time.monotonic()
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                times.body_done = time.monotonic()

        token = REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, observed_send)
        finally:
            times.returned = time.monotonic()
            REQUEST_ID.reset(token)
            del self.returned[rid]
            returned.set()


@dataclass
class Held:
    """A plain ASGI middleware with nothing of asignal's in it: each HTTP request waits
    ``seconds`` before ``app`` sees it, as it does behind a receiver that hangs until the
    request's budget is spent. The soak's control run (no receivers): what the server
    does under the same delay and load when asignal plays no part."""

    app: ASGIApp
    seconds: float
    #: CPU seconds each request then burns in the loop, as receivers' work would.
    cpu: float = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await anyio.sleep(self.seconds)
            if self.cpu:
                until = time.process_time() + self.cpu
                while time.process_time() < until:
                    pass
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class AppSpec:
    """One application under test: how to build it, and what serves it on which loop."""

    name: str
    build: Callable[[], Any]
    framework: str  # "starlette" (FastAPI too) or "quart"
    server: str  # "uvicorn" or "hypercorn"
    backend: str  # "asyncio" or "trio"
    #: Whether the server closes a connection once an exception has left the ASGI call
    #: after the response (uvicorn does; Starlette re-raises after its 500 and after a
    #: failing background task). A client that reuses such a connection races that
    #: close with or without receivers, so the load asks for ``Connection: close`` there.
    closes_after_error: bool = False

    def make(
        self, *, timeout: float | None, hold: float = 0.0, cpu: float = 0.0
    ) -> tuple[Any, Observed]:
        """A fresh app with asignal installed, ``timeout`` (seconds, or ``None``) its
        per-request budget, and the wrapper to serve, holding each request ``hold``
        seconds first, then burning ``cpu`` CPU seconds (:class:`Held`), if not 0.
        Returns ``(app, served)``: the app is the sender of every signal."""
        app = self.build()
        if self.framework == "quart":
            from asignal.adapters.quart import install as install_quart

            install_quart(app, timeout=timeout)
        else:
            install_starlette(app, timeout=timeout)
        return app, Observed(Held(app, hold, cpu) if hold or cpu else app)


APPS: dict[str, AppSpec] = {
    spec.name: spec
    for spec in (
        AppSpec("fastapi-uvicorn", make_fastapi, "starlette", "uvicorn", "asyncio", True),
        AppSpec("starlette-uvicorn", make_starlette, "starlette", "uvicorn", "asyncio", True),
        AppSpec("quart-hypercorn", make_quart, "quart", "hypercorn", "asyncio"),
        AppSpec(
            "quart-trio-hypercorn-trio",
            lambda: make_quart(on_trio=True),
            "quart",
            "hypercorn",
            "trio",
        ),
        AppSpec("starlette-hypercorn-trio", make_starlette, "starlette", "hypercorn", "trio"),
    )
}
