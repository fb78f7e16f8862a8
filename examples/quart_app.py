"""The Quart example app, with asignal's adapter installed.

The same routes as :mod:`examples.starlette_app`, with Quart's own ``flash`` and
``render_template``: the adapter turns Quart's lifecycle into :mod:`asignal.signals`.
"""

from __future__ import annotations

from pathlib import Path

from quart import (
    Quart,
    flash,
    get_flashed_messages,
    render_template,
    request,
    websocket,
)

from asignal.adapters.quart import install

from .signals import user_logged_in

TEMPLATES = Path(__file__).parent / "templates"


def create_app(*, timeout: float | None = 0.3, secret_key: str = "example-only") -> Quart:
    """Build the app. ``timeout`` (seconds) bounds every signal send, the adapter's and
    the login route's own."""
    app = Quart(__name__, template_folder=str(TEMPLATES))
    app.secret_key = secret_key

    @app.get("/")
    async def page() -> str:
        await flash("Welcome back!", "info")
        messages = get_flashed_messages(with_categories=True)
        return await render_template("index.html", title="Quart example", messages=messages)

    @app.get("/fail")
    async def fail() -> str:
        raise RuntimeError("the Quart example failed on purpose")

    @app.post("/login")
    async def login() -> dict[str, str]:
        user = str((await request.get_json())["user"])
        await user_logged_in.send_async(
            app, user=user, ip=request.remote_addr, _timeout=timeout, _errors="collect"
        )
        return {"user": user}

    @app.websocket("/ws")
    async def echo() -> None:
        await websocket.send(await websocket.receive())

    install(app, timeout=timeout)
    return app
