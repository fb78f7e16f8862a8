"""asignal.adapters.starlette's lifespan: serving_* signals, the app's background
runner, and background receivers with and without a lifespan."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import Receive, Scope, Send

from asignal import signals
from asignal._background import current_runner
from asignal.adapters.starlette import SignalMiddleware, install

from .starlette_apps import Boom, make_app
from .starlette_clients import (
    HTTP_ORDER,
    Serve,
    StartupFailed,
    call,
    connected,
    over_transports,
    recording,
    serve_over,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def serve(transport: str, anyio_backend: str) -> Serve:
    return serve_over(transport, anyio_backend)


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
        async with LifespanManager(app):
            await call(app)
            # Reported from the router's lifespan context, whatever listens to requests.
            assert seen == ["serving_started"]
    assert seen == ["serving_started", "serving_stopped"]


async def test_uninstall_restores_the_lifespan() -> None:
    app = make_app()
    install(app).uninstall()
    with recording(app) as rec:
        async with LifespanManager(app):
            pass
    assert rec.names(lifespan=True) == []


async def test_signal_middleware_on_a_plain_asgi_app_runs_a_runner_for_its_lifespan() -> None:
    """Wrapped directly around any ASGI app, the middleware reports the lifespan from its
    messages and runs the background runner around it: what a request scheduled is
    drained before serving_stopped, and the server hears of the shutdown last."""
    timeline: list[str] = []
    release = anyio.Event()

    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        runner = current_runner()
        assert runner is not None
        runner.schedule_nowait(drained, name="drained")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def drained() -> None:
        await release.wait()
        timeline.append("drained")

    async def serving(sender: Any, **extra: Any) -> None:
        timeline.append("serving_started" if "serving_started" not in timeline else "?")

    async def stopped(sender: Any, **extra: Any) -> None:
        timeline.append("serving_stopped")

    middleware = SignalMiddleware(raw_app, sender="raw")
    with (
        connected(signals.serving_started, serving, "raw"),
        connected(signals.serving_stopped, stopped, "raw"),
    ):
        async with LifespanManager(middleware):
            assert await call(middleware) == [
                {"type": "http.response.start", "status": 204, "headers": []},
                {"type": "http.response.body", "body": b""},
            ]
            release.set()
            timeline.append("shutdown")
    assert timeline == ["serving_started", "shutdown", "drained", "serving_stopped"]
