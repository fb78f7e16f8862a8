"""asignal.adapters.starlette's middleware on real Starlette and FastAPI apps: the
HTTP and websocket signals, over every transport of ``starlette_clients``."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import anyio
import pytest
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.websockets import WebSocket

from asignal import ANY, signals
from asignal.adapters.starlette import ResponseInfo, install

from .recording import GUARD, SIGNALS
from .starlette_apps import Boom, make_app, make_fastapi_app
from .starlette_clients import (
    HTTP_ORDER,
    Serve,
    connected,
    over_transports,
    recording,
    serve_over,
    without_date,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def serve(transport: str, anyio_backend: str) -> Serve:
    return serve_over(transport, anyio_backend)


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
async def test_hanging_receivers_share_one_budget_per_request(serve: Serve) -> None:
    """``timeout`` bounds the request, not each send: a receiver hanging on three of its
    signals holds it up once. The first hang spends the whole budget; the later ones
    find none left and are cut at their first checkpoint (on trio, not started)."""
    app = make_app()
    install(app, timeout=0.2)
    passed: list[str] = []

    def hang_on(name: str) -> Any:
        async def hang(sender: Any, **extra: Any) -> None:
            await anyio.lowlevel.checkpoint()
            # Only reached while the request's budget has time left.
            passed.append(name)
            await anyio.sleep_forever()

        return hang

    with (
        recording(app) as rec,
        connected(signals.request_started, hang_on("request_started"), app),
        connected(signals.request_finished, hang_on("request_finished"), app),
        connected(signals.request_tearing_down, hang_on("request_tearing_down"), app),
    ):
        async with serve(app) as client:
            reply = await client.request("GET", "/plain")
        # The server has shut down: every send of the request is over.

    assert (reply.status, reply.body) == (200, b"hello")
    assert passed == ["request_started"]
    names = rec.names()
    # Receivers that finish without suspending may still run on a spent budget
    # (asyncio); whatever ran, ran in Flask's order.
    assert names[:2] == ["appcontext_pushed", "request_started"]
    assert names == [name for name in HTTP_ORDER if name in names]


# --- FastAPI ------------------------------------------------------------------------------


@over_transports
async def test_fastapi_http_exception_is_not_reported(serve: Serve) -> None:
    app = make_fastapi_app()
    install(app)
    with recording(app) as rec:
        async with serve(app) as client:
            found = await client.request("GET", "/items/a")
            # Its teardown runs on the app's runner: let it end before the next request.
            await rec.settled()
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
