"""A small real Quart application for the adapter tests, and the two ways the tests reach
it: Quart's own test client, and real HTTP/websockets against hypercorn on 127.0.0.1
(``examples/serving.py``) driven by httpx and httpx-ws. Not collected by pytest.

Quart itself runs on asyncio; on trio the same app is a ``quart_trio.QuartTrio`` (the
Quart extension for trio), served by hypercorn's trio worker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import httpx
import pytest
import sniffio
from httpx_ws import WebSocketDisconnect, aconnect_ws
from jinja2 import DictLoader
from quart import Quart, abort, flash, render_template, websocket
from quart.testing.connections import WebsocketDisconnectError

from examples.serving import serving


class Boom(RuntimeError):
    """Raised by the views that must fail unhandled."""


class Gate:
    """An ``anyio.Event`` made on first use, so that the app can be built outside an event
    loop (and on either backend)."""

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    @property
    def event(self) -> anyio.Event:
        if self._event is None:
            self._event = anyio.Event()
        return self._event

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self._event is not None and self._event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


def app_class() -> type[Quart]:
    """``Quart``, or ``QuartTrio`` when called on trio."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return Quart
    if library == "trio":
        from quart_trio import QuartTrio

        return QuartTrio
    return Quart


def make_app(
    name: str = "asignal-test", *, failing_startup: bool = False, failing_shutdown: bool = False
) -> Quart:
    """Build the test app (a ``QuartTrio`` when built on trio).

    Routes: ``/`` plain text, ``/missing`` ``abort(404)`` with a registered handler,
    ``/boom`` unhandled :class:`Boom`, ``/template`` renders ``hello.html``, ``/flash``
    flashes, ``/background`` starts a background task that raises once
    ``app.config["BACKGROUND_GATE"]`` (a :class:`Gate`) is set, ``/slow`` sets
    ``app.config["SLOW_ENTERED"]`` and never answers; websockets ``/ws``
    (echo one message) and ``/ws-boom`` (accept, then raise).
    ``app.config["STARTED"]`` turns true in ``before_serving``; with ``failing_startup``
    ``before_serving`` raises :class:`Boom` instead, with ``failing_shutdown``
    ``after_serving`` does.
    """
    app = app_class()(name)
    app.secret_key = "not-a-secret"
    app.jinja_loader = DictLoader({"hello.html": "Hello {{ name }}!"})
    app.config["STARTED"] = False
    app.config["BACKGROUND_GATE"] = Gate()
    app.config["SLOW_ENTERED"] = Gate()

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
        gate: Gate = app.config["BACKGROUND_GATE"]

        async def fail_later() -> None:
            await gate.wait()
            raise Boom("background failed")

        app.add_background_task(fail_later)
        return "queued"

    @app.get("/slow")
    async def slow() -> str:
        app.config["SLOW_ENTERED"].set()
        await anyio.sleep_forever()
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
        data = b""
        async with await anyio.connect_tcp("127.0.0.1", self.port) as stream:
            await stream.send(request.encode())
            # Read up to the end of the body that Content-Length announces: hypercorn's
            # trio worker keeps the socket open after "Connection: close" until the
            # client closes it.
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            [length] = [
                int(line.partition(b":")[2])
                for line in lines
                if line.lower().startswith(b"content-length:")
            ]
            while len(body) < length:
                body += await stream.receive()
        kept = [line for line in lines if not line.lower().startswith(b"date:")]
        return b"\r\n".join(kept) + b"\r\n\r\n" + body

    async def echo(self, path: str, text: str) -> str:
        async with aconnect_ws(path, self.http) as ws:
            await ws.send_text(text)
            return await ws.receive_text()

    async def expect_server_close(self, path: str) -> None:
        async with aconnect_ws(path, self.http) as ws:
            with pytest.raises(WebSocketDisconnect):
                await ws.receive_text()


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

#: What an app context outside any request sends (serving, background work).
SERVING_APP_CONTEXT = ["appcontext_pushed", "appcontext_tearing_down", "appcontext_popped"]
