"""``make demo``'s last comparison: the same three async receivers, sent by asignal and by
blinker in the same run.

asignal's ``send_async`` runs a signal's async receivers concurrently; blinker's awaits
them one after another. :func:`compare_with_blinker` times both on three receivers of the
same duration and keeps what each returned: asignal's results come in connection order,
blinker's in the order of its receiver set.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio


@dataclass
class Comparison:
    """The same three receivers of ``seconds`` each, sent by asignal and by blinker."""

    seconds: float
    asignal_seconds: float
    blinker_seconds: float
    asignal_values: list[Any]
    blinker_values: list[Any]

    def render(self) -> list[str]:
        """The comparison as the demo prints it, one line per item; times in ms."""
        return [
            f"the same three async receivers of {self.seconds * 1000:.0f} ms each, in this run:",
            f"  asignal send_async  {self.asignal_seconds * 1000:6.0f} ms  (concurrent)",
            f"  blinker send_async  {self.blinker_seconds * 1000:6.0f} ms  (one after another)",
        ]


async def compare_with_blinker(seconds: float) -> Comparison:
    """Send one signal to three async receivers of ``seconds`` each, once with asignal's
    ``send_async`` (concurrent) and once with blinker's (one after another)."""
    # Imported on use: examples.demo imports this module before its `_load` has turned a
    # missing package into a clear error.
    import blinker

    import asignal

    def make(i: int) -> Callable[..., Awaitable[int]]:
        async def receiver(sender: Any, **extra: Any) -> int:
            await anyio.sleep(seconds)
            return i

        receiver.__name__ = receiver.__qualname__ = f"receiver_{i}"
        return receiver

    receivers = [make(i) for i in range(3)]
    ours = asignal.Signal("three receivers")
    theirs = blinker.Signal("three receivers")
    for receiver in receivers:
        ours.connect(receiver, weak=False)
        theirs.connect(receiver, weak=False)

    start = time.perf_counter()
    ours_result = await ours.send_async("demo")
    middle = time.perf_counter()
    theirs_result = await theirs.send_async("demo")
    end = time.perf_counter()
    return Comparison(
        seconds,
        middle - start,
        end - middle,
        [value for _, value in ours_result],
        [value for _, value in theirs_result],
    )
