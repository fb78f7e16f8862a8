"""The Starlette example app, with asignal's adapter installed.

Routes: ``GET /`` flashes a message and renders a template; ``GET /fail`` raises an
unhandled exception (the client gets a 500); ``POST /login`` with JSON ``{"user": ...}``
sends :data:`examples.signals.user_logged_in`; websocket ``/ws`` echoes one message.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asignal.adapters.starlette import Jinja2Templates, flash, get_flashed_messages, install

from .signals import user_logged_in

TEMPLATES = Path(__file__).parent / "templates"


def create_app(*, timeout: float | None = 0.3, secret_key: str = "example-only") -> Starlette:
    """Build the app. ``timeout`` (seconds) bounds every signal send, the adapter's and
    the login route's own."""
    templates = Jinja2Templates(directory=TEMPLATES)

    async def page(request: Request) -> Response:
        await flash(request, "Welcome back!", "info")
        messages = get_flashed_messages(request, with_categories=True)
        return templates.TemplateResponse(
            request, "index.html", {"title": "Starlette example", "messages": messages}
        )

    async def fail(request: Request) -> Response:
        raise RuntimeError("the Starlette example failed on purpose")

    async def login(request: Request) -> Response:
        user = str((await request.json())["user"])
        ip = request.client.host if request.client else "unknown"
        # An audit failure must not fail the login, hence "collect"; the timeout keeps a
        # slow database from holding the response.
        await user_logged_in.send_async(
            request.app, user=user, ip=ip, _timeout=timeout, _errors="collect"
        )
        return JSONResponse({"user": user})

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/fail", fail),
            Route("/login", login, methods=["POST"]),
            WebSocketRoute("/ws", echo),
        ],
        middleware=[Middleware(SessionMiddleware, secret_key=secret_key)],
    )
    install(app, timeout=timeout)
    return app
