"""Helpers for users' tests: record what signals send, and settle background work.

The ``captured_templates`` pattern from Flask's documentation, for any signal::

    from asignal.testing import capture
    from asignal.signals import template_rendered

    async def test_index_renders_index_html(client):
        with capture(template_rendered) as sent:
            await client.get("/")
        [(app, kwargs)] = sent
        assert kwargs["template"].name == "index.html"

Every signal of an app at once, with an async wait for what arrives later (over real
HTTP, a server's teardown signals can come after the client has the response)::

    from asignal.testing import Recorder

    async def test_teardown(app, client):
        with Recorder(app) as recorder:
            await client.get("/")
            await recorder.wait_for("appcontext_popped", timeout=5)
        assert recorder.names()[:2] == ["appcontext_pushed", "request_started"]

And background receivers, which the response does not wait for::

    from asignal.testing import settle

    async def test_welcome_mail_is_sent(app, client, outbox):
        await client.post("/signup", data={"email": "a@example.com"})
        await settle()            # every pending background call of the current runner
        assert outbox == ["a@example.com"]
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

from ._background import BackgroundRunner, require_runner
from ._receivers import ANY
from ._signal import Signal

__all__ = ["Recorder", "Seen", "capture", "settle"]


@contextmanager
def capture(signal: Signal, sender: Any = ANY) -> Generator[list[tuple[Any, dict[str, Any]]]]:
    """Record every send of ``signal`` (by ``sender``; default: any sender) while the
    block runs.

    Yields a list that grows by one ``(sender, kwargs)`` pair per send, in the order the
    sends happened. The recorder is a sync receiver, so it sees both :meth:`Signal.send`
    and :meth:`Signal.send_async`, returns ``None``, and works in sync and async tests
    alike. It is disconnected on exit, also when the block raises.
    """
    sent: list[tuple[Any, dict[str, Any]]] = []

    def record(sender: Any, /, **kwargs: Any) -> None:
        sent.append((sender, kwargs))

    with signal.connected_to(record, sender):
        yield sent


async def settle(
    runner: BackgroundRunner | None = None,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - bounds the wait, with a clear message
) -> None:
    """Wait until ``runner`` (default: the current runner) has no pending background
    call, including calls that the pending ones schedule meanwhile. Their outcomes are
    then in ``runner.stats`` (failures are logged, not raised).

    Call it from a task, not from a background call of the same runner (that call would
    wait for itself).

    :param timeout: seconds to wait at most (``None``: no limit).
    :raises RuntimeError: no runner is given and none is current.
    :raises TimeoutError: calls are still pending after ``timeout`` seconds.
    """
    if runner is None:
        runner = require_runner("asignal.testing.settle()")
    with anyio.move_on_after(timeout):
        await runner.wait_idle()
    if runner.pending:
        raise TimeoutError(f"{runner!r} still has {runner.pending} calls pending after {timeout} s")


@dataclass
class Seen:
    """One send a :class:`Recorder` saw: the signal's ``name``, the ``sender`` and the
    ``kwargs`` it sent."""

    #: The name of the signal sent (its key in :attr:`Recorder.signals`).
    name: str
    #: The sender it was sent by.
    sender: Any
    #: The keyword arguments it was sent with.
    kwargs: dict[str, Any]


def _flask_signals() -> dict[str, Signal]:
    from . import signals

    return {name: getattr(signals, name) for name in signals.__all__ if name != "namespace"}


def _by_name(signals: Mapping[str, Signal] | Iterable[Signal] | None) -> dict[str, Signal]:
    if signals is None:
        return _flask_signals()
    if isinstance(signals, Mapping):
        return dict(signals)
    named = {}
    for sig in signals:
        name = getattr(sig, "name", None)
        if not isinstance(name, str):
            raise TypeError(
                f"Recorder cannot name {sig!r}: pass named signals, or a mapping of "
                "names to signals"
            )
        named[name] = sig
    return named


class Recorder:
    """Records every send of several signals by ``sender`` (default: any sender), in the
    order the sends arrive, into :attr:`seen`.

    ``with Recorder(app) as recorder:`` connects for the block; :meth:`connect` and
    :meth:`disconnect` do the same by hand.

    :param sender: the sender to record (an app, for the adapters' signals).
    :param seen: a list to append to (default: a new one), e.g. shared by two recorders.
    :param sync: record with sync receivers (default), which see :meth:`Signal.send`
        and :meth:`Signal.send_async` alike; ``False`` records with coroutine receivers,
        which ``send_async`` awaits (and ``send`` refuses).
    :param signals: the signals to record, as named signals or a mapping of names to
        signals; default: every signal of :mod:`asignal.signals`.
    :raises TypeError: a signal has no name to record it under.
    """

    def __init__(
        self,
        sender: Any = ANY,
        seen: list[Seen] | None = None,
        *,
        sync: bool = True,
        signals: Mapping[str, Signal] | Iterable[Signal] | None = None,
    ) -> None:
        #: The sender recorded (``ANY``: every sender).
        self.sender = sender
        #: Every send recorded, in order of arrival.
        self.seen: list[Seen] = [] if seen is None else seen
        #: Whether the recording receivers are sync (else coroutine) functions.
        self.sync = sync
        #: The signals recorded, by the name each send is recorded under.
        self.signals: dict[str, Signal] = _by_name(signals)
        self._receivers: list[tuple[Signal, Callable[..., Any]]] = []
        # Replaced by a fresh event on every record, so that waiters wake and re-check.
        self._changed: anyio.Event | None = None

    def connect(self) -> Recorder:
        """Connect a recording receiver to every signal (strongly, until
        :meth:`disconnect`). Returns the recorder."""
        for name, sig in self.signals.items():
            receiver = self._receiver_for(name)
            sig.connect(receiver, self.sender, weak=False)
            self._receivers.append((sig, receiver))
        return self

    def disconnect(self) -> None:
        """Disconnect every recording receiver; :attr:`seen` is kept."""
        for sig, receiver in self._receivers:
            sig.disconnect(receiver)
        self._receivers.clear()

    def __enter__(self) -> Recorder:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()

    def _record(self, name: str, sender: Any, kwargs: dict[str, Any]) -> None:
        self.seen.append(Seen(name, sender, kwargs))
        if self._changed is not None:
            changed, self._changed = self._changed, None
            changed.set()

    def _receiver_for(self, name: str) -> Callable[..., Any]:
        if self.sync:

            def record(sender: Any, /, **kwargs: Any) -> None:
                self._record(name, sender, kwargs)

            return record

        async def record_async(sender: Any, /, **kwargs: Any) -> None:
            self._record(name, sender, kwargs)

        return record_async

    def names(self) -> list[str]:
        """The names of the signals seen, in order of arrival."""
        return [seen.name for seen in self.seen]

    def all(self, name: str) -> list[Seen]:
        """Every send of the signal ``name``, in order."""
        return [seen for seen in self.seen if seen.name == name]

    def one(self, name: str) -> Seen:
        """The one send of the signal ``name``.

        :raises AssertionError: it was seen zero or several times (the message lists
            what was seen).
        """
        matches = self.all(name)
        if len(matches) != 1:
            raise AssertionError(f"{name} seen {len(matches)} times; seen: {self.names()}")
        return matches[0]

    def clear(self) -> None:
        """Forget what was seen."""
        self.seen.clear()

    async def wait_for(
        self,
        name: str,
        count: int = 1,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - bounds the wait, with a clear message
    ) -> Seen:
        """Wait until the signal ``name`` has been seen ``count`` times in all (at once
        if it has); must run on the event loop the sends are made on.

        :param timeout: seconds to wait at most (``None``: no limit).
        :returns: its ``count``-th send.
        :raises TimeoutError: not seen ``count`` times within ``timeout`` seconds (the
            message lists what was seen).
        """
        with anyio.move_on_after(timeout):
            while len(matches := self.all(name)) < count:
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
            return matches[count - 1]
        raise TimeoutError(
            f"{name} seen {len(self.all(name))} of {count} times within {timeout} s; "
            f"seen: {self.names()}"
        )
