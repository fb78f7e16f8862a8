"""The consumer side of a signal, async-native: iterate over its sends, or await one.

``Signal.subscribe`` and ``Signal.wait_for`` delegate here. Both connect a sync receiver
for as long as they are used, so they see :meth:`~asignal.Signal.send` and
:meth:`~asignal.Signal.send_async` alike, and a sender never waits for the consumer: a
subscription buffers up to ``max_buffer`` sends and drops the rest (counted and logged).
A send from another thread (a sync send in an anyio worker thread) is handed to the
consumer's event loop through ``anyio.from_thread``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from threading import get_ident
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio

from ._receivers import ANY, check_timeout

if TYPE_CHECKING:
    from anyio.lowlevel import EventLoopToken

    from ._signal import Signal

__all__ = ["DEFAULT_MAX_BUFFER", "Subscription", "subscribe", "wait_for"]

logger: Final = logging.getLogger("asignal")

#: Sends a subscription buffers, by default, before it drops new ones.
DEFAULT_MAX_BUFFER: Final = 100

Sent = tuple[Any, dict[str, Any]]


def _label(signal: Signal) -> str:
    name = getattr(signal, "name", None)
    return repr(name) if name is not None else repr(signal)


def _loop() -> tuple[int, EventLoopToken]:
    from anyio.lowlevel import current_token

    return get_ident(), current_token()


def _call_on_loop(token: EventLoopToken, fn: Callable[..., object], *args: Any) -> None:
    """Run ``fn(*args)`` on the event loop of ``token`` from another thread; nothing if
    that loop has finished (its consumer is gone)."""
    from anyio import from_thread

    with suppress(RuntimeError):
        from_thread.run_sync(fn, *args, token=token)


class Subscription:
    """The sends of one signal (by one sender, or any), as an async iterator of
    ``(sender, kwargs)`` pairs, for the body of ``async with``::

        async with user_logged_in.subscribe(app, max_buffer=10) as sends:
            async for sender, kwargs in sends:
                print(kwargs["user"])

    Connected on entering, disconnected on leaving (also when the body raises); the
    iteration then ends. Create it with :func:`subscribe` or ``Signal.subscribe``.

    :ivar dropped: sends dropped because the buffer was full.
    """

    def __init__(self, signal: Signal, sender: Any = ANY, *, max_buffer: int) -> None:
        if isinstance(max_buffer, bool) or not isinstance(max_buffer, int):
            raise TypeError(f"max_buffer must be an int >= 1, got {max_buffer!r}")
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be >= 1, got {max_buffer!r}")
        self.signal = signal
        self.sender = sender
        self.max_buffer = max_buffer
        self.dropped: int = 0
        self._buffer: deque[Sent] = deque()
        self._wakeup: anyio.Event | None = None
        self._state = "new"
        self._overflowing = False
        self._thread = 0
        self._token: EventLoopToken | None = None

    def __repr__(self) -> str:
        return (
            f"<Subscription to signal {_label(self.signal)} {self._state}, "
            f"{len(self._buffer)}/{self.max_buffer} buffered, {self.dropped} dropped>"
        )

    async def __aenter__(self) -> Subscription:
        """Connect to the signal.

        :raises RuntimeError: the subscription was entered before.
        """
        if self._state != "new":
            raise RuntimeError(f"{self!r} was entered before; subscribe again")
        self._thread, self._token = _loop()
        self._state = "open"
        self.signal.connect(self._receive, self.sender, weak=False)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect now; buffered sends can still be read, then the iteration ends."""
        if self._state == "open":
            self._state = "closed"
            self.signal.disconnect(self._receive)
            self._wake()

    @property
    def buffered(self) -> int:
        """Sends received and not yet read."""
        return len(self._buffer)

    def _receive(self, sender: Any, /, **kwargs: Any) -> None:
        # The receiver connected to the signal: it never blocks and never raises.
        if get_ident() == self._thread:
            self._put((sender, kwargs))
        elif self._token is not None:
            _call_on_loop(self._token, self._put, (sender, kwargs))

    def _put(self, sent: Sent) -> None:
        if self._state != "open":
            return
        if len(self._buffer) >= self.max_buffer:
            self.dropped += 1
            if not self._overflowing:
                # Once per overflow, not once per dropped send: a stuck consumer must not
                # flood the log; ``dropped`` has the count.
                self._overflowing = True
                logger.warning(
                    "subscriber to signal %s dropped a send by %r: its buffer of %d is "
                    "full (the consumer is slower than the senders)",
                    _label(self.signal),
                    sent[0],
                    self.max_buffer,
                )
            return
        self._buffer.append(sent)
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Sent:
        """The next ``(sender, kwargs)``, waiting for a send if none is buffered.

        :raises StopAsyncIteration: once the subscription is closed and read to the end.
        """
        while not self._buffer:
            if self._state != "open":
                raise StopAsyncIteration
            if self._wakeup is None:
                self._wakeup = anyio.Event()
            await self._wakeup.wait()
        self._overflowing = False
        return self._buffer.popleft()


def subscribe(
    signal: Signal, sender: Any = ANY, *, max_buffer: int = DEFAULT_MAX_BUFFER
) -> Subscription:
    """Subscribe to the sends of ``signal`` by ``sender`` (default: any sender).

    Returns an async context manager; inside ``async with``, it is an async iterator of
    ``(sender, kwargs)`` in the order of the sends. A sender never waits for the
    subscriber: when ``max_buffer`` sends are waiting to be read, further sends are
    dropped for this subscriber, counted in :attr:`Subscription.dropped` and logged on
    the ``asignal`` logger. Leaving the block disconnects.

    :param max_buffer: sends buffered before dropping (an int >= 1).
    :raises TypeError: ``max_buffer`` is not an int.
    :raises ValueError: ``max_buffer`` < 1.
    """
    return Subscription(signal, sender, max_buffer=max_buffer)


async def wait_for(
    signal: Signal,
    sender: Any = ANY,
    *,
    condition: Callable[..., bool] | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - the API's name (Sanic's app.event)
) -> Sent:
    """Wait for the next send of ``signal`` by ``sender`` (default: any sender) for which
    ``condition(sender, **kwargs)`` is true (default: any send), as Sanic's
    ``app.event``.

    Only sends made after the call count. The sender does not wait for the waiter.

    :param condition: called like a receiver, in the sender's thread and task; an
        exception it raises is raised here, never into the sender.
    :param timeout: seconds to wait (``None``: no limit).
    :returns: ``(sender, kwargs)`` of that send.
    :raises TimeoutError: no such send within ``timeout`` seconds.
    """
    limit = check_timeout(timeout, "timeout")
    thread, token = _loop()
    found: list[Sent] = []
    failed: list[Exception] = []
    done = anyio.Event()

    def receive(sent_by: Any, /, **kwargs: Any) -> None:
        if found or failed:
            return
        if condition is not None:
            try:
                if not condition(sent_by, **kwargs):
                    return
            except Exception as exc:
                failed.append(exc)
        if not failed:
            found.append((sent_by, kwargs))
        if get_ident() == thread:
            done.set()
        else:
            _call_on_loop(token, done.set)

    signal.connect(receive, sender, weak=False)
    try:
        with anyio.move_on_after(limit):
            await done.wait()
    finally:
        signal.disconnect(receive)
    if failed:
        raise failed[0]
    if not found:
        by = "" if sender is ANY else f" by {sender!r}"
        raise TimeoutError(f"no send of signal {_label(signal)}{by} within {timeout} s")
    return found[0]
