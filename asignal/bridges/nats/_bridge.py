"""NatsBridge: a signal's local sends published to JetStream, and messages re-sent locally."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from types import TracebackType
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from asignal import Signal
from asignal._observe import trace_headers

from ._codec import (
    PLAIN,
    RemoteSender,
    consumer_name,
    encode,
    sender_label,
    subject_token,
)
from ._connect import connect_client, require_asyncio
from ._consumer import Broadcast, Spec, WorkQueue
from ._outbox import BridgeStats, Outbox

log = logging.getLogger("asignal.bridges.nats")

#: The forwarding receiver runs before every other receiver, so a kwarg that cannot be
#: encoded fails the send before any receiver has run.
FORWARD_PRIORITY = 1e18


class NatsBridge:
    """Carries signals between processes over NATS JetStream.

    Use it as an async context manager: ``async with NatsBridge(client) as bridge`` with
    a connected ``nats.aio.client.Client`` you own, or ``async with
    NatsBridge.connect(servers) as bridge``, which connects and closes the client too.
    Entering creates the JetStream stream ``stream`` on subjects ``<subject_prefix>.>``,
    or checks that the existing one covers them. Exiting drains (see :meth:`drain`).

    :param client: a connected nats-py client.
    :param stream: the JetStream stream's name.
    :param subject_prefix: first token(s) of every subject; a send of signal ``name``
        is published on ``<subject_prefix>.<name>``.
    :param max_buffer: sends buffered while publishing lags or the server is away; past
        it a send is dropped, counted in :attr:`stats` and logged, never raised.
    :param publish_timeout: seconds one publish waits for the stream's acknowledgement
        before it is retried.
    :param retry_backoff: ``(first, longest)`` delays in seconds between publish retries,
        doubling from ``first`` up to ``longest``.
    :param drain_timeout: seconds :meth:`drain` waits for buffered sends to publish.
    :raises RuntimeError: entered outside asyncio (nats-py is asyncio-only).
    :raises ValueError: the stream exists and does not cover ``<subject_prefix>.>``.
    """

    def __init__(
        self,
        client: Client,
        *,
        stream: str = "ASIGNAL",
        subject_prefix: str = "asignal",
        max_buffer: int = 10_000,
        publish_timeout: float = 5.0,
        retry_backoff: tuple[float, float] = (0.1, 5.0),
        drain_timeout: float = 10.0,
    ) -> None:
        #: The nats-py client the bridge publishes and consumes with.
        self.client = client
        #: The JetStream stream holding the bridge's messages.
        self.stream = subject_token(stream, "stream name")
        #: Every subject of the bridge starts with it: ``<subject_prefix>.<signal name>``.
        self.subject_prefix = subject_token(subject_prefix, "subject prefix")
        #: This bridge's id: the origin header of what it publishes.
        self.origin = uuid.uuid4().hex[:16]
        #: Counters: published, dropped, retries, received, acked, nacked, ...
        self.stats = BridgeStats()
        #: The client's JetStream context.
        self.js = client.jetstream(timeout=publish_timeout)
        self._max_buffer = max_buffer
        self._publish_timeout = publish_timeout
        self._retry_backoff = retry_backoff
        self._drain_timeout = drain_timeout
        self._outbox: Outbox | None = None
        self._ids = itertools.count(1)
        self._forwarded: list[tuple[Signal, Callable[..., None]]] = []
        self._queues: list[WorkQueue] = []
        self._subscriptions: list[Any] = []
        self._closed = False

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        servers: str | list[str],
        *,
        stream: str = "ASIGNAL",
        subject_prefix: str = "asignal",
        connect_timeout: float = 5.0,
        **options: Any,
    ) -> AsyncIterator[NatsBridge]:
        """Connect to ``servers``, yield an entered bridge; drain and close on exit.

        ``options`` go to the bridge (``max_buffer``, ``publish_timeout``,
        ``retry_backoff``, ``drain_timeout``) or else to ``nats.connect``: credentials
        (``user_credentials``, ``token``, ``user`` / ``password``, ``nkeys_seed``), TLS
        (``tls``, ``tls_hostname``), reconnection settings, ``name``.

        :param servers: a URL (``nats://host:4222``, ``tls://...``) or a list of them
            (a cluster).
        :param connect_timeout: seconds allowed to connect before giving up.
        :raises NatsConnectError: nothing answered within ``connect_timeout``
            (``reason="unreachable"``) or the server refused the credentials
            (``reason="credentials"``).
        :raises RuntimeError: not running on asyncio.
        """
        require_asyncio()
        own = {k: options.pop(k) for k in _BRIDGE_OPTIONS & options.keys()}
        client = await connect_client(servers, connect_timeout, options)
        try:
            async with cls(client, stream=stream, subject_prefix=subject_prefix, **own) as bridge:
                yield bridge
        finally:
            if not client.is_closed:
                try:
                    await client.close()
                except Exception as exc:  # the server went away: nothing left to flush to
                    log.warning("closing the NATS connection failed (%r)", exc)

    async def __aenter__(self) -> NatsBridge:
        require_asyncio()
        await self._ensure_stream()
        self._outbox = Outbox(
            self.js,
            self.stats,
            origin=self.origin,
            max_buffer=self._max_buffer,
            publish_timeout=self._publish_timeout,
            backoff=self._retry_backoff,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.drain()

    async def _ensure_stream(self) -> None:
        wildcard = f"{self.subject_prefix}.>"
        try:
            info = await self.js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            config = StreamConfig(name=self.stream, subjects=[wildcard], storage=StorageType.FILE)
            try:
                await self.js.add_stream(config)
                return
            except nats.js.errors.BadRequestError:
                # Another process created it first: check theirs instead.
                info = await self.js.stream_info(self.stream)
        subjects = info.config.subjects or []
        if wildcard not in subjects:
            raise ValueError(
                f"JetStream stream {self.stream!r} exists with subjects {subjects}, which do "
                f"not include {wildcard!r}: choose another stream= or subject_prefix="
            )

    def subject(self, signal: Signal) -> str:
        """The subject of ``signal``'s messages: ``<subject_prefix>.<signal name>``.

        :raises TypeError: ``signal`` has no name (use a :class:`~asignal.NamedSignal`).
        :raises ValueError: the name cannot be used in a subject.
        """
        name = getattr(signal, "name", None)
        if not isinstance(name, str):
            raise TypeError(f"{signal!r} has no name: bridges need a NamedSignal")
        return f"{self.subject_prefix}.{subject_token(name, 'signal name')}"

    def forward(
        self,
        signal: Signal,
        *,
        sender_name: str | Callable[[Any], str] | None = None,
        payload: Callable[..., Mapping[str, Any]] | None = None,
    ) -> None:
        """Publish one message for every local send of ``signal`` from now on.

        It holds for ``send``, ``send_async`` and everything that sends through them
        (the adapters): a receiver connected with the highest priority encodes the
        kwargs and buffers the message; the bridge's publisher task publishes it. The
        send never waits for the broker. Sends whose sender is a
        :class:`RemoteSender` (re-sent by :meth:`receive`) are not forwarded again.

        :param sender_name: the ``app`` the receiving side sees: a string, or a function
            of the sender; by default the sender's class name (a string sender itself).
        :param payload: ``payload(sender, **kwargs) -> dict`` of JSON values, for signals
            whose kwargs are not JSON (a ``request=``); by default the kwargs themselves.
        :raises TypeError: at send time, from the send, when a kwarg cannot be encoded
            and no ``payload`` is given (the message names the kwarg and the signal);
            under the ``"collect"`` error policy it is logged instead.
        :raises RuntimeError: the bridge has not been entered.
        """
        outbox = self._outbox
        if outbox is None or self._closed:
            raise RuntimeError("enter the bridge (async with) before calling forward()")
        subject = self.subject(signal)
        name = subject.removeprefix(f"{self.subject_prefix}.")
        ids = self._ids
        put = outbox.put
        now = time.time
        fixed = sender_name if isinstance(sender_name, str) else None
        custom = sender_name if callable(sender_name) else None

        # The request path: it runs in every send, so it does the least it can and never
        # awaits. Kwargs that are all str/int/bool/None are immutable and always encode,
        # so the publisher task encodes them (and builds the headers); anything else is
        # encoded here, now, so that a kwarg JSON cannot encode fails this send.
        def forward_to_nats(sender: Any, **kwargs: Any) -> None:
            if type(sender) is RemoteSender:
                return
            body: bytes | dict[str, Any] = kwargs
            if payload is not None:
                body = encode(name, sender, kwargs, payload)
            else:
                for value in kwargs.values():
                    if type(value) not in PLAIN:
                        body = encode(name, sender, kwargs, None)
                        break
            if fixed is not None:
                label = fixed
            elif custom is not None:
                label = custom(sender)
            else:  # sender_label(), inline: this runs in every send
                label = sender if type(sender) is str else sender_label(sender)
            put((subject, body, next(ids), label, now(), trace_headers()))

        forward_to_nats.__qualname__ = f"NatsBridge.forward({name})"
        signal.connect(forward_to_nats, weak=False, priority=FORWARD_PRIORITY)
        self._forwarded.append((signal, forward_to_nats))

    async def receive(
        self,
        signal: Signal,
        *,
        group: str | None = None,
        max_deliver: int = 5,
        ack_wait: float = 30.0,
        timeout: float | None = None,  # noqa: ASYNC109 -- per message, not this call's
        backoff: tuple[float, float] = (1.0, 30.0),
        batch: int = 64,
    ) -> None:
        """Re-send ``signal``'s messages from other processes locally.

        Each message becomes ``await signal.send_async(sender, **kwargs)`` with a
        :class:`RemoteSender` as sender.

        With ``group=None`` (broadcast) every receiving process gets every message sent
        from now on, at most once; a process does not get its own forwarded sends back.
        Receivers' errors are logged (the ``"collect"`` policy).

        With ``group="name"`` (work queue) the processes of the group share one durable
        consumer, so each message is handled by one of them, at least once: it is acked
        when the receivers finished without error; on an error or a timeout it is
        nak'd, to come back after a backoff; after ``max_deliver`` attempts it is
        published to ``<subject_prefix>._dead.<signal name>`` and logged.

        :param max_deliver: attempts per message (work queue).
        :param ack_wait: seconds JetStream waits for an ack before it redelivers (a
            worker that died, say).
        :param timeout: seconds the receivers may take per message (``_timeout`` of the
            send); by default ``ack_wait`` for a work queue, no limit for broadcast.
        :param backoff: ``(first, longest)`` seconds before a failed message comes back,
            doubling per attempt.
        :param batch: messages fetched (and handled concurrently) at a time.
        :raises ValueError: ``max_deliver`` < 1, or a name that cannot be a subject.
        """
        if self._outbox is None or self._closed:
            raise RuntimeError("enter the bridge (async with) before calling receive()")
        if max_deliver < 1:
            raise ValueError(f"max_deliver must be at least 1, got {max_deliver}")
        subject = self.subject(signal)
        name = subject.removeprefix(f"{self.subject_prefix}.")
        spec = Spec(
            signal=signal,
            subject=subject,
            group=group,
            max_deliver=max_deliver,
            timeout=timeout if timeout is not None or group is None else ack_wait,
            backoff=backoff,
            batch=batch,
            dead_letter=f"{self.subject_prefix}._dead.{name}",
        )
        if group is None:
            handler = Broadcast(spec, self.origin, self.stats)
            # An ordered push consumer of this process alone, from the next message on:
            # it reads the stream, so it sees each stored message once (retried
            # publishes are de-duplicated there) and with JetStream's metadata.
            sub = await self.js.subscribe(
                subject,
                cb=handler.on_message,
                stream=self.stream,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )
            self._subscriptions.append(sub)
            return
        durable = consumer_name(subject_token(group, "group"), name)
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            # One more than ours: a worker that dies on the last attempt leaves the
            # message to the next, which then dead-letters it.
            max_deliver=max_deliver + 1,
            filter_subject=subject,
            max_ack_pending=max(1000, batch * 4),
        )
        await self.js.add_consumer(self.stream, config)
        psub = await self.js.pull_subscribe_bind(durable=durable, stream=self.stream)
        self._queues.append(WorkQueue(spec, self.js, psub, self.stats))

    @property
    def pending(self) -> int:
        """Sends buffered and not yet acknowledged by the stream."""
        return 0 if self._outbox is None else self._outbox.pending

    async def flush(self, seconds: float = 10.0) -> bool:
        """Wait up to ``seconds`` until every buffered send is published.

        :returns: ``True`` when nothing is left buffered.
        """
        return True if self._outbox is None else await self._outbox.flush(seconds)

    async def drain(self) -> None:
        """Stop: forward no more; work queues fetch no more, finish and ack the messages
        in hand; buffered sends get ``drain_timeout`` seconds to publish (the rest is
        dropped and counted). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for signal, receiver in self._forwarded:
            signal.disconnect(receiver)
        for queue in self._queues:
            queue.stop()
        for sub in self._subscriptions:
            with suppress(nats.errors.Error):
                await sub.unsubscribe()
        await asyncio.gather(*(q.task for q in self._queues), return_exceptions=True)
        if self._outbox is not None:
            await self._outbox.close(self._drain_timeout)
        if not self.client.is_closed:
            try:
                await self.client.flush(timeout=max(1, round(self._drain_timeout)))
            except Exception as exc:
                log.warning("flushing acks to the server failed (%r)", exc)


_BRIDGE_OPTIONS = {"max_buffer", "publish_timeout", "retry_backoff", "drain_timeout"}
