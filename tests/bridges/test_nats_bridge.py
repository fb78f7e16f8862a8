"""NatsBridge in one process, against a real nats-server: what a send publishes, what a
receiver sees, and the clear errors of bad input."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import datetime
from typing import Any

import anyio
import nats
import pytest

from asignal import Namespace
from asignal.bridges.nats import NatsBridge, NatsConnectError, RemoteSender
from examples.nats_server import NatsServer, free_port

from .conftest import wait_until

pytestmark = pytest.mark.anyio


class App:
    """A sender, as a web app would be."""


async def test_a_send_publishes_one_message_with_headers(nats_server: NatsServer) -> None:
    ns = Namespace()
    placed = ns.signal("order-placed")
    local: list[dict[str, Any]] = []
    placed.connect(lambda sender, **kw: local.append(kw), weak=False)
    async with NatsBridge.connect(nats_server.url) as bridge:
        bridge.forward(placed)
        placed.send(App(), order_id=1, items=["a", "b"])
        await placed.send_async(App(), order_id=2, items=[])
        # From a worker thread: the send is handed to the event loop's thread.
        await anyio.to_thread.run_sync(lambda: placed.send("shop", order_id=3, items=[]))
        assert await bridge.flush(10)
        assert bridge.stats.published == 3
        sub = await bridge.js.pull_subscribe("asignal.order-placed", stream="ASIGNAL")
        msgs = await sub.fetch(3, timeout=5)
    assert [m.data for m in msgs] == [
        b'{"order_id":1,"items":["a","b"]}',
        b'{"order_id":2,"items":[]}',
        b'{"order_id":3,"items":[]}',
    ]
    ids = [m.headers["Nats-Msg-Id"] for m in msgs]  # type: ignore[index]
    assert len(set(ids)) == 3
    for m in msgs:
        assert m.headers is not None
        assert m.headers["Asignal-Origin"] == bridge.origin
        assert m.headers["Content-Type"] == "application/json"
    assert [m.headers["Asignal-Sender"] for m in msgs if m.headers] == ["App", "App", "shop"]
    assert len(local) == 3  # local receivers still run, once each


async def test_broadcast_between_two_bridges_builds_a_remote_sender(
    nats_server: NatsServer,
) -> None:
    ns = Namespace()
    placed = ns.signal("order-placed")
    seen: list[tuple[Any, dict[str, Any]]] = []
    placed.connect(lambda sender, **kw: seen.append((sender, kw)), weak=False)
    async with (
        NatsBridge.connect(nats_server.url) as sending,
        NatsBridge.connect(nats_server.url) as receiving,
    ):
        await receiving.receive(placed)
        await receiving.client.flush()
        sending.forward(placed, sender_name="shop-api")
        placed.send(App(), order_id=7)
        await wait_until(
            lambda: len(seen) == 2,
            "the remote send",
            why=lambda: f"seen {seen}; {sending.stats}; {receiving.stats}",
        )
    local, (remote, kwargs) = seen
    assert local[0].__class__ is App
    assert isinstance(remote, RemoteSender)
    assert kwargs == {"order_id": 7}
    assert remote.app == "shop-api"
    assert remote.origin == sending.origin
    assert remote.message_id.startswith(sending.origin)
    assert remote.attempt == 1
    assert isinstance(remote.published, datetime)
    assert remote.subject == "asignal.order-placed"


async def test_non_json_kwargs_name_the_kwarg_and_the_signal(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    ns = Namespace()
    started = ns.signal("request-started")
    ran: list[str] = []
    started.connect(lambda sender, **kw: ran.append("receiver"), weak=False)

    class Request:
        path = "/login"

    async with NatsBridge.connect(nats_server.url) as bridge:
        bridge.forward(started)
        message = r"kwarg 'request' of signal 'request-started' cannot be sent as JSON"
        with pytest.raises(TypeError, match=message):
            started.send(App(), request=Request())
        with pytest.raises(TypeError, match=message):
            await started.send_async(App(), request=Request())
        assert ran == []  # the forwarder runs first: no receiver ran for a failed send
        with caplog.at_level(logging.ERROR, "asignal"):
            results = await started.send_async(App(), _errors="collect", request=Request())
        assert isinstance(results[0][1], TypeError)
        assert "request-started" in caplog.text
        assert "'request'" in caplog.text
        assert ran == ["receiver"]
        assert bridge.pending == 0
        assert bridge.stats.published == 0

        other = ns.signal("request-finished")
        bridge.forward(other, payload=lambda sender, *, request: {"path": request.path})
        other.send(App(), request=Request())
        assert await bridge.flush(10)
        sub = await bridge.js.pull_subscribe("asignal.request-finished", stream="ASIGNAL")
        [msg] = await sub.fetch(1, timeout=5)
    assert msg.data == b'{"path":"/login"}'


async def test_an_unreachable_server_fails_in_bounded_time() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(NatsConnectError, match=r"cannot reach a NATS server at .*running") as info:
        async with NatsBridge.connect(url, connect_timeout=0.5):
            pass
    assert info.value.reason == "unreachable"


async def test_a_wrong_token_is_refused_as_credentials(tmp_path: Any) -> None:
    server = NatsServer(tmp_path / "js", token="s3cret")
    server.start()
    try:
        with pytest.raises(NatsConnectError, match="refused the credentials") as info:
            async with NatsBridge.connect(server.url, token="wrong", connect_timeout=5):
                pass
        assert info.value.reason == "credentials"
        async with NatsBridge.connect(server.url, token="s3cret") as bridge:
            assert bridge.client.is_connected
    finally:
        server.cleanup()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_clearly() -> None:
    with pytest.raises(RuntimeError, match="needs asyncio, not trio: nats-py is asyncio-only"):
        async with NatsBridge.connect("nats://127.0.0.1:4222"):
            pass


async def test_broadcast_drops_garbage_and_goes_on(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    ns = Namespace()
    placed = ns.signal("order-placed")
    seen: list[dict[str, Any]] = []
    placed.connect(lambda sender, **kw: seen.append(kw), weak=False)
    nc = await nats.connect(nats_server.url)
    try:
        async with NatsBridge.connect(nats_server.url) as bridge:
            await bridge.receive(placed)
            await bridge.client.flush()
            with caplog.at_level(logging.ERROR, "asignal.bridges.nats"):
                for body in (b"\xff\xfe garbage", b"[1, 2]", b'{"_errors": "collect"}'):
                    await nc.publish("asignal.order-placed", body)
                await nc.publish("asignal.order-placed", b'{"order_id": 1}')
                await wait_until(lambda: seen == [{"order_id": 1}], "the good message")
            assert bridge.stats.malformed == 3
    finally:
        await nc.close()
    assert "not JSON" in caplog.text
    assert "JSON list, not an object" in caplog.text
    assert "'_errors' is not a keyword argument name" in caplog.text


async def test_sends_past_the_buffer_are_dropped_counted_and_logged(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    ns = Namespace()
    placed = ns.signal("order-placed")
    async with NatsBridge.connect(
        nats_server.url, max_buffer=5, publish_timeout=0.2, drain_timeout=0.5
    ) as bridge:
        bridge.forward(placed)
        nats_server.stop()
        with caplog.at_level(logging.ERROR, "asignal.bridges.nats"):
            for i in range(12):
                placed.send("shop", n=i)  # never raises, never waits
        # The first send may already be in flight; the buffer holds at most 5 more.
        assert bridge.stats.dropped >= 6
        assert "5 sends are buffered" in caplog.text
    assert bridge.stats.published == 0
    assert bridge.stats.dropped == 12


async def test_a_stream_with_other_subjects_is_refused(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        await nc.jetstream().add_stream(name="ASIGNAL", subjects=["other.>"])
        with pytest.raises(ValueError, match=r"'ASIGNAL' exists .* do not include 'asignal\.>'"):
            async with NatsBridge(nc):
                pass
        # Entering twice with the right subjects is fine: creation is idempotent.
        async with NatsBridge(nc, stream="S2", subject_prefix="app"):
            pass
        async with NatsBridge(nc, stream="S2", subject_prefix="app") as bridge:
            info = await bridge.js.stream_info("S2")
            assert info.config.subjects == ["app.>"]
        assert not nc.is_closed  # a client passed in is the caller's to close
    finally:
        await nc.close()


async def test_bad_names_are_refused(nats_server: NatsServer) -> None:
    ns = Namespace()
    async with NatsBridge.connect(nats_server.url) as bridge:
        with pytest.raises(ValueError, match="signal name 'has space' cannot be used"):
            bridge.forward(ns.signal("has space"))
        with pytest.raises(ValueError, match="group 'a b' cannot be used"):
            await bridge.receive(ns.signal("ok"), group="a b")
        with pytest.raises(ValueError, match="max_deliver must be at least 1"):
            await bridge.receive(ns.signal("ok"), group="g", max_deliver=0)


def test_import_asignal_imports_no_broker_client() -> None:
    code = (
        "import sys, asignal, asignal.signals; print(sorted(m for m in sys.modules if 'nats' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_what_only_the_publisher_finds_unencodable_is_dropped_and_logged(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    ns = Namespace()
    placed = ns.signal("order-placed")
    async with NatsBridge.connect(nats_server.url) as bridge:
        bridge.forward(placed, sender_name=lambda sender: f"shop-{sender}")
        with pytest.raises(TypeError, match="kwarg 'total' of signal 'order-placed'"):
            placed.send("a", total=float("nan"))  # not a plain kwarg: encoded in the send
        with caplog.at_level(logging.ERROR, "asignal.bridges.nats"):
            placed.send("b", note="\ud800")  # a lone surrogate is not UTF-8
            placed.send("c", note="fine")
            assert await bridge.flush(10)
        sub = await bridge.js.pull_subscribe("asignal.order-placed", stream="ASIGNAL")
        [msg] = await sub.fetch(1, timeout=5)
    assert "cannot encode it" in caplog.text
    assert bridge.stats.dropped == 1
    assert msg.data == b'{"note":"fine"}'
    assert msg.headers is not None
    assert msg.headers["Asignal-Sender"] == "shop-c"
