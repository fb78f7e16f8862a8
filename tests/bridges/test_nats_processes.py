"""The bridge across real OS processes: workers run ``python -m asignal.bridges.nats``
(on :mod:`tests.bridges.worker_module`) against a real nats-server; this process
forwards. Each worker appends one JSON line per receiver call; tests count those by
message id."""

from __future__ import annotations

import collections
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from asignal.bridges.nats import NatsBridge
from examples.nats_server import NatsServer, free_port

from .conftest import ROOT, Worker, wait_until
from .worker_module import event

pytestmark = pytest.mark.anyio

SUBJECT = "asignal.bridge-test-event"
#: Consumer name of group "audit" for the test signal.
AUDIT = "audit-bridge-test-event"


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["id"] for row in rows]


async def consumer_info(server: NatsServer, durable: str) -> Any:
    nc = await nats.connect(server.url)
    try:
        return await nc.jetstream().consumer_info("ASIGNAL", durable)
    finally:
        await nc.close()


async def test_broadcast_reaches_every_process_once(
    nats_server: NatsServer, workers: Callable[..., Worker]
) -> None:
    receivers = [await workers(f"b{i}").ready() for i in range(3)]
    local: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        local.append(sender)

    event.connect(receiver, weak=False)
    try:
        async with NatsBridge.connect(nats_server.url) as bridge:
            # This process receives too: its own forwarded sends must not come back.
            await bridge.receive(event)
            bridge.forward(event, sender_name="web")
            for i in range(30):
                if i % 2:
                    event.send("app", n=i)
                else:
                    await event.send_async("app", n=i)
            assert await bridge.flush(10)
            await wait_until(
                lambda: all(len(w.lines()) >= 30 for w in receivers), "30 messages per worker"
            )
            sent = bridge.origin
    finally:
        event.disconnect(receiver)
    assert local == ["app"] * 30  # once per send, never again from the broker
    for worker in receivers:
        rows = worker.lines()
        assert sorted(r["kwargs"]["n"] for r in rows) == list(range(30))
        assert len(set(ids(rows))) == 30
        assert {(r["app"], r["origin"], r["attempt"]) for r in rows} == {("web", sent, 1)}
    for worker in receivers:
        assert await worker.terminate() == 0
        assert len(worker.lines()) == 30  # nothing more arrived


async def test_work_queue_handles_each_of_1000_messages_once(
    nats_server: NatsServer, workers: Callable[..., Worker]
) -> None:
    group = [await workers(f"w{i}", "--group", "audit", "--batch", "8").ready() for i in range(2)]
    async with NatsBridge.connect(nats_server.url) as bridge:
        bridge.forward(event)
        for i in range(1000):
            event.send("app", n=i)
        assert await bridge.flush(30)
        assert bridge.stats.published == 1000

        def handled() -> list[dict[str, Any]]:
            return [row for w in group for row in w.lines()]

        await wait_until(lambda: len({r["id"] for r in handled()}) == 1000, "1000 handled")
    for worker in group:
        assert await worker.terminate() == 0
    rows = handled()
    counts = collections.Counter(ids(rows))
    assert len(counts) == 1000
    assert max(counts.values()) == 1, [i for i, c in counts.items() if c > 1][:5]
    assert sorted(r["kwargs"]["n"] for r in rows) == list(range(1000))
    assert all(w.lines() for w in group), "both workers of the group took a share"
    info = await consumer_info(nats_server, AUDIT)
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


async def test_a_killed_worker_s_messages_go_to_the_other(
    nats_server: NatsServer, workers: Callable[..., Worker]
) -> None:
    args = ("--group", "audit", "--ack-wait", "1", "--timeout", "600")
    holder = await workers("holder", *args, mode="hold").ready()
    async with NatsBridge.connect(nats_server.url) as bridge:
        bridge.forward(event)
        for i in range(20):
            event.send("app", n=i)
        assert await bridge.flush(10)
    # The holder's receivers never return, so it never fetches again after its first
    # batch: what it holds is what that batch brought.
    await wait_until(lambda: len(holder.lines("held")) >= 1, "the holder to hold messages")
    other = await workers("other", *args).ready()
    holder.kill()  # SIGKILL: no drain, no ack, no nak
    held = set(ids(holder.lines("held")))
    await wait_until(lambda: len(set(ids(other.lines()))) == 20, "the other worker to get 20")
    assert await other.terminate() == 0
    got = other.lines()
    assert len(got) == 20  # each once
    assert sorted(r["kwargs"]["n"] for r in got) == list(range(20))
    # Every message the holder held came back, delivered a second time.
    redelivered = {r["id"] for r in got if r["attempt"] >= 2}
    assert held <= redelivered, held - redelivered


@pytest.mark.slow
async def test_a_server_restart_loses_nothing_and_stores_no_duplicate(
    nats_server: NatsServer, workers: Callable[..., Worker]
) -> None:
    worker = await workers("w", "--group", "audit").ready()
    async with NatsBridge.connect(
        nats_server.url,
        publish_timeout=0.5,
        retry_backoff=(0.05, 0.5),
        reconnect_time_wait=0.1,
        max_reconnect_attempts=-1,
    ) as bridge:
        bridge.forward(event)
        for i in range(50):
            event.send("app", n=i)
        await wait_until(lambda: len(worker.lines()) >= 10, "the first messages handled")
        nats_server.stop()
        for i in range(50, 100):
            event.send("app", n=i)  # buffered: the server is down
        assert bridge.pending > 0
        nats_server.start()  # same port, same store
        assert await bridge.flush(30)
        await wait_until(lambda: len(set(ids(worker.lines()))) == 100, "all 100 handled")
        info = await bridge.js.stream_info("ASIGNAL")
    assert await worker.terminate() == 0
    assert info.state.messages == 100  # retried publishes were de-duplicated
    rows = worker.lines()
    assert sorted({r["kwargs"]["n"] for r in rows}) == list(range(100))
    # A message handled twice can only be one whose ack the restart lost: redelivered.
    counts = collections.Counter(ids(rows))
    for msg_id in (i for i, count in counts.items() if count > 1):
        assert max(r["attempt"] for r in rows if r["id"] == msg_id) >= 2, msg_id


async def test_a_failing_receiver_is_retried_then_dead_lettered(
    nats_server: NatsServer, workers: Callable[..., Worker]
) -> None:
    worker = await workers(
        "w", "--group", "audit", "--max-deliver", "3", "--backoff", "0.05", mode="fail"
    ).ready()
    async with NatsBridge.connect(nats_server.url) as bridge:
        bridge.forward(event)
        event.send("app", n=1)
        assert await bridge.flush(10)
        await wait_until(lambda: "dead-lettered" in worker.logs(), "the dead letter")
        dead = await bridge.js.get_last_msg("ASIGNAL", "asignal._dead.bridge-test-event")
    assert await worker.terminate() == 0
    rows = worker.lines()
    assert [r["attempt"] for r in rows] == [1, 2, 3]
    assert len(set(ids(rows))) == 1
    assert dead.data == b'{"n":1}'
    assert dead.headers is not None
    assert dead.headers["Nats-Msg-Id"] == f"{rows[0]['id']}.dead"
    assert "receiver failed on attempt 3" in dead.headers["Asignal-Error"]
    logs = worker.logs()
    assert "failed on attempt 1 of 3" in logs
    assert "failed 3 times" in logs
    info = await consumer_info(nats_server, AUDIT)
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


async def test_garbage_is_terminated_and_the_worker_goes_on(
    nats_server: NatsServer, workers: Callable[..., Worker]
) -> None:
    worker = await workers("w", "--group", "audit", "--ack-wait", "1").ready()
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        for body in (b"\x00\xff not json", b'"a string"', b'{"_timeout": 0}', b'{"n": 1}'):
            await js.publish(SUBJECT, body)
    finally:
        await nc.close()
    await wait_until(lambda: len(worker.lines()) == 1, "the good message")
    await wait_until(lambda: worker.logs().count("terminated malformed") == 3, "3 logged")
    assert await worker.terminate() == 0
    assert [r["kwargs"] for r in worker.lines()] == [{"n": 1}]
    info = await consumer_info(nats_server, AUDIT)
    assert info.num_ack_pending == 0
    assert info.num_redelivered == 0  # terminated, never redelivered


async def test_sigterm_drains_in_flight_messages_and_exits_0(
    nats_server: NatsServer, workers: Callable[..., Worker]
) -> None:
    worker = await workers("w", "--group", "audit", "--batch", "4", mode="slow").ready()
    async with NatsBridge.connect(nats_server.url) as bridge:
        bridge.forward(event)
        for i in range(40):
            event.send("app", n=i)
        assert await bridge.flush(10)
    await wait_until(lambda: len(worker.lines("start")) >= 1, "a message in flight")
    assert await worker.terminate() == 0
    started, ended = ids(worker.lines("start")), ids(worker.lines("end"))
    assert started
    assert sorted(started) == sorted(ended)  # what was in hand finished
    assert len(started) < 40  # it stopped fetching
    info = await consumer_info(nats_server, AUDIT)
    assert info.num_ack_pending == 0  # and was acked
    assert info.num_pending == 40 - len(started)
    assert "drained; exiting" in worker.logs()


def test_the_worker_names_what_is_wrong(nats_server: NatsServer, tmp_path: Path) -> None:
    def worker(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "asignal.bridges.nats", "--connect-timeout", "1", *args]
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)

    missing = worker("--servers", nats_server.url, "tests.bridges.no_such_module")
    assert missing.returncode == 2
    assert "cannot import 'tests.bridges.no_such_module'" in missing.stderr
    empty = worker("--servers", nats_server.url, "tests.bridges.conftest")
    assert empty.returncode == 2
    assert "declares nothing to receive: define RECEIVE" in empty.stderr
    down = worker("--servers", f"nats://127.0.0.1:{free_port()}", "tests.bridges.worker_module")
    assert down.returncode == 3
    assert "cannot reach a NATS server" in down.stderr
