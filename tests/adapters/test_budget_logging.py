"""How both adapters log the receivers that a request's time budget cuts off, on real
Starlette and Quart apps (in-process and on real servers, asyncio and trio).

One error record per send, naming every receiver cut and the signal, and saying whether
the budget ran out during that send or was already spent: once a hang has spent it, every
later send of the request cuts its suspending receivers at once, and a record per
receiver made dozens per request (some 52 000 per 1 000 requests in the soak). A
receiver's failure beside them keeps its own record; a receiver's own ``timeout`` too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import quart

from asignal import NamedSignal, signals
from asignal.adapters.quart import install as install_quart
from asignal.adapters.starlette import install as install_starlette

from .quart_app import TRANSPORTS
from .quart_app import make_app as make_quart_app
from .recording import GUARD
from .starlette_apps import make_app as make_starlette_app
from .starlette_clients import Serve, connected, over_transports, serve_over

pytestmark = pytest.mark.anyio

#: The installed ``timeout`` (seconds): a hang on the first signal spends all of it.
BUDGET = 0.05
#: How many receivers of request_finished the spent budget cuts off.
CUT = 3


@pytest.fixture
def serve(transport: str, anyio_backend: str) -> Serve:
    return serve_over(transport, anyio_backend)


def hanging(name: str) -> Any:
    """A coroutine receiver named ``name`` that never finishes on its own."""

    async def hang(sender: Any, **extra: Any) -> None:
        await anyio.sleep_forever()

    hang.__name__ = hang.__qualname__ = name
    return hang


def sync_broken(sender: Any, **extra: Any) -> None:
    raise RuntimeError("sync receiver failed")


@contextlib.contextmanager
def faults(app: Any, **own: Any) -> Iterator[None]:
    """On ``request_started`` a hang that spends the budget and a sync receiver that
    raises; on ``request_finished`` :data:`CUT` hangs. (A sync receiver on a spent budget
    runs on asyncio and is cut unstarted on trio: the engine's way, not checked here.)
    Only requests send these two signals (Quart pushes app contexts outside them)."""
    plan: list[tuple[NamedSignal, Any]] = [
        (signals.request_started, hanging("spender")),
        (signals.request_started, sync_broken),
    ]
    plan += [(signals.request_finished, hanging(f"cut_{i}")) for i in range(CUT)]
    with contextlib.ExitStack() as stack:
        for signal, receiver in plan:
            stack.enter_context(connected(signal, receiver, app))
        yield


def asignal_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "asignal"]


def check_records(messages: list[str]) -> None:
    """One timeout record per send, naming every receiver cut off and the signal; the
    failure beside them on a record of its own."""
    timeouts = [message for message in messages if "did not finish" in message]
    spending = [message for message in timeouts if "'request-started'" in message]
    cut = [message for message in timeouts if "'request-finished'" in message]
    assert sorted(timeouts) == sorted(spending + cut), timeouts
    # The send that spent the budget: its receiver ran until the budget was gone.
    assert len(spending) == 1, spending
    assert "receiver tests.adapters.test_budget_logging.spender of signal" in spending[0]
    assert f"within the {BUDGET:g} s left of the request's time budget" in spending[0]
    # The next send found it spent: one record for every receiver it cut.
    assert len(cut) == 1, cut
    names = ", ".join(f"tests.adapters.test_budget_logging.cut_{i}" for i in range(CUT))
    assert f"receivers {names} of signal 'request-finished' cut off" in cut[0]
    assert f"time budget (timeout={BUDGET:g} s) being spent before this send" in cut[0]
    # The failure in the send that timed out keeps its own record (and traceback).
    failures = [message for message in messages if "sync_broken" in message]
    assert failures == [
        "receiver tests.adapters.test_budget_logging.sync_broken of signal "
        "'request-started' raised RuntimeError"
    ]


@over_transports
async def test_starlette_logs_one_record_per_send_naming_every_receiver_cut(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_starlette_app()
    install_starlette(app, timeout=BUDGET)
    with caplog.at_level(logging.ERROR, logger="asignal"), faults(app):
        async with serve(app) as client:
            reply = await client.request("GET", "/plain")
        # The server has shut down, its runner drained: every send of the request is over.

    assert (reply.status, reply.body) == (200, b"hello")
    check_records(asignal_messages(caplog))


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_quart_logs_one_record_per_send_naming_every_receiver_cut(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    app: quart.Quart = make_quart_app()
    install_quart(app, timeout=BUDGET)
    with caplog.at_level(logging.ERROR, logger="asignal"), faults(app):
        async with TRANSPORTS[transport](app) as client:
            with anyio.fail_after(GUARD):
                reply = await client.get("/")
        # Out of the block the app has shut down: every send of the request is over.

    assert (reply.status, reply.body) == (200, b"hello")
    check_records(asignal_messages(caplog))


@over_transports
async def test_a_receivers_own_timeout_keeps_a_record_of_its_own(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    # Its own deadline, not the request's budget: the engine's record, as for any send.
    app = make_starlette_app()
    install_starlette(app, timeout=GUARD)
    with (
        caplog.at_level(logging.ERROR, logger="asignal"),
        connected(signals.request_started, hanging("own"), app, timeout=0.01),
    ):
        async with serve(app) as client:
            reply = await client.request("GET", "/plain")

    assert (reply.status, reply.body) == (200, b"hello")
    assert asignal_messages(caplog) == [
        "receiver tests.adapters.test_budget_logging.own of signal 'request-started' "
        "did not finish within 0.01 s"
    ]


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_a_send_outside_requests_logs_one_record_too(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Quart pushes app contexts outside requests (before_serving, after_serving): those
    # sends have the whole timeout each, and what it cuts off is one record per send.
    app: quart.Quart = make_quart_app()
    install_quart(app, timeout=BUDGET)
    with contextlib.ExitStack() as stack:
        stack.enter_context(caplog.at_level(logging.ERROR, logger="asignal"))
        for i in range(CUT):
            stack.enter_context(connected(signals.appcontext_pushed, hanging(f"cut_{i}"), app))
        async with TRANSPORTS[transport](app):
            pass

    messages = asignal_messages(caplog)
    names = ", ".join(f"tests.adapters.test_budget_logging.cut_{i}" for i in range(CUT))
    one = (
        f"receivers {names} of signal 'appcontext-pushed' cut off: did not finish within "
        f"{BUDGET:g} s"
    )
    # One app context at start-up, one at shutdown.
    assert messages == [one, one]
