"""What both adapters' tests record: every asignal signal one app sends, in order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.lowlevel import EventLoopToken, current_token

from asignal import NamedSignal, signals

# Generous guard against a hang; no test asserts how long anything takes.
GUARD = 10

#: Every signal of :mod:`asignal.signals`, by name.
SIGNALS: dict[str, NamedSignal] = {
    name: getattr(signals, name) for name in signals.__all__ if name != "namespace"
}


@dataclass
class Seen:
    name: str
    sender: Any
    kwargs: dict[str, Any]


class Recorder:
    """Receivers on every asignal signal for ``sender``, recording each send in the order
    it arrives into ``seen``. ``sync=True`` records with sync receivers (so a test also
    shows that sync receivers work through the adapter), else with coroutine ones."""

    def __init__(self, sender: Any, seen: list[Seen] | None = None, *, sync: bool = False):
        self.sender = sender
        self.seen: list[Seen] = [] if seen is None else seen
        self.sync = sync
        self._receivers: list[tuple[NamedSignal, Callable[..., Any]]] = []
        # What wait_for waits on, on its event loop and thread: Starlette's TestClient
        # sends from an event loop of its own, in another thread.
        self._waiter: tuple[anyio.Event, EventLoopToken, int] | None = None

    def connect(self) -> Recorder:
        for name, sig in SIGNALS.items():
            receiver = self._receiver_for(name)
            sig.connect(receiver, sender=self.sender, weak=False)
            self._receivers.append((sig, receiver))
        return self

    def disconnect(self) -> None:
        for sig, receiver in self._receivers:
            sig.disconnect(receiver)
        self._receivers.clear()

    def _record(self, name: str, sender: Any, kwargs: dict[str, Any]) -> None:
        self.seen.append(Seen(name, sender, kwargs))
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            event, token, thread = waiter
            if thread == threading.get_ident():
                event.set()
            else:
                # Never blocking, and callable from a thread running an event loop of its
                # own (trio's from_thread refuses that): asyncio's loop or trio's token.
                loop = token.native_token
                if hasattr(loop, "call_soon_threadsafe"):
                    loop.call_soon_threadsafe(event.set)
                else:
                    loop.run_sync_soon(event.set)

    def _receiver_for(self, name: str) -> Callable[..., Any]:
        if self.sync:

            def record(sender: Any, **kwargs: Any) -> None:
                self._record(name, sender, kwargs)

            return record

        async def record_async(sender: Any, **kwargs: Any) -> None:
            self._record(name, sender, kwargs)

        return record_async

    def names(self) -> list[str]:
        return [seen.name for seen in self.seen]

    def one(self, name: str) -> Seen:
        matches = [seen for seen in self.seen if seen.name == name]
        assert len(matches) == 1, (name, [seen.name for seen in self.seen])
        return matches[0]

    def clear(self) -> None:
        self.seen.clear()

    async def wait_for(self, name: str, count: int = 1) -> None:
        """Until ``name`` has been seen ``count`` times, sent on any thread. One waiter at
        a time."""
        with anyio.fail_after(GUARD):
            while True:
                # Registered before looking, so a send in between wakes the wait.
                changed = anyio.Event()
                self._waiter = (changed, current_token(), threading.get_ident())
                if [seen.name for seen in self.seen].count(name) >= count:
                    self._waiter = None
                    return
                await changed.wait()
