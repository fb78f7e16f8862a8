"""A streaming response goes out chunk by chunk through the middleware: nothing buffers."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message

from asignal import signals
from asignal.adapters.starlette import install
from examples.serving import Server, serving

from .recording import GUARD
from .starlette_apps import STREAM_CHUNKS, make_app
from .starlette_clients import connected, http_scope, receive_nothing

pytestmark = pytest.mark.anyio

over_servers = pytest.mark.parametrize(
    ("server", "anyio_backend"),
    [("uvicorn", "asyncio"), ("hypercorn", "asyncio"), ("hypercorn", "trio")],
    ids=["uvicorn", "hypercorn-asyncio", "hypercorn-trio"],
)


# --- streaming ----------------------------------------------------------------------------


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
        await app(http_scope("/stream"), receive_nothing, send)

    assert chunks == list(STREAM_CHUNKS)
    assert sorted(timeline[:3]) == [f"request_finished:{i}" for i in range(3)]
    assert timeline[3:] == ["start", "chunk:1", "chunk:2", "chunk:3"]


@over_servers
async def test_streaming_response_streams_chunk_by_chunk_over_http(server: Server) -> None:
    app = make_app()
    install(app)
    gates = stream_gates(app)
    timeline: list[str] = []
    chunks: list[bytes] = []
    with three_finished_receivers(app, timeline):
        async with (
            serving(app, server) as served,
            httpx.AsyncClient() as client,
            client.stream("GET", f"{served.url}/stream") as response,
        ):
            timeline.append("start")
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
                gates[len(chunks) - 1].set()

    assert chunks == list(STREAM_CHUNKS)
    assert sorted(timeline[:3]) == [f"request_finished:{i}" for i in range(3)]
    assert timeline[3] == "start"
