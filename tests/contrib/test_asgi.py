"""Receivers' spans nest under the request's server span: a real Starlette app (uvicorn)
and a real Quart app (hypercorn), each wrapped in opentelemetry-instrumentation-asgi's
``OpenTelemetryMiddleware`` and served over real HTTP on 127.0.0.1 by
``examples.serving``. The servers run on asyncio only."""

from __future__ import annotations

from typing import Any, Literal

import anyio
import httpx
import pytest
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from quart import Quart
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asignal import signals
from asignal.adapters import quart as quart_adapter
from asignal.adapters import starlette as starlette_adapter
from asignal.contrib import opentelemetry as asignal_otel
from examples.serving import serve

from .conftest import Telemetry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Boom(Exception):
    """Raised by ``/boom``, unhandled."""


def starlette_app() -> Starlette:
    async def index(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    async def boom(request: Request) -> PlainTextResponse:
        raise Boom("unhandled")

    app = Starlette(routes=[Route("/", index), Route("/boom", boom)])
    starlette_adapter.install(app)
    return app


def quart_app() -> Quart:
    app = Quart("otel-test")

    @app.get("/")
    async def index() -> str:
        return "hello"

    @app.get("/boom")
    async def boom() -> str:
        raise Boom("unhandled")

    quart_adapter.install(app)
    return app


class ServerSpansEnded(SpanProcessor):
    """Sets an event when a server span ends: the request is over for the tracer."""

    def __init__(self) -> None:
        self.ended = anyio.Event()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is SpanKind.SERVER:
            self.ended.set()


async def on_exception(sender: Any, **kwargs: Any) -> None:
    await anyio.sleep(0)


async def on_finished(sender: Any, **kwargs: Any) -> None:
    await anyio.sleep(0)


def ancestry(t: Telemetry, span: ReadableSpan) -> list[ReadableSpan]:
    by_id = {s.context.span_id: s for s in t.spans() if s.context is not None}
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


@pytest.mark.parametrize("framework", ["starlette", "quart"])
async def test_receiver_spans_nest_under_the_server_span(
    telemetry: Telemetry, framework: Literal["starlette", "quart"]
) -> None:
    app: Any = starlette_app() if framework == "starlette" else quart_app()
    ended = ServerSpansEnded()
    telemetry.tracer_provider.add_span_processor(ended)
    wrapped = OpenTelemetryMiddleware(app, tracer_provider=telemetry.tracer_provider)
    server: Literal["uvicorn", "hypercorn"] = "uvicorn" if framework == "starlette" else "hypercorn"
    with (
        signals.got_request_exception.connected_to(on_exception, sender=app),
        signals.request_finished.connected_to(on_finished, sender=app),
    ):
        async with (
            serve({framework: (wrapped, server)}) as served,
            httpx.AsyncClient(base_url=served[framework].url) as client,
        ):
            with anyio.fail_after(10):
                response = await client.get("/boom")
                assert response.status_code == 500
                await ended.ended.wait()

    [server_span] = [s for s in telemetry.spans() if s.kind is SpanKind.SERVER]
    for signal, receiver in [
        (signals.got_request_exception.name, on_exception),
        (signals.request_finished.name, on_finished),
    ]:
        span = telemetry.span(f"asignal.receiver {receiver.__module__}.{receiver.__qualname__}")
        chain = ancestry(telemetry, span)
        assert [s.name for s in chain[:1]] == [f"asignal.send {signal}"], framework
        assert server_span in chain, (framework, [s.name for s in chain])
        assert span.context is not None
        assert server_span.context is not None
        assert span.context.trace_id == server_span.context.trace_id
        assert dict(chain[0].attributes or {})["asignal.errors"] == "collect"
    assert server_span.status.status_code is StatusCode.ERROR


async def test_after_uninstrument_no_spans(telemetry: Telemetry) -> None:
    app = starlette_app()
    asignal_otel.uninstrument()
    with signals.request_finished.connected_to(on_finished, sender=app):
        async with (
            serve({"app": (app, "uvicorn")}) as served,
            httpx.AsyncClient(base_url=served["app"].url) as client,
        ):
            with anyio.fail_after(10):
                response = await client.get("/")
    assert response.text == "hello"
    assert telemetry.spans() == []
