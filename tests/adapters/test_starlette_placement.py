"""SignalMiddleware placed the three ways Starlette users place middleware gives the same
signals, in the same order, with the application as sender: ``install(app)``,
``Starlette(middleware=[Middleware(SignalMiddleware)])`` and
``app.add_middleware(SignalMiddleware, sender=app)``, on Starlette and on FastAPI, served
with a lifespan (the middleware installs the app at start-up) and without one (it
installs on the first request, which it still reports in full)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Message

from asignal.adapters.starlette import SignalMiddleware, StarletteIntegration, install

from .starlette_apps import make_app, make_fastapi_app
from .starlette_clients import (
    HTTP_500_ORDER,
    HTTP_ORDER,
    Client,
    HttpxClient,
    recording,
    serve_over,
)

pytestmark = pytest.mark.anyio

#: framework -> (app factory taking extra middleware, a plain path, a path that raises)
FRAMEWORKS: dict[str, tuple[Callable[..., Starlette], str, str]] = {
    "starlette": (make_app, "/plain", "/boom"),
    "fastapi": (make_fastapi_app, "/items/a", "/fail"),
}


def placed(framework: str, placement: str) -> Starlette:
    make = FRAMEWORKS[framework][0]
    if placement == "install":
        app = make()
        install(app)
    elif placement == "middleware":
        app = make(middleware=[Middleware(SignalMiddleware)])
    else:
        app = make()
        app.add_middleware(SignalMiddleware, sender=app)
    return app


@asynccontextmanager
async def without_lifespan(app: Any, backend: str) -> AsyncIterator[Client]:
    """httpx's ASGITransport alone: the first request is the app's first call."""
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield HttpxClient(client)


SERVE: dict[str, Callable[[str], Callable[[Any], AbstractAsyncContextManager[Client]]]] = {
    "lifespan": lambda backend: serve_over("asgi", backend),
    "no lifespan": lambda backend: lambda app: without_lifespan(app, backend),
    "uvicorn": lambda backend: serve_over("uvicorn", backend),
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("placement", ["install", "middleware", "add_middleware"])
@pytest.mark.parametrize(
    ("serving", "anyio_backend"),
    [
        ("lifespan", "asyncio"),
        ("lifespan", "trio"),
        ("no lifespan", "asyncio"),
        ("no lifespan", "trio"),
        ("uvicorn", "asyncio"),
    ],
)
async def test_every_placement_sends_what_install_sends(
    framework: str, placement: str, serving: str, anyio_backend: str
) -> None:
    app = placed(framework, placement)
    _, ok_path, failing_path = FRAMEWORKS[framework]
    with recording(app) as rec:
        async with SERVE[serving](anyio_backend)(app) as client:
            # The first request first: without a lifespan it is the installing call.
            failed = await client.request("GET", failing_path)
            await rec.settled()
            ok = await client.request("GET", ok_path)
            await rec.settled(2)

    assert failed.status == 500
    assert ok.status in (200, 404)
    assert rec.names() == HTTP_500_ORDER + HTTP_ORDER
    assert all(seen.sender is app for seen in rec.seen)
    finished = [seen.kwargs["response"] for seen in rec.seen if seen.name == "request_finished"]
    assert [response.status_code for response in finished] == [500, ok.status]
    assert isinstance(getattr(app, "_asignal_installation", None), StarletteIntegration)
    if serving != "no lifespan":
        assert rec.names(lifespan=True)[0] == "serving_started"
        assert rec.names(lifespan=True)[-1] == "serving_stopped"


async def start_up(app: Any) -> None:
    """What a server does first: the lifespan's start-up message, to the app."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)


async def test_placed_middleware_with_a_foreign_sender_is_refused_at_start_up() -> None:
    app = make_app(middleware=[Middleware(SignalMiddleware, sender="someone else")])
    with pytest.raises(ValueError, match=r"sender='someone else'.*install\(app\)"):
        await start_up(app)


async def test_placed_middleware_and_install_with_other_options_are_refused() -> None:
    app = make_app(middleware=[Middleware(SignalMiddleware, timeout=1)])
    install(app, timeout=2)
    with pytest.raises(ValueError, match=r"already installed.*timeout=2\.0 -> 1\.0"):
        await start_up(app)


async def test_placed_middleware_and_install_with_the_same_options_report_once() -> None:
    app = make_app(middleware=[Middleware(SignalMiddleware, timeout=1)])
    install(app, timeout=1)
    with recording(app) as rec:
        async with serve_over("asgi", "asyncio")(app) as client:
            await client.request("GET", "/plain")
    assert rec.names() == HTTP_ORDER
