"""The sends that follow a connection's application call (issue 10 §4): with the app's
runner (a lifespan) they run there as one job, in order, however the call ended, so the
ASGI call returns (or raises) at once; without one, within the call after the response.

A teardown receiver is held on an event here: an ASGI call that waited for it would
never return, and the guard would fail the test."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import Message

from asignal import NamedSignal, signals
from asignal.adapters.starlette import install
from asignal.testing import settle

from .recording import GUARD
from .starlette_apps import Boom, make_app
from .starlette_clients import HTTP_500_ORDER, HTTP_ORDER, call, connected, recording

pytestmark = pytest.mark.anyio

#: A response sent whole, then a failing BackgroundTask.
BACKGROUND_ORDER = [
    "appcontext_pushed",
    "request_started",
    "request_finished",
    "got_background_exception",
    "request_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]
WEBSOCKET_ORDER = [
    "appcontext_pushed",
    "websocket_started",
    "websocket_finished",
    "websocket_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]
WEBSOCKET_500_ORDER = [
    "appcontext_pushed",
    "websocket_started",
    "got_websocket_exception",
    "websocket_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]


async def websocket_call(app: Any, path: str) -> list[Message]:
    """Call ``app`` in-process for one websocket connection to ``path`` that sends
    ``"hi"`` and then waits for the app to end it: the messages the app sends."""
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "hi"},
    ]
    ended = anyio.Event()
    messages: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await ended.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        messages.append(message)
        if message["type"] == "websocket.close":
            ended.set()

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
    await app(scope, receive, send)
    return messages


@pytest.mark.parametrize(
    ("kind", "path", "order", "held_on"),
    [
        ("http", "/plain", HTTP_ORDER, signals.request_tearing_down),
        ("http", "/boom", HTTP_500_ORDER, signals.request_tearing_down),
        ("http", "/background", BACKGROUND_ORDER, signals.got_background_exception),
        ("websocket", "/ws", WEBSOCKET_ORDER, signals.websocket_finished),
        ("websocket", "/ws-boom", WEBSOCKET_500_ORDER, signals.got_websocket_exception),
    ],
    ids=["ok", "500", "failing-background-task", "websocket", "websocket-raises"],
)
async def test_the_call_returns_before_the_sends_that_follow_it(
    kind: str, path: str, order: list[str], held_on: NamedSignal
) -> None:
    app = make_app()
    installation = install(app)
    release = anyio.Event()

    async def held(sender: Any, **extra: Any) -> None:
        await release.wait()

    with recording(app) as rec, connected(held_on, held, app):
        async with LifespanManager(app):
            runner = installation.runner
            assert runner is not None
            with anyio.fail_after(GUARD), contextlib.suppress(Boom):
                if kind == "http":
                    await call(app, path)
                else:
                    await websocket_call(app, path)
            at_return = rec.names()
            release.set()
            with anyio.fail_after(GUARD):
                await settle(runner)
            settled = rec.names()

    assert "appcontext_popped" not in at_return
    assert settled[: len(at_return)] == at_return
    assert settled == order


async def test_a_full_runner_holds_the_call_instead_of_dropping_the_sends() -> None:
    # Teardown receivers release resources: a runner that cannot take the job (here
    # max_pending=1, taken by the first request's held teardown) gets the sends sent
    # within the call, as without a lifespan, rather than dropped.
    app = make_app()
    installation = install(app, max_pending=1)
    release = anyio.Event()
    held_requests: list[int] = []

    async def held_once(sender: Any, **extra: Any) -> None:
        held_requests.append(len(held_requests))
        if len(held_requests) == 1:
            await release.wait()

    with recording(app) as rec, connected(signals.request_tearing_down, held_once, app):
        async with LifespanManager(app):
            runner = installation.runner
            assert runner is not None
            with anyio.fail_after(GUARD):
                await call(app)
                await rec.wait_for("request_tearing_down")
                assert runner.pending == 1
                await call(app)
            at_return = rec.names()
            release.set()
            with anyio.fail_after(GUARD):
                await settle(runner)

    assert at_return == HTTP_ORDER[:4] + HTTP_ORDER
    assert rec.names() == HTTP_ORDER[:4] + HTTP_ORDER + HTTP_ORDER[4:]
    assert runner.stats.dropped == 0


@pytest.mark.parametrize("path", ["/plain", "/boom"])
async def test_the_sends_keep_their_kwargs_on_the_runner(path: str) -> None:
    app = make_app()
    installation = install(app)
    with recording(app) as rec:
        async with LifespanManager(app):
            assert installation.runner is not None
            with contextlib.suppress(Boom):
                await call(app, path)
            await settle(installation.runner)

    request = rec.one("request_started").kwargs["request"]
    error = rec.one("got_request_exception").kwargs["exception"] if path == "/boom" else None
    assert rec.one("request_tearing_down").kwargs == {"request": request, "exc": error}
    assert rec.one("appcontext_tearing_down").kwargs == {"exc": error}
    assert rec.one("appcontext_popped").kwargs == {}


@pytest.mark.parametrize("path", ["/plain", "/boom"])
async def test_without_a_lifespan_the_sends_end_within_the_call(path: str) -> None:
    app = make_app()
    install(app)
    with recording(app) as rec, contextlib.suppress(Boom):
        await call(app, path)
    assert rec.names() == (HTTP_ORDER if path == "/plain" else HTTP_500_ORDER)
