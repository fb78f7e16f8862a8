"""A small real Quart application for the adapter tests, and the two ways the tests reach
it: Quart's own test client, and real HTTP/websockets against hypercorn on 127.0.0.1
(``examples/serving.py``) driven by httpx and websockets. Not collected by pytest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import httpx
import pytest
from jinja2 import DictLoader
from quart import Quart, abort, flash, render_template, websocket
from quart.testing.connections import WebsocketDisconnectError
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from examples.serving import serving


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


# --- transports ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Transport(Protocol):
    async def get(self, path: str) -> Reply: ...

    async def raw_get(self, path: str) -> bytes:
        """The whole response as the client receives it (without a Date header, which
        changes every second)."""
        ...

    async def echo(self, path: str, text: str) -> str:
        """Send one websocket message, return the reply."""
        ...

    async def expect_server_close(self, path: str) -> None:
        """Open a websocket and wait until the server closes it."""
        ...


class TestClientTransport:
    """Quart's own test client (the ASGI app in-process, no server)."""

    __test__ = False

    def __init__(self, client: Any) -> None:
        self.client = client

    async def get(self, path: str) -> Reply:
        response = await self.client.get(path)
        headers = [(name.lower(), value) for name, value in response.headers.items()]
        return Reply(response.status_code, headers, await response.get_data())

    async def raw_get(self, path: str) -> bytes:
        # No wire here: the status, header lines and body the ASGI app sent, in order.
        reply = await self.get(path)
        lines = [str(reply.status), *(f"{name}: {value}" for name, value in reply.headers)]
        return "\r\n".join([*lines, "", ""]).encode() + reply.body

    async def echo(self, path: str, text: str) -> str:
        async with self.client.websocket(path) as ws:
            await ws.send(text)
            reply: str = await ws.receive()
            return reply

    async def expect_server_close(self, path: str) -> None:
        async with self.client.websocket(path) as ws:
            with pytest.raises(WebsocketDisconnectError):
                await ws.receive()


class HTTPTransport:
    """httpx and websockets against a server on 127.0.0.1."""

    def __init__(self, port: int, http: httpx.AsyncClient) -> None:
        self.port = port
        self.http = http

    async def get(self, path: str) -> Reply:
        response = await self.http.get(path)
        headers = [(name.decode().lower(), value.decode()) for name, value in response.headers.raw]
        return Reply(response.status_code, headers, response.content)

    async def raw_get(self, path: str) -> bytes:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        chunks = []
        async with await anyio.connect_tcp("127.0.0.1", self.port) as stream:
            await stream.send(request.encode())
            try:
                while True:
                    chunks.append(await stream.receive())
            except anyio.EndOfStream:
                pass
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:")]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    async def echo(self, path: str, text: str) -> str:
        async with ws_connect(f"ws://127.0.0.1:{self.port}{path}") as ws:
            await ws.send(text)
            reply = await ws.recv()
            assert isinstance(reply, str)
            return reply

    async def expect_server_close(self, path: str) -> None:
        async with ws_connect(f"ws://127.0.0.1:{self.port}{path}") as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()


@asynccontextmanager
async def http_transport(app: Quart) -> AsyncIterator[HTTPTransport]:
    """``app`` served by hypercorn (``examples/serving.py``), once its lifespan start-up
    has completed; shut down (lifespan included) at the end of the block."""
    async with (
        serving(app, "hypercorn") as served,
        httpx.AsyncClient(base_url=served.url) as http,
    ):
        yield HTTPTransport(served.port, http)


@asynccontextmanager
async def lifespan_test_client(app: Quart) -> AsyncIterator[TestClientTransport]:
    """Quart's test client inside ``app.test_app()``, which runs the lifespan."""
    async with app.test_app() as test_app:
        yield TestClientTransport(test_app.test_client())


TRANSPORTS: dict[str, Callable[[Quart], AbstractAsyncContextManager[Transport]]] = {
    "test_client": lifespan_test_client,
    "hypercorn": http_transport,
}


#: What one plain request sends, in order.
REQUEST_SIGNALS = [
    "appcontext_pushed",
    "request_started",
    "request_finished",
    "request_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]

#: What one websocket sends, in order.
WEBSOCKET_SIGNALS = [
    "appcontext_pushed",
    "websocket_started",
    "websocket_finished",
    "websocket_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]
