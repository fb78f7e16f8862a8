"""Measured in the demo's run: what background receivers take off a response's latency.

:func:`compare_latency` serves nothing itself. Given the demo's running apps, it sends
each app ``GET /`` in rounds of three variants, interleaved so that drift hits all alike:

- **bare**: with whatever the demo has connected, nothing more;
- **awaited**: plus ``receivers`` slow receivers (:func:`examples.receivers.slow_receiver`)
  on ``request_finished`` for that app, connected as usual: the response waits for them;
- **background**: the same receivers connected with ``background=True``: the response
  does not wait; they finish later, on a background runner.

It reports each variant's median latency. The background receivers must all have run by
the end (counted, not timed), which shows they were scheduled and not skipped.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio

from asignal import BackgroundRunner, Signal, signals
from asignal._background import current_runner

from .receivers import slow_receiver

#: How long to wait, after the last request, for the background receivers to finish.
FINISH_SECONDS = 5.0


@dataclass
class Latency:
    """One app's median latencies of ``GET /``, in seconds, and how many background
    receiver calls ran to the end (``finished``) out of ``scheduled``."""

    app: str
    bare: float
    awaited: float
    background: float
    scheduled: int
    finished: int


def _connect_background(sig: Signal, receiver: Callable[..., Any], sender: Any) -> Any:
    """Connect ``receiver`` as a background receiver; return what to disconnect."""
    sig.connect(receiver, sender, weak=False, background=True)
    return receiver


async def compare_latency(
    running: Mapping[str, Any],
    *,
    seconds: float,
    receivers: int = 3,
    rounds: int = 5,
    client: Any = None,
) -> list[Latency]:
    """Time ``GET /`` on each of ``running`` (name -> :class:`examples.serving.Served`)
    bare, with ``receivers`` receivers of ``seconds`` awaited, and with the same ones in
    the background; ``rounds`` requests per variant. Returns one :class:`Latency` per
    app. ``client`` is an ``httpx.AsyncClient`` (default: a new one)."""
    import httpx

    results = []
    async with AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=10.0))
        if current_runner() is None:
            # Apps whose adapter runs no runner of its own: one for the measurement.
            await stack.enter_async_context(BackgroundRunner())
        for name, served in running.items():
            results.append(await _measure(name, served, client, seconds, receivers, rounds))
    return results


async def _measure(
    name: str, served: Any, client: Any, seconds: float, n: int, rounds: int
) -> Latency:
    finished = 0
    all_done = anyio.Event()
    expected = n * rounds

    def make(background: bool) -> Callable[..., Any]:
        # A new function each time: a signal de-duplicates receivers by identity.
        async def receiver(app: Any, **kwargs: Any) -> str:
            nonlocal finished
            result = await slow_receiver(app, seconds=seconds, **kwargs)
            if background:
                finished += 1
                if finished == expected:
                    all_done.set()
            return result

        return receiver

    async def get() -> float:
        start = time.perf_counter()
        response = await client.get(f"{served.url}/")
        response.raise_for_status()
        return time.perf_counter() - start

    sig = signals.request_finished
    times: dict[str, list[float]] = {"bare": [], "awaited": [], "background": []}
    for _ in range(rounds):
        times["bare"].append(await get())
        connected = [make(False) for _ in range(n)]
        for receiver in connected:
            sig.connect(receiver, served.app, weak=False)
        try:
            times["awaited"].append(await get())
        finally:
            for receiver in connected:
                sig.disconnect(receiver)
        connected = [_connect_background(sig, make(True), served.app) for _ in range(n)]
        try:
            times["background"].append(await get())
        finally:
            for receiver in connected:
                sig.disconnect(receiver)
    with anyio.move_on_after(FINISH_SECONDS):
        await all_done.wait()
    return Latency(
        name,
        statistics.median(times["bare"]),
        statistics.median(times["awaited"]),
        statistics.median(times["background"]),
        expected,
        finished,
    )


def render(results: list[Latency], *, seconds: float, receivers: int, rounds: int) -> list[str]:
    """The demo's lines for :func:`compare_latency`'s results."""
    lines = [
        f"latency of GET / with {receivers} receivers of {seconds * 1000:.0f} ms on "
        f"request_finished, awaited and in the background (median of {rounds}, this run):"
    ]
    for r in results:
        lines.append(
            f"  {r.app:<9}  bare {r.bare * 1000:5.0f} ms   awaited {r.awaited * 1000:5.0f} ms "
            f"({(r.awaited - r.bare) * 1000:+.0f})   background {r.background * 1000:5.0f} ms "
            f"({(r.background - r.bare) * 1000:+.0f}); {r.finished}/{r.scheduled} background "
            "calls finished after their responses"
        )
    return lines


async def measure_and_print(
    running: Mapping[str, Any], *, seconds: float, fast: bool, out: Callable[[str], None]
) -> list[Latency]:
    """What ``make demo`` calls while its apps are served: :func:`compare_latency`,
    printed through ``out``. ``fast`` (the demo's tests) measures 2 rounds, else 3: a
    median of 3 is enough to tell 200 ms from nothing, and keeps the demo short."""
    rounds = 2 if fast else 3
    results = await compare_latency(running, seconds=seconds, rounds=rounds)
    out("")
    for line in render(results, seconds=seconds, receivers=3, rounds=rounds):
        out(line)
    return results
