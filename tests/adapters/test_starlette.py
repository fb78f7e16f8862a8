"""asignal.adapters.starlette on real Starlette and FastAPI apps.

Every case runs through three transports: httpx's ``ASGITransport`` (lifespan driven by
``run_lifespan`` below), Starlette's ``TestClient`` (its own event loop in a thread), and
real HTTP/websockets against uvicorn serving on 127.0.0.1. The in-process transports run
on asyncio and trio; uvicorn serves on asyncio only.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import anyio
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from asignal import ANY, NamedSignal, signals
from asignal.adapters.starlette import (
    ResponseInfo,
    SignalMiddleware,
    StarletteIntegration,
    flash,
    get_flashed_messages,
    install,
)

from . import recording
from .recording import GUARD, SIGNALS
from .starlette_apps import STREAM_CHUNKS, Boom, make_app, make_fastapi_app

with warnings.catch_warnings():
    # Starlette 1.x nudges TestClient users from httpx towards httpx2; both work here.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.anyio

LIFESPAN = {"serving_started", "serving_stopped", "got_serving_exception"}
HTTP_ORDER = [
    "appcontext_pushed",
    "request_started",
    "request_finished",
    "request_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]


# --- recording ----------------------------------------------------------------------------


class Recorder(recording.Recorder):
    """Records with coroutine receivers; ``names()`` leaves the lifespan out unless asked."""

    def names(self, *, lifespan: bool = False) -> list[str]:
        return [s.name for s in self.seen if lifespan or s.name not in LIFESPAN]

    async def settled(self, connections: int = 1) -> None:
        """Wait until ``connections`` connections have ended (``appcontext_popped``).

        In-process transports return after the app call ends, so this returns at once;
        over real HTTP the client can see the response before the server's teardown."""
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
def connected(sig: NamedSignal, receiver: Callable[..., Any], sender: Any = ANY) -> Iterator[None]:
    sig.connect(receiver, sender=sender, weak=False)
    try:
        yield
    finally:
        sig.disconnect(receiver, sender=sender)


# --- transports ---------------------------------------------------------------------------


class Reply(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Client(Protocol):
    async def request(self, method: str, path: str) -> Reply: ...

    async def websocket(self, path: str, text: str) -> str | None:
        """Connect, send ``text``, return the first text reply (``None`` if the socket
        closed first), then close and wait for the server side to end if it can."""
        ...


class StartupFailed(Exception):
    """The transport's server reported a failed lifespan startup."""


def _reply(response: httpx.Response) -> Reply:
    headers = [(k.decode().lower(), v.decode()) for k, v in response.headers.raw]
    return Reply(response.status_code, headers, response.content)


@asynccontextmanager
async def run_lifespan(app: Any) -> AsyncIterator[None]:
    """Drive the ASGI lifespan protocol as a server does (asgi-lifespan's job)."""
    to_app, app_inbox = anyio.create_memory_object_stream[Message](4)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](4)
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    async def run() -> None:
        # A failing app raises after reporting the failure in a message; servers log it.
        with app_outbox, contextlib.suppress(Exception):
            await app(scope, app_inbox.receive, app_outbox.send)

    async with to_app, app_inbox, from_app, anyio.create_task_group() as tasks:
        tasks.start_soon(run)
        await to_app.send({"type": "lifespan.startup"})
        started = await from_app.receive()
        if started["type"] == "lifespan.startup.failed":
            failed = True
        else:
            failed = False
            try:
                yield
            finally:
                await to_app.send({"type": "lifespan.shutdown"})
                await from_app.receive()
    if failed:
        raise StartupFailed


async def asgi_websocket(app: Any, path: str, text: str) -> str | None:
    """A websocket client speaking ASGI to ``app`` in-process (httpx has none)."""
    to_app, app_inbox = anyio.create_memory_object_stream[Message](8)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](8)
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "state": {},
    }
    reply: str | None = None

    async def run() -> None:
        with app_outbox, contextlib.suppress(Exception):
            await app(scope, app_inbox.receive, app_outbox.send)

    async with to_app, app_inbox, from_app, anyio.create_task_group() as tasks:
        tasks.start_soon(run)
        await to_app.send({"type": "websocket.connect"})
        accepted = await from_app.receive()
        assert accepted["type"] == "websocket.accept"
        await to_app.send({"type": "websocket.receive", "text": text})
        async for message in from_app:
            if message["type"] == "websocket.send":
                reply = message["text"]
            break
        await to_app.send({"type": "websocket.disconnect", "code": 1000})
        async for _ in from_app:  # until the app returns
            pass
    return reply


@dataclass
class HttpxClient:
    client: httpx.AsyncClient
    ws: Callable[[str, str], Awaitable[str | None]]

    async def request(self, method: str, path: str) -> Reply:
        with anyio.fail_after(GUARD):
            return _reply(await self.client.request(method, path))

    async def websocket(self, path: str, text: str) -> str | None:
        with anyio.fail_after(GUARD):
            return await self.ws(path, text)


@asynccontextmanager
async def serve_asgi(app: Any, backend: str) -> AsyncIterator[Client]:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with (
        run_lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):

        async def websocket(path: str, text: str) -> str | None:
            return await asgi_websocket(app, path, text)

        yield HttpxClient(client, websocket)


@dataclass
class ThreadedTestClient:
    client: TestClient

    async def request(self, method: str, path: str) -> Reply:
        response = await anyio.to_thread.run_sync(self.client.request, method, path)
        return _reply(response)

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
        # A failing shutdown is re-raised by the TestClient; the tests check the signal.
        with contextlib.suppress(Boom):
            await anyio.to_thread.run_sync(client.__exit__, None, None, None)


class _Server(uvicorn.Server):
    """uvicorn's server, with a startup that can be awaited and fails without exiting."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = anyio.Event()
        self.startup_failed = False

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Tests must not take over the process's SIGINT/SIGTERM handlers.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        except SystemExit:
            # uvicorn exits the process when the lifespan startup fails.
            self.startup_failed = True
            self.should_exit = True
        finally:
            self.startup_done.set()


@dataclass
class UvicornClient:
    client: httpx.AsyncClient
    port: int

    async def request(self, method: str, path: str) -> Reply:
        with anyio.fail_after(GUARD):
            return _reply(await self.client.request(method, path))

    async def websocket(self, path: str, text: str) -> str | None:
        with anyio.fail_after(GUARD):
            async with ws_connect(f"ws://127.0.0.1:{self.port}{path}") as session:
                await session.send(text)
                try:
                    reply = await session.recv()
                except ConnectionClosed:
                    return None
            assert isinstance(reply, str)
            return reply


@asynccontextmanager
async def serve_uvicorn(app: Any, backend: str) -> AsyncIterator[Client]:
    assert backend == "asyncio", "uvicorn serves on asyncio"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, lifespan="on", log_level="critical"))
    with sock:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.serve, [sock])
            with anyio.fail_after(GUARD):
                await server.startup_done.wait()
            if not server.startup_failed:
                try:
                    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                        yield UvicornClient(client, port)
                finally:
                    server.should_exit = True
    if server.startup_failed:
        raise StartupFailed


SERVERS: dict[str, Callable[[Any, str], AbstractAsyncContextManager[Client]]] = {
    "asgi": serve_asgi,
    "testclient": serve_testclient,
    "uvicorn": serve_uvicorn,
}

# Overrides the anyio_backend fixture of tests/conftest.py for these tests: uvicorn runs
# on asyncio only, so it gets no trio combination.
over_transports = pytest.mark.parametrize(
    ("transport", "anyio_backend"),
    [
        ("asgi", "asyncio"),
        ("asgi", "trio"),
        ("testclient", "asyncio"),
        ("testclient", "trio"),
        ("uvicorn", "asyncio"),
    ],
    ids=["asgi-asyncio", "asgi-trio", "testclient-asyncio", "testclient-trio", "uvicorn"],
)


@pytest.fixture
def serve(
    transport: str, anyio_backend: str
) -> Callable[[Any], AbstractAsyncContextManager[Client]]:
    def start(app: Any) -> AbstractAsyncContextManager[Client]:
        return SERVERS[transport](app, anyio_backend)

    return start


Serve = Callable[[Any], AbstractAsyncContextManager[Client]]


def without_date(reply: Reply) -> Reply:
    # uvicorn's date header can tick between two requests.
    return reply._replace(headers=[h for h in reply.headers if h[0] != "date"])


# --- 1. a plain request -------------------------------------------------------------------


@over_transports
async def test_plain_request_sends_flask_order(serve: Serve) -> None:
    app = make_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            reply = await client.request("GET", "/plain")
            await rec.settled()

    assert (reply.status, reply.body) == (200, b"hello")
    assert rec.names() == HTTP_ORDER
    assert all(seen.sender is app for seen in rec.seen)
    request = rec.one("request_started").kwargs["request"]
    assert isinstance(request, Request)
    assert request.url.path == "/plain"
    assert rec.one("appcontext_pushed").kwargs == {"request": request}
    finished = rec.one("request_finished").kwargs
    assert finished["request"] is request
    response = finished["response"]
    assert isinstance(response, ResponseInfo)
    assert response.status_code == 200
    assert isinstance(response.headers, Headers)
    assert response.headers["x-demo"] == "1"
    assert rec.one("request_tearing_down").kwargs == {"request": request, "exc": None}
    assert rec.one("appcontext_tearing_down").kwargs == {"exc": None}
    assert rec.one("appcontext_popped").kwargs == {}


# --- 2. handled errors --------------------------------------------------------------------


@over_transports
@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/handled", 418)])
async def test_handled_error_is_not_reported(serve: Serve, path: str, status: int) -> None:
    app = make_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            reply = await client.request("GET", path)
            await rec.settled()

    assert reply.status == status
    assert rec.names() == HTTP_ORDER
    assert rec.one("request_finished").kwargs["response"].status_code == status


# --- 3. an unhandled exception ------------------------------------------------------------


@over_transports
async def test_unhandled_exception_is_reported_before_the_500(serve: Serve) -> None:
    app = make_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            reply = await client.request("GET", "/boom")
            await rec.settled()

    assert (reply.status, reply.body) == (500, b"Internal Server Error")
    assert rec.names() == [
        "appcontext_pushed",
        "request_started",
        "got_request_exception",
        "request_finished",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]
    error = rec.one("got_request_exception").kwargs["exception"]
    assert isinstance(error, Boom)
    assert rec.one("got_request_exception").kwargs["request"].url.path == "/boom"
    assert rec.one("request_finished").kwargs["response"].status_code == 500
    assert rec.one("request_tearing_down").kwargs["exc"] is error
    assert rec.one("appcontext_tearing_down").kwargs["exc"] is error


# --- 4. templates -------------------------------------------------------------------------


@over_transports
async def test_template_signals_carry_template_and_context(serve: Serve) -> None:
    app = make_app()
    install(app)

    async def rename(sender: Any, *, template: Any, context: dict[str, Any], **extra: Any) -> None:
        context["name"] = "signals"

    with recording(app) as rec, connected(signals.before_render_template, rename, app):
        async with serve(app) as client:
            reply = await client.request("GET", "/page")
            await rec.settled()

    # The template renders after before_render_template, so receivers can change context.
    assert (reply.status, reply.body) == (200, b"<p>Hello signals</p>")
    assert ("content-length", str(len(reply.body))) in reply.headers
    assert rec.names() == [
        "appcontext_pushed",
        "request_started",
        "before_render_template",
        "template_rendered",
        "request_finished",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]
    before = rec.one("before_render_template").kwargs
    rendered = rec.one("template_rendered").kwargs
    assert before["template"].name == "page.html"
    assert rendered["template"] is before["template"]
    assert rendered["context"]["name"] == "signals"
    assert isinstance(rendered["context"]["request"], Request)


# --- 5. flash -----------------------------------------------------------------------------


@over_transports
async def test_flash_is_sent_and_stored_in_flasks_layout(serve: Serve) -> None:
    app = make_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            flashed = await client.request("POST", "/flash")
            stored = await client.request("GET", "/session")
            shown = await client.request("GET", "/flashes")
            shown_again = await client.request("GET", "/flashes")
            await rec.settled(4)

    assert flashed.status == 200
    flashes = [s.kwargs for s in rec.seen if s.name == "message_flashed"]
    assert flashes == [
        {"message": "saved", "category": "info"},
        {"message": "plain", "category": "message"},
    ]
    assert stored.body == b'[["info","saved"],["message","plain"]]'
    assert shown.body == b"info:saved;message:plain;"
    assert shown_again.body == b""


async def test_get_flashed_messages_filters_and_caches_per_request() -> None:
    app = make_app()
    install(app)
    scope = {"type": "http", "session": {"_flashes": [["info", "a"], ["error", "b"]]}}
    request = Request(scope)
    assert get_flashed_messages(request, category_filter=["error"]) == ["b"]
    # Popped from the session by the first call, still readable within the request.
    assert "_flashes" not in request.session
    assert get_flashed_messages(request, with_categories=True) == [("info", "a"), ("error", "b")]
    await flash(request, "c", "warning")
    assert request.session["_flashes"] == [["warning", "c"]]


# --- 6. websockets ------------------------------------------------------------------------


WEBSOCKET_ORDER = [
    "appcontext_pushed",
    "websocket_started",
    "websocket_finished",
    "websocket_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]


@over_transports
@pytest.mark.parametrize("path", ["/ws", "/ws-leave"], ids=["server-closes", "client-leaves"])
async def test_websocket_round_trip(serve: Serve, path: str) -> None:
    app = make_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            reply = await client.websocket(path, "hi")
            await rec.settled()

    assert reply == "echo:hi"
    # A client that goes away (WebSocketDisconnect in the app) is not an exception.
    assert rec.names() == WEBSOCKET_ORDER
    websocket = rec.one("websocket_started").kwargs["websocket"]
    assert isinstance(websocket, WebSocket)
    assert websocket.url.path == path
    assert rec.one("appcontext_pushed").kwargs == {"request": websocket}
    assert rec.one("websocket_finished").kwargs == {"websocket": websocket, "response": None}
    assert rec.one("websocket_tearing_down").kwargs == {"websocket": websocket, "exc": None}


@over_transports
async def test_websocket_exception_is_reported(serve: Serve) -> None:
    app = make_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            reply = await client.websocket("/ws-boom", "hi")
            await rec.settled()

    assert reply is None
    assert rec.names() == [
        "appcontext_pushed",
        "websocket_started",
        "got_websocket_exception",
        "websocket_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]
    error = rec.one("got_websocket_exception").kwargs["exception"]
    assert isinstance(error, Boom)
    assert rec.one("websocket_tearing_down").kwargs["exc"] is error


# --- 7. background tasks ------------------------------------------------------------------


@over_transports
async def test_failing_background_task_is_reported(serve: Serve) -> None:
    app = make_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            reply = await client.request("GET", "/background")
            await rec.settled()

    assert (reply.status, reply.body) == (200, b"queued")
    assert rec.names() == [
        "appcontext_pushed",
        "request_started",
        "request_finished",
        "got_background_exception",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]
    error = rec.one("got_background_exception").kwargs["exception"]
    assert isinstance(error, Boom)
    assert str(error) == "background failed"
    assert rec.one("request_tearing_down").kwargs["exc"] is error


# --- 8. lifespan --------------------------------------------------------------------------


@over_transports
async def test_lifespan_sends_serving_started_and_stopped(serve: Serve) -> None:
    app = make_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            assert rec.names(lifespan=True) == ["serving_started"]
            await client.request("GET", "/plain")
            await rec.settled()
        assert rec.names(lifespan=True) == ["serving_started", *HTTP_ORDER, "serving_stopped"]
    assert rec.one("serving_started").kwargs == {}
    assert rec.one("serving_stopped").kwargs == {}


@over_transports
async def test_failing_startup_is_reported_and_still_fails(serve: Serve) -> None:
    app = make_app(fail_startup=True)
    install(app)
    with recording(app) as rec, pytest.raises(StartupFailed):
        async with serve(app):
            pass
    assert rec.names(lifespan=True) == ["got_serving_exception"]
    error = rec.one("got_serving_exception").kwargs["exception"]
    assert isinstance(error, Boom)
    assert str(error) == "startup failed"


@over_transports
async def test_failing_shutdown_is_reported(serve: Serve) -> None:
    app = make_app(fail_shutdown=True)
    install(app)
    with recording(app) as rec:
        async with serve(app):
            pass
    assert rec.names(lifespan=True) == ["serving_started", "got_serving_exception"]
    assert str(rec.one("got_serving_exception").kwargs["exception"]) == "shutdown failed"


# --- 9. concurrency -----------------------------------------------------------------------


class Rendezvous:
    """Lets ``parties`` receivers pass only once all of them have arrived. The event is
    created by the first arrival, in whatever event loop runs the receivers."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.passed = 0
        self._all_here: anyio.Event | None = None

    async def arrive(self) -> None:
        if self._all_here is None:
            self._all_here = anyio.Event()
        self.arrived += 1
        if self.arrived == self.parties:
            self._all_here.set()
        await self._all_here.wait()
        self.passed += 1


@over_transports
async def test_receivers_run_concurrently(serve: Serve) -> None:
    app = make_app()
    # Sequential dispatch would leave the first receiver waiting until the timeout.
    install(app, timeout=GUARD)
    rendezvous = Rendezvous(3)

    async def first(sender: Any, **extra: Any) -> None:
        await rendezvous.arrive()

    async def second(sender: Any, **extra: Any) -> None:
        await rendezvous.arrive()

    async def third(sender: Any, **extra: Any) -> None:
        await rendezvous.arrive()

    with (
        connected(signals.request_finished, first, app),
        connected(signals.request_finished, second, app),
        connected(signals.request_finished, third, app),
    ):
        async with serve(app) as client:
            reply = await client.request("GET", "/plain")

    assert reply.status == 200
    assert rendezvous.passed == 3


# --- 10. failing and hanging receivers ----------------------------------------------------


@over_transports
@pytest.mark.parametrize("path", ["/plain", "/page", "/boom"])
async def test_raising_receiver_leaves_response_identical(
    serve: Serve, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    install(app)

    async def broken_receiver(sender: Any, **extra: Any) -> None:
        raise RuntimeError("receiver failed")

    async with serve(app) as client:
        without = await client.request("GET", path)
        with caplog.at_level(logging.ERROR, logger="asignal"), contextlib.ExitStack() as stack:
            for sig in SIGNALS.values():
                stack.enter_context(connected(sig, broken_receiver, app))
            with_broken = await client.request("GET", path)

    assert without_date(with_broken) == without_date(without)
    logged = [r for r in caplog.records if r.name == "asignal"]
    assert logged, "the receiver's error is logged"
    assert any("broken_receiver" in r.getMessage() for r in logged)


@over_transports
async def test_hanging_receiver_is_bounded_by_timeout(serve: Serve) -> None:
    app = make_app()
    install(app, timeout=0.2)

    async def hang(sender: Any, **extra: Any) -> None:
        await anyio.sleep_forever()

    with (
        recording(app) as rec,
        connected(signals.request_started, hang, app),
        connected(signals.request_finished, hang, app),
    ):
        async with serve(app) as client:
            reply = await client.request("GET", "/plain")
            await rec.settled()

    assert (reply.status, reply.body) == (200, b"hello")
    assert rec.names() == HTTP_ORDER


# --- FastAPI ------------------------------------------------------------------------------


@over_transports
async def test_fastapi_http_exception_is_not_reported(serve: Serve) -> None:
    app = make_fastapi_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            found = await client.request("GET", "/items/a")
            missing = await client.request("GET", "/items/b")
            await rec.settled(2)

    assert (found.status, found.body) == (200, b'{"item":"apple"}')
    assert (missing.status, missing.body) == (404, b'{"detail":"Item not found"}')
    assert rec.names() == HTTP_ORDER * 2
    statuses = [s.kwargs["response"].status_code for s in rec.seen if s.name == "request_finished"]
    assert statuses == [200, 404]


@over_transports
async def test_fastapi_value_error_is_reported_before_the_500(serve: Serve) -> None:
    app = make_fastapi_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            reply = await client.request("GET", "/fail")
            await rec.settled()

    assert reply.status == 500
    names = rec.names()
    assert names.index("got_request_exception") < names.index("request_finished")
    assert isinstance(rec.one("got_request_exception").kwargs["exception"], ValueError)
    assert rec.one("request_finished").kwargs["response"].status_code == 500


# --- mounted sub-applications -------------------------------------------------------------


@over_transports
@pytest.mark.parametrize("sub_installed", [True, False], ids=["sub-installed", "sub-bare"])
async def test_mounted_sub_app_emits_once_from_the_outer_app(
    serve: Serve, sub_installed: bool
) -> None:
    app = make_app()
    sub = app.state.sub
    install(app)
    if sub_installed:
        install(sub)
    with recording(app) as rec, recording(sub) as sub_rec, recording(ANY) as everything:
        async with serve(app) as client:
            reply = await client.request("GET", "/sub/plain")
            await rec.settled()

    assert (reply.status, reply.body) == (200, b"sub")
    assert rec.names() == HTTP_ORDER
    assert sub_rec.names() == []
    assert everything.names() == HTTP_ORDER
    assert rec.one("request_finished").kwargs["request"].url.path == "/sub/plain"


@over_transports
async def test_mounted_installed_sub_app_exception_is_reported_once_before_the_500(
    serve: Serve,
) -> None:
    app = make_app()
    sub = app.state.sub
    install(app)
    install(sub)
    with recording(ANY) as everything:
        async with serve(app) as client:
            reply = await client.request("GET", "/sub/boom")
            await everything.settled()

    assert reply.status == 500
    assert everything.names() == [
        "appcontext_pushed",
        "request_started",
        "got_request_exception",
        "request_finished",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]
    assert all(seen.sender is app for seen in everything.seen)


# --- streaming ----------------------------------------------------------------------------


def _http_scope(path: str) -> Scope:
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


async def _receive_nothing() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def stream_gates(app: Starlette) -> list[anyio.Event]:
    """The app's stream yields chunk i, then waits until the client has chunk i: a
    middleware that buffered would deadlock here."""
    gates = [anyio.Event() for _ in STREAM_CHUNKS]

    async def gate(index: int) -> None:
        with anyio.fail_after(GUARD):
            await gates[index].wait()

    app.state.stream_gate = gate
    return gates


def three_finished_receivers(app: Starlette, timeline: list[str]) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    for index in range(3):

        async def finished(sender: Any, *, index: int = index, **extra: Any) -> None:
            timeline.append(f"request_finished:{index}")

        stack.enter_context(connected(signals.request_finished, finished, app))
    return stack


async def test_streaming_response_streams_chunk_by_chunk_in_process() -> None:
    app = make_app()
    install(app)
    gates = stream_gates(app)
    timeline: list[str] = []
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            timeline.append("start")
        elif message["type"] == "http.response.body" and message.get("body"):
            chunks.append(message["body"])
            timeline.append(f"chunk:{len(chunks)}")
            gates[len(chunks) - 1].set()

    with three_finished_receivers(app, timeline), anyio.fail_after(GUARD):
        await app(_http_scope("/stream"), _receive_nothing, send)

    assert chunks == list(STREAM_CHUNKS)
    assert sorted(timeline[:3]) == [f"request_finished:{i}" for i in range(3)]
    assert timeline[3:] == ["start", "chunk:1", "chunk:2", "chunk:3"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # uvicorn serves on asyncio only
async def test_streaming_response_streams_chunk_by_chunk_over_http() -> None:
    app = make_app()
    install(app)
    gates = stream_gates(app)
    timeline: list[str] = []
    chunks: list[bytes] = []
    with three_finished_receivers(app, timeline):
        async with serve_uvicorn(app, "asyncio") as client:
            assert isinstance(client, UvicornClient)
            async with client.client.stream("GET", "/stream") as response:
                timeline.append("start")
                async for chunk in response.aiter_raw():
                    chunks.append(chunk)
                    gates[len(chunks) - 1].set()

    assert chunks == list(STREAM_CHUNKS)
    assert sorted(timeline[:3]) == [f"request_finished:{i}" for i in range(3)]
    assert timeline[3] == "start"


# --- installing ---------------------------------------------------------------------------


async def _call(app: Any, path: str = "/plain") -> list[Message]:
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    await app(_http_scope(path), _receive_nothing, send)
    return messages


async def test_install_twice_returns_the_same_installation() -> None:
    app = make_app()
    first = install(app)
    assert isinstance(first, StarletteIntegration)
    assert install(app, timeout=1) is first
    with recording(app) as rec:
        await _call(app)
    assert rec.names() == HTTP_ORDER


async def test_uninstall_stops_the_signals_and_twice_is_a_no_op() -> None:
    app = make_app()
    bare = await _call(app)
    installation = install(app)
    with recording(app) as rec:
        assert await _call(app) == bare
        assert rec.names() == HTTP_ORDER
        installation.uninstall()
        installation.uninstall()
        assert not installation.installed
        assert await _call(app) == bare
        assert rec.names() == HTTP_ORDER
        assert install(app) is not installation
        await _call(app)
        assert rec.names() == HTTP_ORDER * 2


async def test_install_before_first_request_and_uninstall_before_start() -> None:
    app = make_app()
    installation = install(app)
    installation.uninstall()
    with recording(app) as rec:
        await _call(app)
    assert rec.names() == []


def test_install_rejects_what_is_not_a_starlette_app() -> None:
    with pytest.raises(TypeError, match="SignalMiddleware"):
        install(object())  # type: ignore[arg-type]


def test_install_rejects_bad_options() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the core words the message)
        install(make_app(), timeout=-1)


async def test_two_apps_do_not_see_each_other() -> None:
    app_a, app_b = make_app(), make_app()
    install(app_a)
    install(app_b)
    with recording(app_a) as rec_a:
        await _call(app_b)
        assert rec_a.names() == []
        await _call(app_a)
    assert rec_a.names() == HTTP_ORDER


async def test_sync_receivers_work() -> None:
    app = make_app()
    install(app)
    seen: list[str] = []

    def started(sender: Any, *, request: Request, **extra: Any) -> None:
        seen.append(request.url.path)

    with connected(signals.request_started, started, app):
        await _call(app)
    assert seen == ["/plain"]


async def test_nothing_is_wrapped_when_nobody_listens() -> None:
    given: list[tuple[Receive, Send]] = []

    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        given.append((receive, send))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        pass

    middleware = SignalMiddleware(raw_app)
    await middleware(_http_scope("/"), _receive_nothing, send)
    assert given == [(_receive_nothing, send)]

    with recording(raw_app) as rec:
        await middleware(_http_scope("/"), _receive_nothing, send)
    assert given[1][1] is not send
    assert rec.names() == HTTP_ORDER


async def test_signal_middleware_on_a_plain_asgi_app_reports_escaping_errors() -> None:
    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Boom("raw")

    middleware = SignalMiddleware(raw_app, sender="my-app")
    with recording("my-app") as rec, pytest.raises(Boom):
        await middleware(_http_scope("/"), _receive_nothing, _send_nowhere)
    assert rec.names() == [
        "appcontext_pushed",
        "request_started",
        "got_request_exception",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]


async def _send_nowhere(message: Message) -> None:
    pass


async def test_install_after_the_app_has_started() -> None:
    app = make_app()
    bare = await _call(app)  # builds Starlette's middleware stack
    install(app)
    with recording(app) as rec:
        assert await _call(app) == bare
        await _call(app, "/nowhere")
    assert rec.names() == HTTP_ORDER * 2
    assert rec.seen[8].kwargs["response"].status_code == 404


async def test_the_middleware_is_in_the_path_only_while_someone_listens() -> None:
    app = make_app()
    install(app)
    bare = await _call(app)
    own_stack = app.middleware_stack
    assert not isinstance(own_stack, SignalMiddleware)

    async def started(sender: Any, **extra: Any) -> None:
        pass

    with connected(signals.request_started, started, app):
        assert isinstance(app.middleware_stack, SignalMiddleware)
        assert app.middleware_stack.app is own_stack
        assert await _call(app) == bare
    assert app.middleware_stack is own_stack
    with connected(signals.template_rendered, started):
        # ANY counts, and template receivers need the app to mark the scope.
        assert isinstance(app.middleware_stack, SignalMiddleware)
    assert app.middleware_stack is own_stack


async def test_lifespan_is_reported_when_nobody_listens_to_requests() -> None:
    app = make_app()
    install(app)
    seen: list[str] = []

    async def started(sender: Any, **extra: Any) -> None:
        seen.append("serving_started")

    async def stopped(sender: Any, **extra: Any) -> None:
        seen.append("serving_stopped")

    with (
        connected(signals.serving_started, started, app),
        connected(signals.serving_stopped, stopped, app),
    ):
        async with run_lifespan(app):
            await _call(app)
            # The lifespan is reported from the router, not the middleware.
            assert not isinstance(app.middleware_stack, SignalMiddleware)
            assert seen == ["serving_started"]
    assert seen == ["serving_started", "serving_stopped"]


async def test_uninstall_restores_the_lifespan() -> None:
    app = make_app()
    install(app).uninstall()
    with recording(app) as rec:
        async with run_lifespan(app):
            pass
    assert rec.names(lifespan=True) == []


async def test_a_sub_app_listened_to_alone_reports_its_own_requests() -> None:
    app = make_app()
    sub = app.state.sub
    install(app)
    install(sub)
    with recording(app) as rec, recording(sub) as sub_rec:
        rec.disconnect()  # the outer app installed, but nobody listens to it
        await _call(app, "/sub/plain")
    assert rec.names() == []
    assert sub_rec.names() == HTTP_ORDER
    assert all(seen.sender is sub for seen in sub_rec.seen)


@pytest.mark.parametrize("key", [500, Exception])
async def test_a_server_error_handler_still_reports_first(key: Any) -> None:
    async def server_error(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("sorry", status_code=503)

    app = make_app()
    app.add_exception_handler(key, server_error)
    install(app)
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    with recording(app) as rec, pytest.raises(Boom):
        await app(_http_scope("/boom"), _receive_nothing, send)
    assert messages[0]["status"] == 503
    # Starlette's server-error handler answers, but the exception still reaches the server.
    assert rec.names() == [
        "appcontext_pushed",
        "request_started",
        "got_request_exception",
        "request_finished",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]
