"""How the Starlette adapter's tests reach an app (not collected).

Every transport case runs through:

- ``asgi``: httpx with httpx-ws's ``ASGIWebSocketTransport`` (HTTP and websockets
  in-process), the lifespan driven by asgi-lifespan's ``LifespanManager``;
- ``testclient``: Starlette's ``TestClient`` (its own event loop in a thread);
- ``uvicorn``: real HTTP/websockets against uvicorn on 127.0.0.1 (asyncio only);
- ``hypercorn``: the same against hypercorn, on asyncio and on trio.

The servers come from :mod:`examples.serving`, the project's one start/stop helper.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from httpx_ws import WebSocketDisconnect as ClientWebSocketDisconnect
from httpx_ws import WebSocketNetworkError, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.types import Message, Scope
from starlette.websockets import WebSocketDisconnect

from asignal import ANY, NamedSignal
from examples.serving import ServingError, serving

from . import recording
from .recording import GUARD
from .starlette_apps import Boom

with warnings.catch_warnings():
    # Starlette 1.x nudges TestClient users from httpx towards httpx2; both work here.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

LIFESPAN = {"serving_started", "serving_stopped", "got_serving_exception"}
HTTP_ORDER = [
    "appcontext_pushed",
    "request_started",
    "request_finished",
    "request_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]
#: An unhandled exception: reported before the 500, the teardown after it.
HTTP_500_ORDER = [
    "appcontext_pushed",
    "request_started",
    "got_request_exception",
    "request_finished",
    "request_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]


def http_scope(path: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }


async def receive_nothing() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def call(app: Any, path: str = "/plain") -> list[Message]:
    """Call ``app`` in-process for one GET of ``path``: the messages it sends."""
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    await app(http_scope(path), receive_nothing, send)
    return messages


async def send_nowhere(message: Message) -> None:
    pass


class Recorder(recording.Recorder):
    """Records with coroutine receivers; ``names()`` leaves the lifespan out unless asked."""

    def names(self, *, lifespan: bool = False) -> list[str]:
        return [s.name for s in self.seen if lifespan or s.name not in LIFESPAN]

    async def settled(self, connections: int = 1) -> None:
        """Wait until ``connections`` connections have ended (``appcontext_popped``).

        Over real HTTP the client can see the response before the server's teardown,
        and after a 500 the teardown runs on the app's background runner."""
        await self.wait_for("appcontext_popped", connections)


@contextlib.contextmanager
def recording(sender: Any) -> Iterator[Recorder]:
    recorder = Recorder(sender)
    recorder.connect()
    try:
        yield recorder
    finally:
        recorder.disconnect()


@contextlib.contextmanager
def connected(
    sig: NamedSignal, receiver: Callable[..., Any], sender: Any = ANY, **options: Any
) -> Iterator[None]:
    sig.connect(receiver, sender=sender, weak=False, **options)
    try:
        yield
    finally:
        sig.disconnect(receiver, sender=sender)


class Reply(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def reply_of(response: httpx.Response) -> Reply:
    headers = [(k.decode().lower(), v.decode()) for k, v in response.headers.raw]
    return Reply(response.status_code, headers, response.content)


def without_date(reply: Reply) -> Reply:
    # A server's date header can tick between two requests.
    return reply._replace(headers=[h for h in reply.headers if h[0] != "date"])


class Client(Protocol):
    async def request(self, method: str, path: str) -> Reply: ...

    async def websocket(self, path: str, text: str) -> str | None:
        """Connect, send ``text``, return the first text reply (``None`` if the socket
        closed first), then close."""
        ...


class StartupFailed(Exception):
    """The transport reported a failed lifespan start-up."""


@dataclass
class HttpxClient:
    """httpx for HTTP, httpx-ws for websockets, in-process or over the network."""

    client: httpx.AsyncClient

    async def request(self, method: str, path: str) -> Reply:
        with anyio.fail_after(GUARD):
            return reply_of(await self.client.request(method, path))

    async def websocket(self, path: str, text: str) -> str | None:
        reply: str | None = None
        with anyio.fail_after(GUARD):
            # httpx-ws raises from its own task group: the server's close (or a dropped
            # connection) arrives in an ExceptionGroup.
            try:
                async with aconnect_ws(path, self.client) as session:
                    await session.send_text(text)
                    reply = await session.receive_text()
            except* (ClientWebSocketDisconnect, WebSocketNetworkError):
                pass
        return reply


@asynccontextmanager
async def serve_asgi(app: Any, backend: str) -> AsyncIterator[Client]:
    transport = ASGIWebSocketTransport(app, raise_app_exceptions=False)
    manager = LifespanManager(app)
    # The manager re-raises the app's failure, on trio from inside a nursery.
    try:
        await manager.__aenter__()
    except* Boom as failed:
        raise StartupFailed from failed
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield HttpxClient(client)
    finally:
        # A failing shutdown is re-raised too; the tests check the signal.
        try:
            await manager.__aexit__(None, None, None)
        except* Boom:
            pass


@dataclass
class ThreadedTestClient:
    client: TestClient

    async def request(self, method: str, path: str) -> Reply:
        response = await anyio.to_thread.run_sync(self.client.request, method, path)
        return reply_of(response)

    async def websocket(self, path: str, text: str) -> str | None:
        def exchange() -> str | None:
            reply = None
            # The TestClient re-raises what the app raised once the session closes.
            with (
                contextlib.suppress(Boom, WebSocketDisconnect),
                self.client.websocket_connect(path) as session,
            ):
                session.send_text(text)
                reply = session.receive_text()
            return reply

        return await anyio.to_thread.run_sync(exchange)


@asynccontextmanager
async def serve_testclient(app: Any, backend: str) -> AsyncIterator[Client]:
    client = TestClient(app, backend=backend, raise_server_exceptions=False)  # type: ignore[arg-type]
    try:
        await anyio.to_thread.run_sync(client.__enter__)
    except Boom as error:
        raise StartupFailed from error
    try:
        yield ThreadedTestClient(client)
    finally:
        with contextlib.suppress(Boom):
            await anyio.to_thread.run_sync(client.__exit__, None, None, None)


def server_transport(kind: str) -> Callable[[Any, str], AbstractAsyncContextManager[Client]]:
    @asynccontextmanager
    async def serve_http(app: Any, backend: str) -> AsyncIterator[Client]:
        entered = False
        try:
            async with serving(app, kind) as served:  # type: ignore[arg-type]
                entered = True
                # One connection, kept alive: what one browser tab does.
                limits = httpx.Limits(max_connections=1)
                async with httpx.AsyncClient(base_url=served.url, limits=limits) as client:
                    yield HttpxClient(client)
        except ServingError as error:
            if entered:
                raise
            raise StartupFailed from error

    return serve_http


SERVERS: dict[str, Callable[[Any, str], AbstractAsyncContextManager[Client]]] = {
    "asgi": serve_asgi,
    "testclient": serve_testclient,
    "uvicorn": server_transport("uvicorn"),
    "hypercorn": server_transport("hypercorn"),
}

# Overrides the anyio_backend fixture of tests/conftest.py: uvicorn serves on asyncio only.
over_transports = pytest.mark.parametrize(
    ("transport", "anyio_backend"),
    [
        ("asgi", "asyncio"),
        ("asgi", "trio"),
        ("testclient", "asyncio"),
        ("testclient", "trio"),
        ("uvicorn", "asyncio"),
        ("hypercorn", "asyncio"),
        ("hypercorn", "trio"),
    ],
    ids=[
        "asgi-asyncio",
        "asgi-trio",
        "testclient-asyncio",
        "testclient-trio",
        "uvicorn",
        "hypercorn-asyncio",
        "hypercorn-trio",
    ],
)
#: The real servers only.
over_servers = pytest.mark.parametrize(
    ("transport", "anyio_backend"),
    [("uvicorn", "asyncio"), ("hypercorn", "asyncio"), ("hypercorn", "trio")],
    ids=["uvicorn", "hypercorn-asyncio", "hypercorn-trio"],
)

Serve = Callable[[Any], AbstractAsyncContextManager[Client]]


def serve_over(transport: str, anyio_backend: str) -> Serve:
    """What a test module's ``serve`` fixture returns: starts ``app`` on ``transport``."""

    def start(app: Any) -> AbstractAsyncContextManager[Client]:
        return SERVERS[transport](app, anyio_backend)

    return start
