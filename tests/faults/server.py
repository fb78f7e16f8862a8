"""The server process of a fault run: ``python -m tests.faults.server --app NAME ...``.

It builds a fresh app (:data:`tests.faults.apps.APPS`), installs asignal with the budget,
connects the faulty receivers, serves the app on 127.0.0.1 with
:func:`examples.serving.serving` (uvicorn, or hypercorn on asyncio or trio), prints
``PORT <n>`` once the lifespan start-up has completed, serves until its stdin closes,
shuts down (ASGI lifespan included), and prints one line ``REPORT <json>``: the
receivers' calls, the reduced log, per-request times, the tasks still alive in its loop,
GC figures.

Why a process of its own: the client then never shares a GIL with the server, so a
response and the server's next step are not interleaved with the client's at every
socket write, which would make connection reuse racy even without receivers; and the
server's loop, GC and memory hold nothing but the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import threading
import time
import weakref
from collections import Counter
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from asignal import signals
from examples import serving

from .apps import APPS, REQUEST_ID
from .receivers import REQUEST_SIGNALS, Faults, LogTally


class GCWatch:
    """Counts the cyclic GC's runs and time (seconds) through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.runs = 0
        self.seconds = 0.0
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            spent = time.perf_counter() - self._started
            self.runs += 1
            self.seconds += spent
            self.longest = max(self.longest, spent)


class Owner:
    """Owns a weakly connected receiver for one request; ``dropped_at`` (monotonic
    seconds) once its request has its response, after which nothing references it but
    reference cycles, and sends under way that resolved its receiver (they hold it until
    they return, as blinker's send holds what it resolved)."""

    def __init__(self, churn: Churn) -> None:
        self.churn = churn
        self.dropped_at: float | None = None
        #: The sends under way (by request id) that resolved this receiver while it was
        #: rightly alive: each holds it until it returns.
        self.holders: set[int | None] = set()
        #: When the owner was gone (monotonic seconds): dropped, and no send of
        #: ``holders`` under way any more; ``None`` until then.
        self.gone_at: float | None = None

    async def receive(self, sender: Any, **kwargs: Any) -> None:
        churn = self.churn
        churn.calls += 1
        rid = REQUEST_ID.get()
        began = churn.send_began.get(rid)
        gone = self.gone_at
        if gone is not None and began is not None and began > gone:
            # Nothing that may hold the owner was left when this send began: something
            # else (a reference cycle, a leak) kept it alive.
            churn.dead_calls += 1
            return
        if self.dropped_at is not None and began is not None and began > self.dropped_at:
            # Dropped before this send began, but a send under way still held it, so
            # this one resolved it (blinker's semantics): a call, not a dead one.
            churn.held_calls += 1
        self.holders.add(rid)
        self.gone_at = None
        churn.holding.setdefault(rid, weakref.WeakSet()).add(self)

    def release(self, rid: int | None, now: float) -> None:
        """The send of request ``rid`` is over: it holds this owner no more."""
        self.holders.discard(rid)
        if self.dropped_at is not None and not self.holders and self.gone_at is None:
            self.gone_at = now


class Churn:
    """Weak receivers that come and go with the requests: each request's
    ``appcontext_pushed`` connects a new :class:`Owner`'s bound method weakly to
    ``request_started``, and its ``request_finished`` (or ``appcontext_popped``) drops
    the owner. A dropped owner's receiver must not be called by a send that began once
    the owner was gone ("dead calls"): dropped, and every send that held it over.

    A send resolves its receivers and holds them (in its results) until it returns, as
    blinker's does, so an owner dropped while another request's ``request_started`` send
    is under way stays alive until that send returns, and a send that begins meanwhile
    rightly calls it too (and holds it in turn): those are ``held_calls``. Where a send
    of ``request_started`` ends: its last tier (``on_sent``, lowest priority), or, when
    its deadline left that tier unstarted, at the latest its request's
    ``request_finished``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.owners: dict[int | None, Owner] = {}
        self.alive: weakref.WeakSet[Owner] = weakref.WeakSet()
        self.created = 0
        self.calls = 0
        self.dead_calls = 0
        self.held_calls = 0
        #: When each request's ``request_started`` send began (monotonic seconds): a send
        #: that began before an owner was gone may still call it; a later one may not.
        self.send_began: dict[int | None, float] = {}
        #: The owners each send under way may hold (weakly: this must not hold them).
        self.holding: dict[int | None, weakref.WeakSet[Owner]] = {}

    def connect(self) -> None:
        # Priority: called first in the send, before any owner's receiver.
        signals.request_started.connect(self.on_send, sender=self.app, weak=False, priority=100)
        # And last: the send is over once its last tier has run.
        signals.request_started.connect(self.on_sent, sender=self.app, weak=False, priority=-100)
        signals.appcontext_pushed.connect(self.on_pushed, sender=self.app, weak=False)
        signals.request_finished.connect(self.on_finished, sender=self.app, weak=False)
        # Quart pushes app contexts of its own (a background task's, in the request's
        # copied context): their owners go when those contexts do.
        signals.appcontext_popped.connect(self.on_finished, sender=self.app, weak=False)

    def on_pushed(self, sender: Any, **kwargs: Any) -> None:
        if REQUEST_ID.get() in self.owners:
            return
        owner = Owner(self)
        self.created += 1
        self.owners[REQUEST_ID.get()] = owner
        self.alive.add(owner)
        signals.request_started.connect(owner.receive, sender=self.app)

    def on_send(self, sender: Any, **kwargs: Any) -> None:
        rid = REQUEST_ID.get()
        self.send_began[rid] = time.monotonic()
        # This send resolves its receivers in this same step of the loop (its next tier
        # starts at once): it holds every owner that is not gone yet, called or not (a
        # receiver started beside a failing one may be cancelled before its first step).
        held = self.holding.setdefault(rid, weakref.WeakSet())
        for owner in list(self.alive):
            if owner.gone_at is None:
                owner.holders.add(rid)
                held.add(owner)

    def on_sent(self, sender: Any, **kwargs: Any) -> None:
        self._released(REQUEST_ID.get())

    def _released(self, rid: int | None) -> None:
        held = self.holding.pop(rid, None)
        if held:
            now = time.monotonic()
            for owner in list(held):
                owner.release(rid, now)

    def on_finished(self, sender: Any, **kwargs: Any) -> None:
        rid = REQUEST_ID.get()
        self._released(rid)  # its request_started send is over, if on_sent did not say so
        self.send_began.pop(rid, None)
        owner = self.owners.pop(rid, None)
        if owner is not None:
            owner.dropped_at = time.monotonic()
            if not owner.holders:
                owner.gone_at = owner.dropped_at

    def held_by_cycles(self) -> int:
        """Owners dropped but alive: between batches (no send under way) with the cyclic GC
        off, only reference cycles (or a leak) can hold them."""
        return sum(1 for owner in list(self.alive) if owner.dropped_at is not None)

    def figures(self) -> dict[str, int]:
        return {
            "created": self.created,
            "calls": self.calls,
            "dead_calls": self.dead_calls,
            "held_calls": self.held_calls,
            "alive": len(self.alive),
        }


class ServerRun:
    def __init__(self, args: argparse.Namespace) -> None:
        self.spec = APPS[args.app]
        self.app, self.served = self.spec.make(
            timeout=args.budget, hold=args.hold, cpu=args.hold_cpu
        )
        self.served.control = self.control
        kinds = tuple(k for k in args.kinds.split(",") if k)
        self.faults = Faults(
            self.app, kinds, slow=args.slow, served=self.served, keep=not args.churn
        )
        self.churn = Churn(self.app) if args.churn else None
        self.served.keep_times = not args.churn
        self.gc_watch = GCWatch()
        self.stopped_signal = False
        self.leftover: list[str] = []
        self.failure: str | None = None
        self.snapshots: list[dict[str, Any]] = []
        self._types: Counter[str] = Counter()
        self._token: Any = None
        self._stop: anyio.Event | None = None

    def control(self, what: str) -> bytes:
        if what == "collect":
            # A full collection: what it finds is what reference cycles alone held since
            # the last one; then the objects the GC tracks, with nothing cyclic left.
            # Dropped owners still alive before collecting: reference cycles hold them.
            held = self.churn.held_by_cycles() if self.churn else 0
            started = time.perf_counter()
            garbage = gc.collect()
            types = Counter(type(o).__qualname__ for o in gc.get_objects())
            grown = (types - self._types).most_common(6)
            self._types = types
            snapshot = {
                "garbage": garbage,
                "held_by_cycles": held,
                "grown": grown,
                "collect_seconds": time.perf_counter() - started,
                "objects": len(gc.get_objects()),
                "rss_kib": _rss_kib(),
                "receivers": sum(len(sig.receivers) for sig in REQUEST_SIGNALS),
                "churn": self.churn.figures() if self.churn else None,
            }
            self.snapshots.append(snapshot)
            return json.dumps(snapshot).encode()
        return b"{}"

    def on_serving_stopped(self, sender: Any, **kwargs: Any) -> None:
        self.stopped_signal = True

    async def main(self, port_out: Any) -> None:
        self._token = anyio.lowlevel.current_token()
        self._stop = anyio.Event()
        before = set(_alive_tasks())
        server: serving.Server = "uvicorn" if self.spec.server == "uvicorn" else "hypercorn"
        # Once the lifespan start-up has completed; on trio, hypercorn's trio worker.
        async with serving.serving(self.served, server, name=self.spec.name) as served:
            port_out(served.port)
            await self._stop.wait()
        self.failure = served.failure
        current = _current_task()
        self.leftover = [
            name
            for task, name in _alive_tasks().items()
            if task not in before and task is not current
        ]

    def stop_from_thread(self) -> None:
        if self._stop is not None:
            anyio.from_thread.run_sync(self._stop.set, token=self._token)

    def report(self, tally: LogTally) -> dict[str, Any]:
        logged = tally.logged
        return {
            "counts": [[*key, n] for key, n in self.faults.counts.items()],
            "tallied": [[*key, n] for key, n in tally.tallied.items()],
            "failure": self.failure,
            "leftover": self.leftover,
            "serving_stopped": self.stopped_signal,
            "calls": [
                [c.rid, c.signal, c.kind, c.started, c.ended, c.outcome] for c in self.faults.calls
            ],
            "logged": [
                [e.logger, e.level, e.rid, e.kind, e.timeout, e.exception, e.message]
                for e in logged
            ],
            "times": {
                rid: [t.entered, t.started, t.body_done, t.returned]
                for rid, t in self.served.times.items()
            },
            "gc": {
                "runs": self.gc_watch.runs,
                "seconds": self.gc_watch.seconds,
                "longest": self.gc_watch.longest,
            },
            "snapshots": self.snapshots,
            "churn": self.churn.figures() if self.churn else None,
        }


def _rss_kib() -> int:
    """The process's resident memory (KiB), from /proc where there is one, else 0."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _current_task() -> object:
    try:
        return asyncio.current_task()
    except RuntimeError:
        import trio

        return trio.lowlevel.current_task()


def _alive_tasks() -> dict[object, str]:
    """Every unfinished task of the running loop, with a readable name."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        import trio

        found: dict[object, str] = {}
        pending = [trio.lowlevel.current_root_task()]
        while pending:
            task = pending.pop()
            if task is not None:
                found[task] = task.name
                for nursery in task.child_nurseries:
                    pending.extend(nursery.child_tasks)
        return found
    return {task: f"{task.get_name()}: {task.get_coro()!r}" for task in asyncio.all_tasks()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", required=True, choices=sorted(APPS))
    parser.add_argument("--kinds", default="")
    parser.add_argument("--budget", type=float, default=0.25)
    parser.add_argument("--slow", type=float, default=0.02)
    parser.add_argument("--hold", type=float, default=0.0, help="hold each request, s")
    parser.add_argument("--hold-cpu", type=float, default=0.0, help="then burn CPU, s")
    parser.add_argument("--churn", action="store_true")
    parser.add_argument("--gc-off", action="store_true", help="no automatic cyclic GC")
    args = parser.parse_args(argv)

    run = ServerRun(args)
    gc.callbacks.append(run.gc_watch)
    signals.serving_stopped.connect(run.on_serving_stopped, sender=run.app, weak=False)

    def announce(port: int) -> None:
        print(f"PORT {port}", flush=True)
        # Serve until the parent closes our stdin (or dies).
        threading.Thread(target=_wait_for_eof, args=(run,), daemon=True).start()

    with LogTally(keep=not args.churn) as tally:
        run.faults.connect()
        if run.churn is not None:
            run.churn.connect()
        if args.gc_off:
            gc.collect()
            gc.disable()
        try:
            anyio.run(run.main, announce, backend=run.spec.backend)
        except BaseException as exc:
            run.failure = run.failure or f"server failed: {exc!r}"
        gc.enable()
        run.faults.disconnect()
    sys.stdout.write("REPORT " + json.dumps(run.report(tally)) + "\n")
    sys.stdout.flush()


def _wait_for_eof(run: ServerRun) -> None:
    sys.stdin.read()
    run.stop_from_thread()


if __name__ == "__main__":
    main()
