"""Real Starlette and FastAPI apps for tests/adapters/test_starlette.py (not collected).

Nothing here installs asignal: each test installs the app it builds, with the options it
is about, so every test gets fresh apps and installations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import fastapi
import jinja2
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from asignal.adapters.starlette import Jinja2Templates, flash

TEMPLATES = {
    "page.html": "<p>Hello {{ name }}</p>",
    "flashes.html": (
        "{% for category, message in get_flashed_messages(with_categories=true) %}"
        "{{ category }}:{{ message }};{% endfor %}"
    ),
}

templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES)))

STREAM_CHUNKS = (b"one,", b"two,", b"three")


class Teapot(Exception):
    """Raised by /handled; the app registers a handler for it."""


class Boom(Exception):
    """Raised by /boom and friends; nothing handles it."""


async def plain(request: Request) -> Response:
    return PlainTextResponse("hello", headers={"x-demo": "1"})


async def missing(request: Request) -> Response:
    raise HTTPException(status_code=404, detail="no such thing")


async def handled(request: Request) -> Response:
    raise Teapot("short and stout")


async def teapot_handler(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("I'm a teapot", status_code=418)


async def boom(request: Request) -> Response:
    raise Boom("unhandled")


async def page(request: Request) -> Response:
    return templates.TemplateResponse(request, "page.html", {"name": "world"})


async def do_flash(request: Request) -> Response:
    await flash(request, "saved", "info")
    await flash(request, "plain")
    return PlainTextResponse("flashed")


async def session_flashes(request: Request) -> Response:
    return JSONResponse(request.session.get("_flashes"))


async def show_flashes(request: Request) -> Response:
    return templates.TemplateResponse(request, "flashes.html")


async def fail_in_background() -> None:
    raise Boom("background failed")


async def background(request: Request) -> Response:
    return PlainTextResponse("queued", background=BackgroundTask(fail_in_background))


async def stream(request: Request) -> Response:
    gate: Callable[[int], Awaitable[None]] = request.app.state.stream_gate

    async def chunks() -> AsyncIterator[bytes]:
        for index, chunk in enumerate(STREAM_CHUNKS):
            yield chunk
            await gate(index)

    return StreamingResponse(chunks(), media_type="text/plain")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"echo:{text}")
    await websocket.close()


async def websocket_boom(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise Boom("websocket failed")


async def websocket_leaves(websocket: WebSocket) -> None:
    """Reads until the client goes away: Starlette raises WebSocketDisconnect."""
    await websocket.accept()
    while True:
        text = await websocket.receive_text()
        await websocket.send_text(f"echo:{text}")


async def sub_plain(request: Request) -> Response:
    return PlainTextResponse("sub")


async def sub_boom(request: Request) -> Response:
    raise Boom("sub unhandled")


async def no_gate(index: int) -> None:
    return None


def make_sub_app() -> Starlette:
    return Starlette(routes=[Route("/plain", sub_plain), Route("/boom", sub_boom)])


def make_app(
    *,
    fail_startup: bool = False,
    fail_shutdown: bool = False,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """A Starlette app with one route per test case, a mounted sub-app at /sub (its
    instance is ``app.state.sub``), sessions (plus ``middleware``), and a lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if fail_startup:
            raise Boom("startup failed")
        app.state.serving = True
        yield
        if fail_shutdown:
            raise Boom("shutdown failed")

    sub = make_sub_app()
    app = Starlette(
        routes=[
            Route("/plain", plain),
            Route("/missing", missing),
            Route("/handled", handled),
            Route("/boom", boom),
            Route("/page", page),
            Route("/flash", do_flash, methods=["POST"]),
            Route("/session", session_flashes),
            Route("/flashes", show_flashes),
            Route("/background", background),
            Route("/stream", stream),
            WebSocketRoute("/ws", echo),
            WebSocketRoute("/ws-boom", websocket_boom),
            WebSocketRoute("/ws-leave", websocket_leaves),
            Mount("/sub", app=sub),
        ],
        middleware=[Middleware(SessionMiddleware, secret_key="not-a-secret"), *middleware],
        exception_handlers={Teapot: teapot_handler},
        lifespan=lifespan,
    )
    app.state.sub = sub
    app.state.stream_gate = no_gate
    return app


def make_fastapi_app(*, middleware: Sequence[Middleware] = ()) -> fastapi.FastAPI:
    app = fastapi.FastAPI(middleware=list(middleware))
    items = {"a": "apple"}

    @app.get("/items/{item_id}")
    async def read_item(item_id: str) -> dict[str, Any]:
        if item_id not in items:
            raise fastapi.HTTPException(status_code=404, detail="Item not found")
        return {"item": items[item_id]}

    @app.get("/fail")
    async def fail() -> dict[str, Any]:
        raise ValueError("bad value")

    return app
