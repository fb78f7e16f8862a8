"""Faulty receivers on a real Quart app: raising, self-cancelling and hanging ones leave
every response and websocket exactly as it would be without them, and the installed
``timeout`` is one budget per request. Quart's test client and hypercorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import quart
import sniffio

from asignal import signals
from asignal.adapters._quart_budget import RequestBudget, request_budget
from asignal.adapters.quart import install

from .quart_app import REQUEST_SIGNALS, TRANSPORTS, WEBSOCKET_SIGNALS, Transport, make_app
from .recording import GUARD, Recorder

pytestmark = pytest.mark.anyio


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


def connect_to(app: quart.Quart, names: list[str], receiver: Any) -> None:
    for name in names:
        getattr(signals, name).connect(receiver, sender=app, weak=False)


def disconnect_from(names: list[str], receiver: Any) -> None:
    for name in names:
        getattr(signals, name).disconnect(receiver)


# --- raising receivers -----------------------------------------------------------------


async def broken_receiver(sender: Any, **extra: Any) -> None:
    raise ValueError("receiver is broken")


async def test_raising_receiver_changes_nothing_in_the_response(
    app: quart.Quart, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    baseline = await transport.raw_get("/")
    for name in REQUEST_SIGNALS:
        getattr(signals, name).connect(broken_receiver, sender=app)
    try:
        with caplog.at_level(logging.ERROR, logger="asignal"):
            raw = await transport.raw_get("/")
    finally:
        for name in REQUEST_SIGNALS:
            getattr(signals, name).disconnect(broken_receiver)

    assert raw.startswith((b"HTTP/1.1 200", b"200"))
    assert raw.endswith(b"hello")
    assert raw == baseline
    records = [record for record in caplog.records if record.name == "asignal"]
    assert len(records) == len(REQUEST_SIGNALS)
    for record in records:
        assert record.levelno >= logging.ERROR
        assert "broken_receiver" in record.getMessage()
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], ValueError)


@pytest.mark.parametrize("install_options", [{"timeout": 0.2}])
async def test_hanging_receiver_is_cut_off_by_the_timeout(
    app: quart.Quart, transport: Transport
) -> None:
    never = anyio.Event()
    cancelled: list[bool] = []

    async def hanging(sender: Any, **extra: Any) -> None:
        try:
            await never.wait()
        except BaseException:
            cancelled.append(True)
            raise

    signals.request_started.connect(hanging, sender=app)
    try:
        with anyio.fail_after(GUARD):
            reply = await transport.get("/")
    finally:
        signals.request_started.disconnect(hanging)

    assert (reply.status, reply.body) == (200, b"hello")
    assert cancelled == [True]


# --- receivers that raise a cancellation exception themselves ---------------------------


async def spent_cancellation() -> BaseException:
    """A cancellation exception nobody is cancelling us with: on asyncio a new
    ``CancelledError``; trio's ``Cancelled`` has no public constructor, so one caught
    from a scope of our own, already left."""
    if sniffio.current_async_library() != "trio":
        return asyncio.CancelledError("receiver gave up")
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.lowlevel.checkpoint()
        except anyio.get_cancelled_exc_class() as exc:
            return exc
    raise AssertionError("the scope was not cancelled")


def self_cancelling(spent: BaseException, *, after_a_step: bool = False) -> Any:
    """A receiver that raises ``spent`` itself: nobody cancelled the send, as when code
    mishandles a cancellation of its own or re-raises a stored one."""

    async def self_cancelling(sender: Any, **extra: Any) -> None:
        if after_a_step:
            await anyio.lowlevel.checkpoint()
        raise spent

    return self_cancelling


@pytest.fixture
async def spent() -> BaseException:
    return await spent_cancellation()


def self_cancel_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "asignal"
        and record.exc_info is not None
        and isinstance(record.exc_info[1], anyio.get_cancelled_exc_class())
    ]


@pytest.mark.parametrize("install_options", [{}, {"timeout": 0.2}])
@pytest.mark.parametrize("after_a_step", [False, True])
async def test_self_cancelling_receiver_changes_nothing_in_the_response(
    app: quart.Quart,
    transport: Transport,
    caplog: pytest.LogCaptureFixture,
    spent: BaseException,
    after_a_step: bool,
) -> None:
    receiver = self_cancelling(spent, after_a_step=after_a_step)
    baseline = await transport.raw_get("/")
    recorder = Recorder(app, sync=True).connect()
    connect_to(app, REQUEST_SIGNALS, receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="asignal"):
            raw = await transport.raw_get("/")
            # Twice: a connection (and, over HTTP, the server) survives it.
            again = await transport.raw_get("/")
    finally:
        disconnect_from(REQUEST_SIGNALS, receiver)
        recorder.disconnect()

    assert raw.startswith((b"HTTP/1.1 200", b"200"))
    assert raw.endswith(b"hello")
    assert raw == again == baseline
    # Every signal of both requests still reached the other receivers, in order.
    assert recorder.names() == REQUEST_SIGNALS * 2
    # Each failure is logged once, as what it is (the exception itself, named by its
    # receiver), never as a timeout.
    records = self_cancel_records(caplog)
    assert len(records) == 2 * len(REQUEST_SIGNALS)
    assert all(receiver.__name__ in record.getMessage() for record in records)
    assert not any("did not finish" in record.getMessage() for record in caplog.records)


async def test_self_cancelling_receiver_leaves_websockets_alone(
    app: quart.Quart, transport: Transport, caplog: pytest.LogCaptureFixture, spent: BaseException
) -> None:
    # Raising without suspending first: a client that closes after the echo makes
    # Quart cancel the connection's teardown for real, which must then propagate.
    receiver = self_cancelling(spent)
    recorder = Recorder(app, sync=True).connect()
    connect_to(app, WEBSOCKET_SIGNALS, receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="asignal"):
            assert await transport.echo("/ws", "ping") == "ping"
            await recorder.wait_for("appcontext_popped")
    finally:
        disconnect_from(WEBSOCKET_SIGNALS, receiver)
        recorder.disconnect()

    assert recorder.names() == WEBSOCKET_SIGNALS
    assert len(self_cancel_records(caplog)) == len(WEBSOCKET_SIGNALS)


@pytest.mark.parametrize("install_options", [{"errors": "raise"}])
async def test_under_raise_a_self_cancelling_receiver_is_not_hidden(
    app: quart.Quart, spent: BaseException
) -> None:
    # "raise" lets a receiver's exception reach Quart, as Quart's own receivers do; a
    # cancellation exception nobody asked for arrives as a RuntimeError naming the
    # receiver, so Quart handles it as the error it is (a 500), not as a cancellation.
    receiver = self_cancelling(spent)
    recorder = Recorder(app, sync=True).connect()
    signals.request_started.connect(receiver, sender=app)
    try:
        with anyio.fail_after(GUARD):
            response = await app.test_client().get("/")
    finally:
        signals.request_started.disconnect(receiver)
        recorder.disconnect()
    assert response.status_code == 500
    error = recorder.one("got_request_exception").kwargs["exception"]
    assert isinstance(error, RuntimeError)
    assert "self_cancelling raised" in str(error)
    assert error.__cause__ is spent


async def test_a_real_cancellation_still_propagates(app: quart.Quart) -> None:
    # The view of /slow hangs; cancelling the client's request cancels Quart's handler
    # while a receiver of ours is suspended in request_started: the cancellation must
    # reach Quart (which tears down with exc=CancelledError), not be collected.
    entered = anyio.Event()
    recorder = Recorder(app, sync=True).connect()

    async def suspended(sender: Any, **extra: Any) -> None:
        entered.set()
        await anyio.Event().wait()

    signals.request_started.connect(suspended, sender=app)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.test_client().get, "/slow")
            with anyio.fail_after(GUARD):
                await entered.wait()
            tg.cancel_scope.cancel()
    finally:
        signals.request_started.disconnect(suspended)
        recorder.disconnect()

    assert "request_finished" not in recorder.names()
    assert not app.config["SLOW_ENTERED"].is_set()  # the view never ran


# --- one budget per request -------------------------------------------------------------

BUDGET = 0.2
HELD_UP = ["request_started", "request_finished", "request_tearing_down"]


@pytest.mark.parametrize("install_options", [{"timeout": BUDGET}])
async def test_one_budget_across_the_requests_signals(
    app: quart.Quart, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    never = anyio.Event()
    # Per hanging receiver: the budget left when it started, and how it ended.
    left: dict[str, float | None] = {}
    ended: dict[str, str] = {}

    def hanging_on(name: str) -> Any:
        async def hanging(sender: Any, **extra: Any) -> None:
            state = request_budget.get()
            assert isinstance(state, RequestBudget)
            left[name] = state.budget.remaining()
            try:
                await never.wait()
            except anyio.get_cancelled_exc_class():
                ended[name] = "cancelled"
                raise

        return hanging

    receivers = {name: hanging_on(name) for name in HELD_UP}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, sender=app)
    try:
        with caplog.at_level(logging.ERROR, logger="asignal"), anyio.fail_after(GUARD):
            reply = await transport.get("/")
    finally:
        for name, receiver in receivers.items():
            getattr(signals, name).disconnect(receiver)

    assert (reply.status, reply.body) == (200, b"hello")
    # The first hanging receiver had the whole budget and spent it; the ones after it
    # found nothing left (a per-send timeout would have given each the whole of it).
    first = left["request_started"]
    assert first is not None
    assert 0 < first <= BUDGET
    # (The engine's own deadline may come a few microseconds before the budget's.)
    later = [left.get(name, 0.0) for name in HELD_UP[1:]]
    assert all(value is not None and value < BUDGET / 100 for value in later), later
    # Each one that started was cancelled; each one (started or not, as the engine
    # chooses for a send with nothing left) is logged as timed out.
    assert set(ended) == set(left)
    assert all(outcome == "cancelled" for outcome in ended.values())
    logged = [record.getMessage() for record in caplog.records if record.name == "asignal"]
    assert len(logged) == len(HELD_UP)
    for name, message in zip(HELD_UP, logged, strict=True):
        assert name.replace("_", "-") in message


@pytest.mark.parametrize("install_options", [{"timeout": BUDGET}])
async def test_time_outside_the_sends_is_not_charged(app: quart.Quart) -> None:
    # A view that takes longer than the whole budget leaves it untouched: only time in
    # the sends counts, so request_finished's receivers are not starved by a slow view.
    left: list[float | None] = []

    async def measure(sender: Any, **extra: Any) -> None:
        state = request_budget.get()
        assert isinstance(state, RequestBudget)
        left.append(state.budget.remaining())

    signals.request_finished.connect(measure, sender=app)

    @app.get("/sleepy")
    async def sleepy() -> str:
        # A slow view (not synchronisation: nothing waits for it but the client).
        await anyio.sleep(2 * BUDGET)
        return "done"

    try:
        reply = await app.test_client().get("/sleepy")
    finally:
        signals.request_finished.disconnect(measure)

    assert reply.status_code == 200
    [remaining] = left
    assert remaining is not None
    assert remaining > BUDGET / 2


async def test_without_a_timeout_no_budget_is_kept(app: quart.Quart) -> None:
    seen: list[object] = []

    async def look(sender: Any, **extra: Any) -> None:
        seen.append(request_budget.get())

    signals.request_finished.connect(look, sender=app)
    try:
        assert (await app.test_client().get("/")).status_code == 200
    finally:
        signals.request_finished.disconnect(look)
    assert seen == [None]


@pytest.mark.parametrize("install_options", [{"timeout": BUDGET}])
async def test_a_send_inside_a_send_is_charged_once(app: quart.Quart) -> None:
    # A request_finished receiver that renders a template makes Quart send
    # template_rendered from inside request_finished's send; after a slow view, that
    # nested send must neither restart nor stretch the request's budget.
    left: list[float | None] = []

    async def render(sender: Any, **extra: Any) -> None:
        await quart.render_template("hello.html", name="nested")

    async def measure(sender: Any, **extra: Any) -> None:
        state = request_budget.get()
        assert isinstance(state, RequestBudget)
        left.append(state.budget.remaining())

    @app.get("/sleepy")
    async def sleepy() -> str:
        await anyio.sleep(2 * BUDGET)  # a slow view, as above
        return "done"

    signals.request_finished.connect(render, sender=app)
    signals.template_rendered.connect(measure, sender=app)
    signals.request_tearing_down.connect(measure, sender=app)
    try:
        reply = await app.test_client().get("/sleepy")
    finally:
        signals.request_finished.disconnect(render)
        signals.template_rendered.disconnect(measure)
        signals.request_tearing_down.disconnect(measure)

    assert reply.status_code == 200
    assert len(left) == 2
    for remaining in left:
        assert remaining is not None
        assert 0 < remaining <= BUDGET
