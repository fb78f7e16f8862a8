"""Receivers and helpers shared by the dispatch tests (tests/test_dispatch*.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

# Safety net only: a broken dispatcher must fail a test, not hang the suite.
DEADLOCK = 10


class Running:
    """Counts receivers running at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    async def __call__(self, sender: Any, **kwargs: Any) -> str:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
        finally:
            self.now -= 1
        return "done"


def waiting_receivers(n: int) -> tuple[list[Callable[..., Awaitable[int]]], list[anyio.Event]]:
    """n receivers that each announce they started, then wait until all n have."""
    started = [anyio.Event() for _ in range(n)]

    def make(i: int) -> Callable[..., Awaitable[int]]:
        async def receiver(sender: Any, **kwargs: Any) -> int:
            started[i].set()
            for event in started:
                await event.wait()
            return i

        return receiver

    return [make(i) for i in range(n)], started


class Hanging:
    """A receiver that never returns on its own, and says whether it was cancelled."""

    def __init__(self) -> None:
        self.cancelled = False
        self.started = anyio.Event()

    async def __call__(self, sender: Any, **kwargs: Any) -> str:
        self.started.set()
        try:
            await anyio.Event().wait()
        finally:
            self.cancelled = True
        return "never"


async def quick(sender: Any, **kwargs: Any) -> str:
    await anyio.lowlevel.checkpoint()
    return "quick"


def instant(sender: Any, **kwargs: Any) -> str:
    return "instant"


class Boom(Exception):
    pass
