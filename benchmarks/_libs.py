"""The contenders: building a signal with N receivers in each library, and the receivers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from typing import Any

import blinker
import django.dispatch

Receiver = Callable[..., Any]


def versions() -> dict[str, str]:
    out = {}
    for dist in ("asignal", "blinker", "django", "pyperf", "anyio", "trio"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "?"
    return out


class App:
    """Stands in for the application object that ASGI signals use as sender."""


def sync_receivers(n: int) -> list[Receiver]:
    """``n`` distinct functions ``def r(sender, **kw): return 1``.

    Distinct objects matter: every library de-duplicates receivers by identity.
    """

    def make() -> Receiver:
        def r(sender: Any, **kw: Any) -> int:
            return 1

        return r

    return [make() for _ in range(n)]


def async_receivers(n: int) -> list[Receiver]:
    """``n`` distinct ``async def`` receivers that return without suspending."""

    def make() -> Receiver:
        async def r(sender: Any, **kw: Any) -> int:
            return 1

        return r

    return [make() for _ in range(n)]


def sleeping_receivers(
    n: int, sleep: Callable[[float], Awaitable[None]], seconds: float
) -> list[Receiver]:
    """``n`` distinct receivers that each ``await sleep(seconds)`` then return 1."""

    def make() -> Receiver:
        async def r(sender: Any, **kw: Any) -> int:
            await sleep(seconds)
            return 1

        return r

    return [make() for _ in range(n)]


def new_signal(lib: str) -> Any:
    if lib == "asignal":
        import asignal

        return asignal.Signal()
    if lib == "blinker":
        return blinker.Signal()
    if lib == "django":
        return django.dispatch.Signal()
    raise ValueError(lib)


def build(lib: str, receivers: Sequence[Receiver], listen_to: object | None = None) -> Any:
    """A fresh signal of ``lib`` with ``receivers`` connected (weakly: every library's
    default) to ``listen_to``, or to any sender when it is None."""
    sig = new_signal(lib)
    if lib == "django":
        # django spells "any sender" as None.
        for r in receivers:
            sig.connect(r, sender=listen_to)
        return sig
    if listen_to is None:
        any_sender = __import__(lib).ANY
        for r in receivers:
            sig.connect(r, any_sender)
    else:
        for r in receivers:
            sig.connect(r, listen_to)
    return sig


def sync_floor(receivers: Sequence[Receiver]) -> Callable[[Any], list[tuple[Receiver, Any]]]:
    """The raw-Python floor of ``send``: a plain loop collecting ``(receiver, value)``."""
    receivers = list(receivers)

    def floor(sender: Any) -> list[tuple[Receiver, Any]]:
        results = []
        for r in receivers:
            results.append((r, r(sender)))
        return results

    return floor


def async_floor(
    receivers: Sequence[Receiver],
) -> Callable[[Any], Awaitable[list[tuple[Receiver, Any]]]]:
    """The raw-Python floor of ``send_async``: a sequential ``await`` loop collecting results."""
    receivers = list(receivers)

    async def floor(sender: Any) -> list[tuple[Receiver, Any]]:
        results = []
        for r in receivers:
            results.append((r, await r(sender)))
        return results

    return floor


def taskgroup_floor(
    receivers: Sequence[Receiver],
) -> Callable[[Any], Awaitable[list[tuple[Receiver, Any]]]]:
    """asyncio's own concurrent floor: ``asyncio.TaskGroup``, one task per receiver."""
    import asyncio

    receivers = list(receivers)

    async def floor(sender: Any) -> list[tuple[Receiver, Any]]:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(r(sender)) for r in receivers]
        return [(r, t.result()) for r, t in zip(receivers, tasks, strict=True)]

    return floor


def nursery_floor(
    receivers: Sequence[Receiver],
) -> Callable[[Any], Awaitable[list[tuple[Receiver, Any]]]]:
    """trio's own concurrent floor: a native nursery, one task per receiver."""
    import trio

    receivers = list(receivers)

    async def floor(sender: Any) -> list[tuple[Receiver, Any]]:
        results: list[Any] = [None] * len(receivers)

        async def one(i: int, r: Receiver) -> None:
            results[i] = (r, await r(sender))

        async with trio.open_nursery() as nursery:
            for i, r in enumerate(receivers):
                nursery.start_soon(one, i, r)
        return results

    return floor
