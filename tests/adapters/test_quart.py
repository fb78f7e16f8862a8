"""asignal.adapters.quart on a real Quart app: the Flask signal set from Quart's lifecycle,
through Quart's test client + test_app (lifespan) and real HTTP/websockets against
hypercorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import jinja2
import pytest
import quart

from asignal import signals
from asignal.adapters.quart import install
from asignal.testing import capture
from examples.serving import serving

from .quart_app import TRANSPORTS, Boom, Transport, make_app
from .recording import GUARD, Recorder

pytestmark = pytest.mark.anyio


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
def install_options() -> dict[str, Any]:
    """Options for install(); a test overrides them with parametrize."""
    return {}


@pytest.fixture
async def app(install_options: dict[str, Any]) -> quart.Quart:
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
    async with serving(app, "hypercorn") as served:
        recorder = Recorder(app, sync=True).connect()
        try:
            async with (
                httpx.AsyncClient(base_url=served.url) as http,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(http.get, "/slow")
                with anyio.fail_after(GUARD):
                    await app.config["SLOW_ENTERED"].wait()
                tg.cancel_scope.cancel()  # the client goes away mid-request
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
    assert isinstance(exc, anyio.get_cancelled_exc_class())
    assert recorder.one("appcontext_tearing_down").kwargs["exc"] is exc


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
