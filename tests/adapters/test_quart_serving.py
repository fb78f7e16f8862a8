"""Serving a real Quart app: ``serving_started`` / ``serving_stopped`` and
``got_serving_exception`` around Quart's lifespan, and background work: the adapter runs
a BackgroundRunner for the app's serving (drained before ``serving_stopped``), or one per
ASGI call when no lifespan runs, and no response waits for it. Over real HTTP (hypercorn
on 127.0.0.1) and Quart's test client."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import quart
from quart.testing.app import LifespanError

from asignal import NamedSignal, signals
from asignal._background import BackgroundRunner, current_runner, require_runner
from asignal.adapters.quart import install
from examples.serving import ServingError, serving

from .quart_app import SERVING_APP_CONTEXT, TRANSPORTS, Boom, make_app
from .recording import GUARD, Recorder

pytestmark = pytest.mark.anyio


# --- the lifespan ----------------------------------------------------------------------


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


# Overrides the anyio_backend fixture of tests/conftest.py: quart-trio's test harness
# (TrioTestApp) runs the block after a failed start-up and leaves its nursery open, so
# on trio a failing lifespan is tested through hypercorn only.
@pytest.mark.parametrize(
    ("anyio_backend", "transport_name", "failure"),
    [
        ("asyncio", "test_client", LifespanError),
        ("asyncio", "hypercorn", ServingError),
        ("trio", "hypercorn", ServingError),
    ],
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


@pytest.mark.parametrize(
    ("anyio_backend", "transport_name"),
    [("asyncio", "test_client"), ("asyncio", "hypercorn"), ("trio", "hypercorn")],
)
async def test_failing_shutdown(transport_name: str) -> None:
    app = make_app(failing_shutdown=True)
    install(app)
    recorder = Recorder(app, sync=True)
    try:
        if transport_name == "test_client":
            with pytest.raises(LifespanError):
                async with app.test_app():
                    recorder.connect()
        else:
            # hypercorn logs a failed shutdown and stops all the same.
            async with TRANSPORTS[transport_name](app):
                recorder.connect()
    finally:
        recorder.disconnect()

    assert recorder.names() == [*SERVING_APP_CONTEXT, "got_serving_exception"]
    error = recorder.one("got_serving_exception").kwargs["exception"]
    assert isinstance(error, Boom)
    assert str(error) == "shutdown failed"
    assert recorder.one("appcontext_tearing_down").kwargs == {"exc": error}


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


# --- background work -------------------------------------------------------------------


@contextlib.contextmanager
def in_background(
    sig: NamedSignal, work: Callable[..., Awaitable[Any]], sender: Any
) -> Iterator[None]:
    """``work`` as a background receiver of ``sig`` for the block:
    ``connect(background=True)`` where the engine has it, else a receiver that hands
    ``work`` to the current runner and returns at once, as ``background=True`` does."""
    try:
        sig.connect(work, sender=sender, weak=False, background=True)  # type: ignore[call-arg]
    except TypeError:

        def schedule(sender: Any, **kwargs: Any) -> None:
            runner = require_runner(f"background receiver {work.__qualname__}")
            call = functools.partial(work, sender, **kwargs)
            assert runner.schedule_nowait(call, name=work.__qualname__) is not None

        sig.connect(schedule, sender=sender, weak=False)
        try:
            yield
        finally:
            sig.disconnect(schedule)
        return
    try:
        yield
    finally:
        sig.disconnect(work)


@pytest.mark.parametrize("transport_name", list(TRANSPORTS))
async def test_the_response_does_not_wait_for_background_work(transport_name: str) -> None:
    app = make_app()
    install(app)
    read_the_response = anyio.Event()
    done: list[str] = []

    async def blocked(sender: Any, **extra: Any) -> None:
        # Released by the test only after it holds the response in its hands.
        await read_the_response.wait()
        done.append("background")

    with in_background(signals.request_finished, blocked, app):
        async with TRANSPORTS[transport_name](app) as transport:
            reply = await transport.get("/")
            done.append("response")
            read_the_response.set()

    assert (reply.status, reply.body) == (200, b"hello")
    # The shutdown drained the runner, so the background call did finish, after.
    assert done == ["response", "background"]


async def test_without_a_lifespan_background_work_runs_after_the_response() -> None:
    # Quart's test client without test_app(): no lifespan, so no serving runner. The
    # ASGI call gets a runner of its own; the response is sent before the background
    # work (blocked until then) finishes, and the call drains it before returning.
    app = make_app()
    install(app)
    sent = anyio.Event()
    order: list[str] = []

    async def blocked(sender: Any, **extra: Any) -> None:
        await sent.wait()
        order.append("background done")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "extensions": {},
    }
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    body = b""

    async def send(message: dict[str, Any]) -> None:
        nonlocal body
        if message["type"] == "http.response.body":
            body += message.get("body", b"")
            if not message.get("more_body", False):
                order.append("response sent")
                sent.set()

    with in_background(signals.request_finished, blocked, app), anyio.fail_after(GUARD):
        await app(scope, receive, send)

    assert body == b"hello"
    assert order == ["response sent", "background done"]


async def test_test_client_without_a_lifespan_runs_background_work() -> None:
    app = make_app()
    install(app)
    ran: list[tuple[str, str]] = []

    async def work(sender: Any, *, request: Any, **extra: Any) -> None:
        # The request's context, as it was at the send.
        ran.append((request.path, quart.request.path))

    with in_background(signals.request_finished, work, app):
        response = await app.test_client().get("/")
    assert response.status_code == 200
    assert ran == [("/", "/")]


async def test_shutdown_drains_then_sends_serving_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    # Roomy enough for the released call to finish on a loaded machine; the hanging one
    # is cancelled when it is over.
    install(app, drain_timeout=1.0)
    order: list[str] = []
    runners: list[BackgroundRunner] = []
    release = anyio.Event()

    async def pending(sender: Any, **extra: Any) -> None:
        await release.wait()
        order.append("pending completed")

    async def hanging(sender: Any, **extra: Any) -> None:
        try:
            await anyio.Event().wait()
        finally:
            order.append("hanging cancelled")

    def on_started(sender: Any, **extra: Any) -> None:
        runner = current_runner()
        assert runner is not None
        runners.append(runner)

    @app.after_serving
    async def release_pending() -> None:
        # Quart's own shutdown work is done; the drain follows.
        order.append("after_serving")
        release.set()

    def on_stopped(sender: Any, **extra: Any) -> None:
        order.append("serving_stopped")

    signals.serving_started.connect(on_started, sender=app)
    signals.serving_stopped.connect(on_stopped, sender=app)
    try:
        with (
            in_background(signals.request_finished, pending, app),
            in_background(signals.request_finished, hanging, app),
            caplog.at_level(logging.WARNING, logger="asignal"),
        ):
            async with (
                serving(app, "hypercorn") as served,
                httpx.AsyncClient(base_url=served.url) as http,
            ):
                assert (await http.get("/")).text == "hello"
    finally:
        signals.serving_started.disconnect(on_started)
        signals.serving_stopped.disconnect(on_stopped)

    assert order == ["after_serving", "pending completed", "hanging cancelled", "serving_stopped"]
    [runner] = runners
    assert runner.stats.completed == 1
    assert runner.stats.cancelled == 1
    assert runner.stats.scheduled == 2
    cancelled = [record for record in caplog.records if "hanging" in record.getMessage()]
    assert len(cancelled) == 1
    assert "drain" in cancelled[0].getMessage()


async def test_serving_stopped_has_a_runner_of_its_own() -> None:
    # The serving runner has drained when serving_stopped is sent; background work
    # started from it still runs, and is drained before the server is told shutdown
    # is complete.
    app = make_app()
    install(app)
    order: list[str] = []

    async def last_words() -> None:
        await anyio.lowlevel.checkpoint()
        order.append("background after serving_stopped")

    def on_stopped(sender: Any, **extra: Any) -> None:
        runner = current_runner()
        assert runner is not None
        runner.schedule_nowait(last_words, name="last_words")
        order.append("serving_stopped")

    signals.serving_stopped.connect(on_stopped, sender=app)
    try:
        async with app.test_app():
            pass
        order.append("shutdown complete")
    finally:
        signals.serving_stopped.disconnect(on_stopped)

    assert order == ["serving_stopped", "background after serving_stopped", "shutdown complete"]


async def test_each_app_schedules_on_its_own_runner() -> None:
    # Two apps served at once, in one process: the runner current in a request is the
    # one of that request's app, not whichever was entered last.
    apps = [make_app("a"), make_app("b")]
    serving_runners: dict[str, BackgroundRunner] = {}
    request_runners: dict[str, BackgroundRunner | None] = {}
    for app in apps:
        install(app)

    def on_started(sender: Any, **extra: Any) -> None:
        runner = current_runner()
        assert runner is not None
        serving_runners[sender.name] = runner

    def on_request(sender: Any, **extra: Any) -> None:
        request_runners[sender.name] = current_runner()

    for app in apps:
        signals.serving_started.connect(on_started, sender=app)
        signals.request_started.connect(on_request, sender=app)
    try:
        async with app_serving(apps[0]) as first, app_serving(apps[1]) as second:
            await first.get("/")
            await second.get("/")
    finally:
        signals.serving_started.disconnect(on_started)
        signals.request_started.disconnect(on_request)

    assert serving_runners["a"] is not serving_runners["b"]
    assert request_runners == serving_runners


def app_serving(app: quart.Quart) -> Any:
    return TRANSPORTS["hypercorn"](app)
