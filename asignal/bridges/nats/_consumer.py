"""Messages from the stream, re-sent locally: broadcast subscriptions and work queues."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nats.errors

from asignal._observe import extract

from ._codec import ERROR, MSG_ID, MalformedMessage, decode, remote_sender
from ._outbox import BridgeStats

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

    from asignal import Signal

log = logging.getLogger("asignal.bridges.nats")

#: Seconds a work-queue fetch waits for messages; also the longest a drain waits for
#: an idle fetch to return.
FETCH_SECONDS = 0.5
#: How many message ids a broadcast subscription remembers, to drop a retried publish
#: that reached it twice.
SEEN = 4096


@dataclass(frozen=True)
class Spec:
    """How one signal is received (see :meth:`NatsBridge.receive`)."""

    signal: Signal
    subject: str
    group: str | None
    max_deliver: int
    timeout: float | None
    backoff: tuple[float, float]
    batch: int
    dead_letter: str


def _describe(msg: Msg) -> str:
    msg_id = (msg.headers or {}).get(MSG_ID)
    return f"message {msg_id or '(no id)'} on {msg.subject}"


class Broadcast:
    """An ordered consumer of one process: every process gets every message once, its
    own skipped."""

    def __init__(self, spec: Spec, origin: str, stats: BridgeStats) -> None:
        self.spec = spec
        self._origin = origin
        self._stats = stats
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._n = 0

    async def on_message(self, msg: Msg) -> None:
        self._n += 1
        try:
            kwargs = decode(msg.data)
        except MalformedMessage as exc:
            self._stats.malformed += 1
            log.error("dropped malformed %s: %s", _describe(msg), exc)
            return
        try:
            published = msg.metadata.timestamp
        except (nats.errors.NotJSMessageError, ValueError, IndexError):
            published = None
        sender = remote_sender(
            msg.headers, msg.subject, fallback_id=f"{msg.subject}#{self._n}", published=published
        )
        if sender.origin == self._origin or sender.message_id in self._seen:
            log.debug("skipped %s: our own, or seen before", _describe(msg))
            return
        self._seen[sender.message_id] = None
        if len(self._seen) > SEEN:
            self._seen.popitem(last=False)
        self._stats.received += 1
        with extract(msg.headers):
            await self.spec.signal.send_async(
                sender, _errors="collect", _timeout=self.spec.timeout, **kwargs
            )


class WorkQueue:
    """A pull subscription on a durable consumer that a group shares."""

    def __init__(self, spec: Spec, js: JetStreamContext, psub: Any, stats: BridgeStats) -> None:
        self.spec = spec
        self._js = js
        self._psub = psub
        self._stats = stats
        self._stopping = False
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"asignal NATS consumer {spec.subject} ({spec.group})"
        )

    def stop(self) -> None:
        """Fetch no more; the batch in hand is still handled and acked."""
        self._stopping = True

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                msgs = await self._psub.fetch(self.spec.batch, timeout=FETCH_SECONDS)
            except nats.errors.TimeoutError:
                continue
            except nats.errors.ConnectionClosedError:
                return
            except Exception as exc:
                # The server is away (a restart): the client reconnects by itself.
                failures += 1
                delay = min(0.1 * 2**failures, 2.0)
                log.warning(
                    "fetching from %s failed (%r); again in %.1f s", self.spec.subject, exc, delay
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            if len(msgs) == 1:
                outcomes: list[BaseException | None] = [await self._guarded(msgs[0])]
            else:
                outcomes = await asyncio.gather(*(self._guarded(m) for m in msgs))
            for outcome in outcomes:
                if outcome is not None:
                    raise outcome  # not an Exception: cancellation, KeyboardInterrupt

    async def _guarded(self, msg: Msg) -> BaseException | None:
        # A bug here must not end the consumer: the message is left unacked (JetStream
        # redelivers it after ack_wait, up to max_deliver) and the loop goes on.
        try:
            await self._handle(msg)
        except Exception:
            log.exception("handling %s failed unexpectedly", _describe(msg))
        except BaseException as exc:
            return exc
        return None

    async def _handle(self, msg: Msg) -> None:
        spec = self.spec
        try:
            kwargs = decode(msg.data)
            meta = msg.metadata
        except (MalformedMessage, nats.errors.NotJSMessageError) as exc:
            self._stats.malformed += 1
            log.error("terminated malformed %s: %s", _describe(msg), exc)
            await self._settle(msg.term())
            return
        sender = remote_sender(
            msg.headers,
            msg.subject,
            fallback_id=f"{meta.stream}:{meta.sequence.stream}",
            attempt=meta.num_delivered,
            published=meta.timestamp,
        )
        self._stats.received += 1
        try:
            with extract(msg.headers):
                await spec.signal.send_async(sender, _timeout=spec.timeout, **kwargs)
        except Exception as exc:
            await self._failed(msg, sender.message_id, sender.attempt, exc)
            return
        self._stats.acked += 1
        await self._settle(msg.ack())

    async def _failed(self, msg: Msg, msg_id: str, attempt: int, exc: Exception) -> None:
        spec = self.spec
        if attempt < spec.max_deliver:
            first, cap = spec.backoff
            delay = min(first * 2 ** (attempt - 1), cap)
            self._stats.nacked += 1
            log.warning(
                "%s failed on attempt %d of %d (%r); redelivered in %.2f s",
                _describe(msg),
                attempt,
                spec.max_deliver,
                exc,
                delay,
            )
            await self._settle(msg.nak(delay=delay))
            return
        headers = dict(msg.headers or {})
        headers[MSG_ID] = f"{msg_id}.dead"
        headers[ERROR] = repr(exc)[:512]
        try:
            await self._js.publish(spec.dead_letter, msg.data, headers=headers)
        except Exception as publish_error:
            # Not terminated: JetStream redelivers it, and the dead letter is tried again.
            log.error("%s: dead-lettering failed (%r)", _describe(msg), publish_error)
            await self._settle(msg.nak(delay=spec.backoff[1]))
            return
        self._stats.dead_lettered += 1
        log.error(
            "%s failed %d times (last: %r); dead-lettered to %s",
            _describe(msg),
            attempt,
            exc,
            spec.dead_letter,
        )
        await self._settle(msg.term())

    async def _settle(self, ack: Any) -> None:
        try:
            await ack
        except Exception as exc:
            # The ack is lost with the connection: JetStream redelivers after ack_wait.
            log.warning("acknowledging a message failed (%r); it will be redelivered", exc)
