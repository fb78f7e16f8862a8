"""The FastAPI example app, with asignal's (Starlette) adapter installed.

The same routes as :mod:`examples.starlette_app`, written the FastAPI way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from starlette.middleware.sessions import SessionMiddleware

from asignal.adapters.starlette import Jinja2Templates, flash, get_flashed_messages, install

from .signals import user_logged_in

TEMPLATES = Path(__file__).parent / "templates"


class Credentials(BaseModel):
    user: str


def create_app(*, timeout: float | None = 0.3, secret_key: str = "example-only") -> FastAPI:
    """Build the app. ``timeout`` (seconds) bounds every signal send, the adapter's and
    the login route's own."""
    app = FastAPI(title="asignal FastAPI example")
    app.add_middleware(SessionMiddleware, secret_key=secret_key)
    templates = Jinja2Templates(directory=TEMPLATES)

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> Any:
        await flash(request, "Welcome back!", "info")
        messages = get_flashed_messages(request, with_categories=True)
        return templates.TemplateResponse(
            request, "index.html", {"title": "FastAPI example", "messages": messages}
        )

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("the FastAPI example failed on purpose")

    @app.post("/login")
    async def login(credentials: Credentials, request: Request) -> dict[str, str]:
        ip = request.client.host if request.client else "unknown"
        await user_logged_in.send_async(
            app, user=credentials.user, ip=ip, _timeout=timeout, _errors="collect"
        )
        return {"user": credentials.user}

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    install(app, timeout=timeout)
    return app
