"""The trace crosses the broker: a remote receiver's spans continue the sender's trace
(W3C trace context in the message headers), with the real SDK and a real nats-server."""

from __future__ import annotations

from typing import Any

import pytest

from asignal import Namespace
from asignal.bridges.nats import NatsBridge, RemoteSender
from examples.nats_server import NatsServer

from ..contrib.conftest import Telemetry, telemetry
from .conftest import wait_until

pytestmark = pytest.mark.anyio

__all__ = ["telemetry"]  # the fixture, imported for this module's tests


class App:
    """A sender, as a web app would be."""


async def test_a_remote_send_continues_the_senders_trace(
    nats_server: NatsServer, telemetry: Telemetry
) -> None:
    ns = Namespace()
    placed = ns.signal("order-placed")
    remote: list[RemoteSender] = []

    def on_placed(sender: Any, **kwargs: Any) -> None:
        if isinstance(sender, RemoteSender):
            remote.append(sender)

    placed.connect(on_placed, weak=False)
    tracer = telemetry.tracer_provider.get_tracer("test")
    async with (
        NatsBridge.connect(nats_server.url) as sending,
        NatsBridge.connect(nats_server.url) as receiving,
    ):
        await receiving.receive(placed)
        await receiving.client.flush()
        sending.forward(placed)
        with tracer.start_as_current_span("checkout") as outer:
            placed.send(App(), order_id=7)
        await wait_until(lambda: bool(remote), "the remote send")
    [msg] = remote
    trace_id = outer.get_span_context().trace_id
    sends = [s for s in telemetry.spans() if s.name == "asignal.send order-placed"]
    assert len(sends) == 2
    assert all(s.context is not None and s.context.trace_id == trace_id for s in sends)
    [local] = [
        s
        for s in sends
        if s.parent is not None and s.parent.span_id == outer.get_span_context().span_id
    ]
    [far] = [s for s in sends if s is not local]
    # The remote send's parent is the forwarding receiver's span, in the sending process.
    [forwarder] = [s for s in telemetry.children(local) if "NatsBridge.forward" in s.name]
    assert far.parent is not None
    assert forwarder.context is not None
    assert far.parent.span_id == forwarder.context.span_id
    assert far.parent.is_remote
    assert msg.message_id.startswith(sending.origin)
