"""asignal.adapters.starlette's templates and flash on a real Starlette app."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from asignal import signals
from asignal.adapters.starlette import flash, get_flashed_messages, install

from .starlette_apps import make_app
from .starlette_clients import (
    Serve,
    connected,
    over_transports,
    recording,
    serve_over,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def serve(transport: str, anyio_backend: str) -> Serve:
    return serve_over(transport, anyio_backend)


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


def test_get_flashed_messages_is_typed_by_with_categories() -> None:
    """The overloads let a checker see ``list[str]`` or ``list[tuple[str, str]]``."""
    from mypy import api

    code = (
        "from starlette.requests import Request\n"
        "from asignal.adapters.starlette import get_flashed_messages\n"
        "def messages(request: Request) -> list[str]:\n"
        "    return get_flashed_messages(request)\n"
        "def pairs(request: Request) -> list[tuple[str, str]]:\n"
        "    return get_flashed_messages(request, with_categories=True)\n"
        "def wrong(request: Request) -> list[str]:\n"
        "    return get_flashed_messages(request, True)\n"
    )
    stdout, _, status = api.run(["--strict", "--no-incremental", "-c", code])
    assert status == 1, stdout
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, stdout
    assert errors[0].startswith("<string>:8:"), stdout
