"""The bounded buffer between a forwarding send and the broker, and its publisher task.

A send only appends to a deque (from the event loop's thread, or through
``call_soon_threadsafe`` from another thread); it never awaits the broker. One task
publishes what is buffered, a window of publishes at a time, and retries those that fail
with exponential backoff. Retried publishes keep their ``Nats-Msg-Id``, so JetStream
stores each once however often it is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from threading import get_ident
from typing import TYPE_CHECKING, Any

from ._codec import CONTENT_TYPE, JSON_TYPE, MSG_ID, ORIGIN, SENDER, SENT_AT, dumps

if TYPE_CHECKING:
    from nats.js import JetStreamContext

log = logging.getLogger("asignal.bridges.nats")

#: Publishes in flight at once: enough to hide the round trip to the server.
WINDOW = 256


@dataclass
class BridgeStats:
    """Counters of one bridge (ints, since it started).

    ``published``: messages the stream acknowledged; ``dropped``: sends not published
    because the buffer was full or the bridge closed with them still buffered;
    ``retries``: failed publish attempts, retried; ``received``: messages re-sent
    locally; ``acked``, ``nacked``, ``dead_lettered``: work-queue outcomes;
    ``malformed``: messages logged and terminated because they could not be decoded.
    """

    #: Messages the stream acknowledged.
    published: int = 0
    #: Sends not published: the buffer was full, or the bridge closed with them buffered.
    dropped: int = 0
    #: Failed publish attempts, retried.
    retries: int = 0
    #: Messages from other processes re-sent locally.
    received: int = 0
    #: Work-queue messages acked after their receivers succeeded.
    acked: int = 0
    #: Work-queue messages nak'd for redelivery after a failure or a timeout.
    nacked: int = 0
    #: Work-queue messages sent to the dead-letter subject after ``max_deliver`` attempts.
    dead_lettered: int = 0
    #: Messages logged and terminated because they could not be decoded.
    malformed: int = 0


#: One send: (subject, body or plain kwargs to encode, sequence number, sender name,
#: Unix time of the send, the sender's trace context as headers or ``None``).
Item = tuple[str, "bytes | dict[str, Any]", int, str, float, "dict[str, str] | None"]


class Outbox:
    def __init__(
        self,
        js: JetStreamContext,
        stats: BridgeStats,
        *,
        origin: str,
        max_buffer: int,
        publish_timeout: float,
        backoff: tuple[float, float],
    ) -> None:
        self._js = js
        self._origin = origin
        self._stats = stats
        self._max = max_buffer
        self._timeout = publish_timeout
        self._backoff = backoff
        self._buffer: deque[Item] = deque()
        self._inflight: list[Item] = []
        self._loop = asyncio.get_running_loop()
        self._thread = get_ident()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # True while nothing is buffered or in flight (``_idle`` is set): the next send
        # then clears ``_idle`` and wakes the publisher. An attribute test is cheaper on
        # the request path than Event.is_set().
        self._sleeping = True
        self._closed = False
        self._task = self._loop.create_task(self._run(), name="asignal NATS publisher")

    def put(self, item: Item) -> None:
        """Buffer one send; never blocks. Callable from any thread."""
        if get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self._put, item)
            return
        buffer = self._buffer
        if len(buffer) < self._max and not self._closed:
            buffer.append(item)
            if self._sleeping:
                self._sleeping = False
                self._idle.clear()
                self._wake.set()
            return
        self._put(item)

    def _put(self, item: Item) -> None:
        if self._closed or len(self._buffer) >= self._max:
            self._stats.dropped += 1
            log.error(
                "dropped a send of %s (message %s.%d): %s",
                item[0],
                self._origin,
                item[2],
                "the bridge is closed" if self._closed else f"{self._max} sends are buffered",
            )
            return
        self._buffer.append(item)
        if self._sleeping:
            self._sleeping = False
            self._idle.clear()
            self._wake.set()

    @property
    def pending(self) -> int:
        """Sends buffered and not yet acknowledged by the stream."""
        return len(self._buffer)

    async def flush(self, seconds: float) -> bool:
        """Wait up to ``seconds`` until everything buffered is published."""
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def close(self, seconds: float) -> None:
        """Publish what is buffered for up to ``seconds``, then drop the rest."""
        await self.flush(seconds)
        self._closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        left = len(self._buffer) + len(self._inflight)
        if left:
            self._stats.dropped += left
            log.error("dropped %d buffered sends: the bridge closed", left)
            self._buffer.clear()
            self._inflight = []

    async def _publish(self, item: Item) -> None:
        subject, body, seq, sender, sent_at, trace = item
        if not isinstance(body, bytes):
            try:
                body = dumps(body).encode()
            except ValueError as exc:  # a lone surrogate in a str: not UTF-8
                self._stats.dropped += 1
                log.error("dropped a send of %s: cannot encode it (%s)", subject, exc)
                return
        headers = {
            MSG_ID: f"{self._origin}.{seq}",
            ORIGIN: self._origin,
            SENDER: sender,
            SENT_AT: repr(sent_at),
            CONTENT_TYPE: JSON_TYPE,
        }
        if trace:
            # W3C trace context, read at the send: a remote receiver's span continues it.
            headers.update(trace)
        await self._js.publish(subject, body, timeout=self._timeout, headers=headers)

    async def _run(self) -> None:
        failures = 0
        buffer = self._buffer
        while True:
            if not buffer:
                self._idle.set()
                self._sleeping = True
                await self._wake.wait()
                self._wake.clear()
                continue
            batch = self._inflight = [buffer.popleft() for _ in range(min(WINDOW, len(buffer)))]
            results: list[BaseException | None]
            if len(batch) == 1:
                # A lone send (the common case between requests) spares gather's task.
                try:
                    await self._publish(batch[0])
                    results = [None]
                except Exception as exc:
                    results = [exc]
            else:
                results = await asyncio.gather(
                    *(self._publish(item) for item in batch), return_exceptions=True
                )
            self._inflight = []
            failed = [item for item, r in zip(batch, results, strict=True) if r is not None]
            self._stats.published += len(batch) - len(failed)
            if not failed:
                failures = 0
                continue
            for r in results:
                if isinstance(r, BaseException) and not isinstance(r, Exception):
                    raise r
            # Back to the front, in order; the same message ids make the retry safe.
            buffer.extendleft(reversed(failed))
            self._stats.retries += len(failed)
            failures += 1
            first, cap = self._backoff
            delay = min(first * 2 ** (failures - 1), cap)
            error = next(r for r in results if r is not None)
            log.warning(
                "publishing %d sends failed (%r); retrying in %.2f s", len(failed), error, delay
            )
            await asyncio.sleep(delay)
