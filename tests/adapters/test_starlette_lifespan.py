"""asignal.adapters.starlette's lifespan: serving_* signals, the app's background
runner, and background receivers with and without a lifespan."""

from __future__ import annotations

from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from asignal import signals
from asignal.adapters.starlette import install

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
