"""asignal.adapters.quart on a real Quart app: Quart's test client + test_app (lifespan),
and real HTTP/websockets against hypercorn on 127.0.0.1 driven by httpx and websockets."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import httpx
import jinja2
import pytest
import quart
import quart.signals as quart_signals
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.utils import LifespanFailureError
from quart.testing.app import LifespanError
from quart.testing.connections import WebsocketDisconnectError
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from asignal import signals
from asignal.adapters.quart import QuartIntegration, install
from asignal.testing import capture

from .quart_app import Boom, make_app
from .recording import GUARD, Recorder

pytestmark = pytest.mark.anyio


# Quart (and hypercorn's asyncio worker) run on asyncio only, so this module cannot run
# on trio like the core tests do.
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- transports ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Transport(Protocol):
    async def get(self, path: str) -> Reply: ...

    async def raw_get(self, path: str) -> bytes:
        """The whole response as the client receives it."""
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
    """httpx and websockets against a hypercorn server on 127.0.0.1."""

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
        return b"".join(chunks)

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
async def hypercorn_server(app: quart.Quart) -> AsyncIterator[int]:
    """Serve ``app`` with hypercorn on a free 127.0.0.1 port; yield the port once the
    lifespan startup has completed; shut down cleanly on exit."""
    # Bound and listening before hypercorn starts, so the port is known up front and
    # early connections wait in the backlog instead of being refused.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    fd = sock.detach()  # hypercorn takes the descriptor over once startup is complete
    config = Config()
    config.bind = [f"fd://{fd}"]
    config.include_date_header = False  # so two responses can be compared byte for byte
    config.errorlog = None
    config.graceful_timeout = 1
    shutdown = asyncio.Event()
    started = asyncio.Event()

    def on_started(sender: Any, **extra: Any) -> None:
        started.set()

    signals.serving_started.connect(on_started, sender=app)
    server = asyncio.ensure_future(serve(app, config, shutdown_trigger=shutdown.wait))
    try:
        with anyio.fail_after(GUARD):
            # Whichever comes first: startup done, or the server died trying.
            waiter = asyncio.ensure_future(started.wait())
            await asyncio.wait({server, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        if not started.is_set():
            os.close(fd)  # hypercorn never got as far as using it
            server.result()  # re-raises the startup failure
        signals.serving_started.disconnect(on_started)
        yield port
    finally:
        signals.serving_started.disconnect(on_started)
        shutdown.set()
        if not server.done():
            with anyio.fail_after(GUARD):
                await server


@asynccontextmanager
async def http_transport(app: quart.Quart) -> AsyncIterator[HTTPTransport]:
    async with (
        hypercorn_server(app) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        yield HTTPTransport(port, http)


@asynccontextmanager
async def quart_test_client(app: quart.Quart) -> AsyncIterator[TestClientTransport]:
    async with app.test_app() as test_app:
        yield TestClientTransport(test_app.test_client())


TRANSPORTS: dict[str, Callable[[quart.Quart], AbstractAsyncContextManager[Transport]]] = {
    "test_client": quart_test_client,
    "hypercorn": http_transport,
}


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
def install_options() -> dict[str, Any]:
    """Options for install(); a test overrides them with parametrize."""
    return {}


@pytest.fixture
def app(install_options: dict[str, Any]) -> quart.Quart:
    app = make_app()
    install(app, **install_options)
    return app


@pytest.fixture(params=list(TRANSPORTS))
async def transport(request: pytest.FixtureRequest, app: quart.Quart) -> AsyncIterator[Transport]:
    async with TRANSPORTS[request.param](app) as transport:
        yield transport


@pytest.fixture
def recorder(app: quart.Quart, transport: Transport) -> Iterator[Recorder]:
    """Connected once the app is serving, so it sees only what the test does."""
    recorder = Recorder(app, sync=True).connect()
    yield recorder
    recorder.disconnect()


# --- helpers ---------------------------------------------------------------------------


def assert_request_cycle(
    recorder: Recorder, app: quart.Quart, path: str, middle: list[str], *, status: int
) -> Any:
    """The documented order around ``middle``; every event sent by ``app`` with exactly
    the documented kwargs, one request object throughout. Returns that request."""
    assert recorder.names() == [
        "appcontext_pushed",
        "request_started",
        *middle,
        "request_finished",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]
    assert all(seen.sender is app for seen in recorder.seen)
    request = recorder.one("appcontext_pushed").kwargs["request"]
    assert isinstance(request, quart.Request)
    assert request.path == path
    assert recorder.one("appcontext_pushed").kwargs == {"request": request}
    assert recorder.one("request_started").kwargs == {"request": request}
    finished = recorder.one("request_finished").kwargs
    assert finished.keys() == {"request", "response"}
    assert finished["request"] is request
    assert finished["response"].status_code == status
    assert recorder.one("request_tearing_down").kwargs.keys() == {"request", "exc"}
    assert recorder.one("request_tearing_down").kwargs["request"] is request
    assert recorder.one("appcontext_tearing_down").kwargs.keys() == {"exc"}
    assert recorder.one("appcontext_popped").kwargs == {}
    return request


# --- 1-5: HTTP requests ----------------------------------------------------------------


async def test_plain_get_follows_flasks_documented_order(
    app: quart.Quart, transport: Transport, recorder: Recorder
) -> None:
    reply = await transport.get("/")

    assert (reply.status, reply.body) == (200, b"hello")
    assert_request_cycle(recorder, app, "/", [], status=200)
    assert recorder.one("request_tearing_down").kwargs["exc"] is None
    assert recorder.one("appcontext_tearing_down").kwargs["exc"] is None


async def test_handled_error_is_not_reported(
    app: quart.Quart, transport: Transport, recorder: Recorder
) -> None:
    reply = await transport.get("/missing")

    assert (reply.status, reply.body) == (404, b"nothing here")
    assert_request_cycle(recorder, app, "/missing", [], status=404)
    assert "got_request_exception" not in recorder.names()
    assert recorder.one("request_tearing_down").kwargs["exc"] is None


async def test_unhandled_exception_is_reported_before_the_500(
    app: quart.Quart, transport: Transport, recorder: Recorder
) -> None:
    reply = await transport.get("/boom")

    assert reply.status == 500
    request = assert_request_cycle(recorder, app, "/boom", ["got_request_exception"], status=500)
    got = recorder.one("got_request_exception").kwargs
    assert got.keys() == {"request", "exception"}
    assert got["request"] is request
    error = got["exception"]
    assert isinstance(error, Boom)
    assert str(error) == "view failed"
    # Quart tears down with exc=None here; asignal reports the error as Flask does.
    assert recorder.one("request_tearing_down").kwargs["exc"] is error
    assert recorder.one("appcontext_tearing_down").kwargs["exc"] is error


async def test_rendered_template(
    app: quart.Quart, transport: Transport, recorder: Recorder
) -> None:
    reply = await transport.get("/template")

    assert (reply.status, reply.body) == (200, b"Hello asignal!")
    assert_request_cycle(
        recorder, app, "/template", ["before_render_template", "template_rendered"], status=200
    )
    before = recorder.one("before_render_template").kwargs
    after = recorder.one("template_rendered").kwargs
    assert before.keys() == after.keys() == {"template", "context"}
    assert isinstance(before["template"], jinja2.Template)
    assert before["template"].name == "hello.html"
    assert after["template"] is before["template"]
    assert before["context"]["name"] == "asignal"
    assert after["context"] is before["context"]


async def test_capture_helper_records_quart_templates() -> None:
    app = make_app()
    install(app)
    with capture(signals.template_rendered, sender=app) as rendered:
        response = await app.test_client().get("/template")

    assert response.status_code == 200
    [(sender, kwargs)] = rendered
    assert sender is app
    assert kwargs["template"].name == "hello.html"


async def test_flash(app: quart.Quart, transport: Transport, recorder: Recorder) -> None:
    reply = await transport.get("/flash")

    assert (reply.status, reply.body) == (200, b"flashed")
    assert_request_cycle(recorder, app, "/flash", ["message_flashed"], status=200)
    assert recorder.one("message_flashed").kwargs == {"message": "saved", "category": "info"}


# --- 6: websockets ---------------------------------------------------------------------


WEBSOCKET_CYCLE = [
    "appcontext_pushed",
    "websocket_started",
    "websocket_finished",
    "websocket_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]


def assert_websocket_cycle(recorder: Recorder, app: quart.Quart, path: str) -> Any:
    assert all(seen.sender is app for seen in recorder.seen)
    ws = recorder.one("websocket_started").kwargs["websocket"]
    assert isinstance(ws, quart.Websocket)
    assert ws.path == path
    assert recorder.one("appcontext_pushed").kwargs == {"request": ws}
    assert recorder.one("websocket_started").kwargs == {"websocket": ws}
    assert recorder.one("websocket_finished").kwargs.keys() == {"websocket", "response"}
    assert recorder.one("websocket_finished").kwargs["websocket"] is ws
    assert recorder.one("websocket_tearing_down").kwargs.keys() == {"websocket", "exc"}
    assert recorder.one("websocket_tearing_down").kwargs["websocket"] is ws
    assert recorder.one("appcontext_tearing_down").kwargs.keys() == {"exc"}
    assert recorder.one("appcontext_popped").kwargs == {}
    return ws


async def test_websocket_round_trip(
    app: quart.Quart, transport: Transport, recorder: Recorder
) -> None:
    assert await transport.echo("/ws", "ping") == "ping"
    # The server may still be tearing down after the client has its reply.
    await recorder.wait_for("appcontext_popped")

    assert recorder.names() == WEBSOCKET_CYCLE
    assert_websocket_cycle(recorder, app, "/ws")
    assert recorder.one("websocket_finished").kwargs["response"] is None
    assert recorder.one("websocket_tearing_down").kwargs["exc"] is None
    assert recorder.one("appcontext_tearing_down").kwargs["exc"] is None


async def test_websocket_handler_that_raises(
    app: quart.Quart, transport: Transport, recorder: Recorder
) -> None:
    await transport.expect_server_close("/ws-boom")
    await recorder.wait_for("appcontext_popped")

    assert recorder.names() == [
        "appcontext_pushed",
        "websocket_started",
        "got_websocket_exception",
        "websocket_finished",
        "websocket_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]
    ws = assert_websocket_cycle(recorder, app, "/ws-boom")
    got = recorder.one("got_websocket_exception").kwargs
    assert got.keys() == {"websocket", "exception"}
    assert got["websocket"] is ws
    error = got["exception"]
    assert isinstance(error, Boom)
    assert recorder.one("websocket_finished").kwargs["response"].status_code == 500
    assert recorder.one("websocket_tearing_down").kwargs["exc"] is error
    assert recorder.one("appcontext_tearing_down").kwargs["exc"] is error


# --- 7: background tasks ---------------------------------------------------------------


async def test_failing_background_task(
    app: quart.Quart, transport: Transport, recorder: Recorder
) -> None:
    reply = await transport.get("/background")
    assert (reply.status, reply.body) == (200, b"queued")
    # The task pushes its own app context at once, then waits for the gate; that push
    # may come before or inside the request's teardown.
    await recorder.wait_for("appcontext_pushed", 2)
    task_pushed = [
        seen
        for seen in recorder.seen
        if seen.name == "appcontext_pushed" and seen.kwargs == {"request": None}
    ]
    assert len(task_pushed) == 1  # not attributed to the request, though run in its copy
    request_events = [seen for seen in recorder.seen if seen is not task_pushed[0]]
    assert_request_cycle(Recorder(app, request_events), app, "/background", [], status=200)
    assert task_pushed[0].sender is app
    recorder.clear()

    app.config["BACKGROUND_GATE"].set()
    await recorder.wait_for("got_background_exception")

    assert recorder.names() == [
        "appcontext_tearing_down",
        "appcontext_popped",
        "got_background_exception",
    ]
    assert all(seen.sender is app for seen in recorder.seen)
    error = recorder.one("got_background_exception").kwargs["exception"]
    assert isinstance(error, Boom)
    assert recorder.one("got_background_exception").kwargs == {"exception": error}
    assert recorder.one("appcontext_tearing_down").kwargs == {"exc": error}


# --- a client that goes away ----------------------------------------------------------


async def test_client_disconnect_still_tears_down(app: quart.Quart) -> None:
    async with hypercorn_server(app) as port:
        recorder = Recorder(app, sync=True).connect()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                request = asyncio.ensure_future(http.get("/slow"))
                with anyio.fail_after(GUARD):
                    await app.config["SLOW_ENTERED"].wait()
                request.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await request
            # Quart cancels the view when the connection drops; asignal's sends then run
            # inside that cancelled task and must still reach the receivers.
            await recorder.wait_for("appcontext_popped")
        finally:
            recorder.disconnect()

    assert recorder.names() == [
        "appcontext_pushed",
        "request_started",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]
    exc = recorder.one("request_tearing_down").kwargs["exc"]
    assert isinstance(exc, asyncio.CancelledError)
    assert recorder.one("appcontext_tearing_down").kwargs["exc"] is exc


# --- 8: lifespan -----------------------------------------------------------------------

SERVING_APP_CONTEXT = ["appcontext_pushed", "appcontext_tearing_down", "appcontext_popped"]


@pytest.mark.parametrize("transport_name", list(TRANSPORTS))
async def test_lifespan(transport_name: str) -> None:
    app = make_app()
    install(app)
    recorder = Recorder(app, sync=True).connect()
    started_seen: list[bool] = []

    def after_before_serving(sender: Any, **extra: Any) -> None:
        started_seen.append(app.config["STARTED"])

    signals.serving_started.connect(after_before_serving, sender=app)
    try:
        async with TRANSPORTS[transport_name](app):
            assert recorder.names() == [*SERVING_APP_CONTEXT, "serving_started"]
            recorder.clear()
    finally:
        signals.serving_started.disconnect(after_before_serving)
        recorder.disconnect()

    assert recorder.names() == [*SERVING_APP_CONTEXT, "serving_stopped"]
    assert started_seen == [True]  # serving_started came after Quart's before_serving
    assert all(seen.sender is app for seen in recorder.seen)
    assert recorder.one("appcontext_pushed").kwargs == {"request": None}
    assert recorder.one("appcontext_tearing_down").kwargs == {"exc": None}
    assert recorder.one("serving_stopped").kwargs == {}


@pytest.mark.parametrize(
    ("transport_name", "failure"),
    [("test_client", LifespanError), ("hypercorn", LifespanFailureError)],
)
async def test_failing_startup(transport_name: str, failure: type[Exception]) -> None:
    app = make_app(failing_startup=True)
    install(app)
    recorder = Recorder(app, sync=True).connect()
    try:
        with pytest.raises(failure):
            async with TRANSPORTS[transport_name](app):
                pass
    finally:
        recorder.disconnect()

    assert recorder.names() == [*SERVING_APP_CONTEXT, "got_serving_exception"]
    error = recorder.one("got_serving_exception").kwargs["exception"]
    assert isinstance(error, Boom)
    assert recorder.one("got_serving_exception").kwargs == {"exception": error}
    assert recorder.one("appcontext_tearing_down").kwargs == {"exc": error}
    assert all(seen.sender is app for seen in recorder.seen)


async def test_failing_shutdown() -> None:
    app = make_app(failing_shutdown=True)
    install(app)
    recorder = Recorder(app, sync=True)
    with pytest.raises(LifespanError):
        async with app.test_app():
            recorder.connect()
    recorder.disconnect()

    assert recorder.names() == [*SERVING_APP_CONTEXT, "got_serving_exception"]
    error = recorder.one("got_serving_exception").kwargs["exception"]
    assert isinstance(error, Boom)
    assert str(error) == "shutdown failed"
    assert recorder.one("appcontext_tearing_down").kwargs == {"exc": error}


# --- 9: concurrency --------------------------------------------------------------------


# The timeout only stops a sequential dispatch from hanging the test; it then cancels
# the receivers and the assertion on `finished` fails.
@pytest.mark.parametrize("install_options", [{"timeout": GUARD}])
async def test_receivers_run_concurrently(app: quart.Quart, transport: Transport) -> None:
    started = [anyio.Event() for _ in range(3)]
    finished: list[int] = []

    def make(index: int) -> Callable[..., Any]:
        async def receiver(sender: Any, **extra: Any) -> None:
            started[index].set()
            for event in started:
                await event.wait()
            finished.append(index)

        return receiver

    receivers = [make(index) for index in range(3)]
    for receiver in receivers:
        signals.request_finished.connect(receiver, sender=app)
    try:
        reply = await transport.get("/")
    finally:
        for receiver in receivers:
            signals.request_finished.disconnect(receiver)

    assert (reply.status, reply.body) == (200, b"hello")
    assert sorted(finished) == [0, 1, 2]


# --- 10: failing and hanging receivers -------------------------------------------------

REQUEST_SIGNALS = [
    "appcontext_pushed",
    "request_started",
    "request_finished",
    "request_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]


async def broken_receiver(sender: Any, **extra: Any) -> None:
    raise ValueError("receiver is broken")


async def test_raising_receiver_changes_nothing_in_the_response(
    app: quart.Quart, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    baseline = await transport.raw_get("/")
    for name in REQUEST_SIGNALS:
        getattr(signals, name).connect(broken_receiver, sender=app)
    try:
        with caplog.at_level(logging.ERROR, logger="asignal"):
            raw = await transport.raw_get("/")
    finally:
        for name in REQUEST_SIGNALS:
            getattr(signals, name).disconnect(broken_receiver)

    assert raw.startswith((b"HTTP/1.1 200", b"200"))
    assert raw.endswith(b"hello")
    assert raw == baseline
    records = [record for record in caplog.records if record.name == "asignal"]
    assert len(records) == len(REQUEST_SIGNALS)
    for record in records:
        assert record.levelno >= logging.ERROR
        assert "broken_receiver" in record.getMessage()
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], ValueError)


@pytest.mark.parametrize("install_options", [{"timeout": 0.2}])
async def test_hanging_receiver_is_cut_off_by_the_timeout(
    app: quart.Quart, transport: Transport
) -> None:
    never = anyio.Event()
    cancelled: list[bool] = []

    async def hanging(sender: Any, **extra: Any) -> None:
        try:
            await never.wait()
        except BaseException:
            cancelled.append(True)
            raise

    signals.request_started.connect(hanging, sender=app)
    try:
        with anyio.fail_after(GUARD):
            reply = await transport.get("/")
    finally:
        signals.request_started.disconnect(hanging)

    assert (reply.status, reply.body) == (200, b"hello")
    assert cancelled == [True]


async def test_receivers_see_quarts_context(app: quart.Quart, transport: Transport) -> None:
    seen: list[tuple[str, str]] = []

    # Two coroutine receivers, so they really run side by side (in tasks of their own).
    async def first(sender: Any, **extra: Any) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(("first", quart.request.path))

    async def second(sender: Any, **extra: Any) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(("second", quart.request.path))

    async def on_teardown(sender: Any, **extra: Any) -> None:
        seen.append(("app context", quart.current_app.name))

    signals.request_finished.connect(first, sender=app)
    signals.request_finished.connect(second, sender=app)
    signals.appcontext_tearing_down.connect(on_teardown, sender=app)
    try:
        await transport.get("/")
    finally:
        signals.request_finished.disconnect(first)
        signals.request_finished.disconnect(second)
        signals.appcontext_tearing_down.disconnect(on_teardown)

    assert sorted(seen) == [("app context", app.name), ("first", "/"), ("second", "/")]


# --- install / uninstall / isolation ---------------------------------------------------


async def test_two_apps_never_mix() -> None:
    app_a, app_b = make_app("a"), make_app("b")
    install(app_a)
    install(app_b)
    recorder_a = Recorder(app_a, sync=True).connect()
    recorder_b = Recorder(app_b, sync=True).connect()
    try:
        reply = await TestClientTransport(app_b.test_client()).get("/")
    finally:
        recorder_a.disconnect()
        recorder_b.disconnect()

    assert reply.status == 200
    assert recorder_a.seen == []
    assert recorder_b.names() == REQUEST_SIGNALS
    assert all(seen.sender is app_b for seen in recorder_b.seen)


async def test_install_twice_is_a_no_op() -> None:
    app = make_app()
    handle = install(app, timeout=1)
    assert isinstance(handle, QuartIntegration)
    assert install(app, timeout=5) is handle
    assert app.extensions["asignal"] is handle
    recorder = Recorder(app, sync=True).connect()
    try:
        await TestClientTransport(app.test_client()).get("/")
    finally:
        recorder.disconnect()

    assert recorder.names() == REQUEST_SIGNALS  # each once


async def test_uninstall_stops_forwarding_and_install_works_again() -> None:
    app = make_app()
    handle = install(app)
    recorder = Recorder(app, sync=True).connect()
    client = TestClientTransport(app.test_client())
    try:
        handle.uninstall()
        handle.uninstall()  # idempotent
        assert "asignal" not in app.extensions
        assert list(quart_signals.request_started.receivers_for(app)) == []
        assert (await client.get("/")).status == 200
        assert recorder.seen == []

        async with app.test_app():
            pass
        assert recorder.seen == []  # no serving_started/stopped either

        assert install(app) is not handle
        await client.get("/")
        assert recorder.names() == REQUEST_SIGNALS
    finally:
        recorder.disconnect()


async def test_a_dropped_app_is_freed_and_leaves_quarts_signals() -> None:
    app = make_app()
    install(app)
    seen: list[int] = []

    async def receiver(sender: Any, *, response: Any, **extra: Any) -> None:
        seen.append(response.status_code)

    signals.request_finished.connect(receiver, sender=app)
    assert (await app.test_client().get("/")).status_code == 200
    assert seen == [200]
    async with app.test_app():
        pass
    ref = weakref.ref(app)
    forwarders = list(quart_signals.request_started.receivers_for(app))
    assert len(forwarders) == 1
    del app
    gc.collect()

    assert ref() is None
    assert all(
        forwarder not in quart_signals.request_started.receivers.values()
        for forwarder in forwarders
    )


async def test_app_context_outside_a_request() -> None:
    app = make_app()
    install(app)
    recorder = Recorder(app, sync=True).connect()
    try:
        async with app.app_context():
            pass
    finally:
        recorder.disconnect()

    assert recorder.names() == SERVING_APP_CONTEXT
    assert recorder.one("appcontext_pushed").kwargs == {"request": None}
    assert recorder.one("appcontext_tearing_down").kwargs == {"exc": None}


async def test_installing_does_not_change_quarts_own_signals() -> None:
    app = make_app()
    install(app)
    seen: list[str] = []

    async def quart_receiver(sender: Any, **extra: Any) -> None:
        seen.append("quart")

    quart_signals.request_started.connect(quart_receiver, sender=app)
    try:
        await TestClientTransport(app.test_client()).get("/")
    finally:
        quart_signals.request_started.disconnect(quart_receiver)
    assert seen == ["quart"]
