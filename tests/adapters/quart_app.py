"""A small real Quart application for the adapter tests (not collected by pytest)."""

from __future__ import annotations

import asyncio

from jinja2 import DictLoader
from quart import Quart, abort, flash, render_template, websocket


class Boom(RuntimeError):
    """Raised by the views that must fail unhandled."""


def make_app(
    name: str = "asignal-test", *, failing_startup: bool = False, failing_shutdown: bool = False
) -> Quart:
    """Build the test app.

    Routes: ``/`` plain text, ``/missing`` ``abort(404)`` with a registered handler,
    ``/boom`` unhandled :class:`Boom`, ``/template`` renders ``hello.html``, ``/flash``
    flashes, ``/background`` starts a background task that raises once
    ``app.config["BACKGROUND_GATE"]`` (an ``asyncio.Event``) is set, ``/slow`` sets
    ``app.config["SLOW_ENTERED"]`` and never answers; websockets ``/ws``
    (echo one message) and ``/ws-boom`` (accept, then raise).
    ``app.config["STARTED"]`` turns true in ``before_serving``; with ``failing_startup``
    ``before_serving`` raises :class:`Boom` instead, with ``failing_shutdown``
    ``after_serving`` does.
    """
    app = Quart(name)
    app.secret_key = "not-a-secret"
    app.jinja_loader = DictLoader({"hello.html": "Hello {{ name }}!"})
    app.config["STARTED"] = False
    app.config["BACKGROUND_GATE"] = asyncio.Event()
    app.config["SLOW_ENTERED"] = asyncio.Event()

    @app.before_serving
    async def start() -> None:
        if failing_startup:
            raise Boom("startup failed")
        app.config["STARTED"] = True

    @app.after_serving
    async def stop() -> None:
        if failing_shutdown:
            raise Boom("shutdown failed")

    @app.get("/")
    async def index() -> str:
        return "hello"

    @app.errorhandler(404)
    async def not_found(error: Exception) -> tuple[str, int]:
        return "nothing here", 404

    @app.get("/missing")
    async def missing() -> str:
        abort(404)

    @app.get("/boom")
    async def boom() -> str:
        raise Boom("view failed")

    @app.get("/template")
    async def template() -> str:
        return await render_template("hello.html", name="asignal")

    @app.get("/flash")
    async def flashing() -> str:
        await flash("saved", "info")
        return "flashed"

    @app.get("/background")
    async def background() -> str:
        gate: asyncio.Event = app.config["BACKGROUND_GATE"]

        async def fail_later() -> None:
            await gate.wait()
            raise Boom("background failed")

        app.add_background_task(fail_later)
        return "queued"

    @app.get("/slow")
    async def slow() -> str:
        app.config["SLOW_ENTERED"].set()
        await asyncio.Event().wait()
        return "never"

    @app.websocket("/ws")
    async def echo() -> None:
        message = await websocket.receive()
        await websocket.send(message)

    @app.websocket("/ws-boom")
    async def ws_boom() -> None:
        await websocket.accept()
        raise Boom("websocket failed")

    return app
