"""The observation hook: how a tracer or a metrics library sees every send and receiver.

Nothing here imports a telemetry package; :mod:`asignal.contrib.opentelemetry` is one
:class:`Observer`. While :data:`observer` is ``None`` (the default), the engine's send paths
check that one attribute and go on as if this module did not exist.

When an observer is set, ``Signal.send`` and ``Signal.send_async`` take the observed
path (``_path.py``). It runs the engine's own general path on a *shadow* of the send's
plan: the same records in the same order, each of whose ``get`` returns the receiver
wrapped in a small callable that reports its start and its end. The engine therefore
applies every option and policy (mode, timeouts, errors, limits) exactly as it does
unobserved; concurrent receivers run in one task group (or inline, until one suspends)
in copies of the sender's context, so what an observer makes current in
:meth:`Observer.send_started` is the parent of every receiver, and what it makes current
in :meth:`Observer.receiver_started` is current inside that receiver.

The places that call in here, each marked "observation hook": ``Signal.send`` and
``Signal.send_async`` (one check each), ``BackgroundRunner._run`` (one check),
``BackgroundRunner._cancelled`` and ``_drop`` (a call each). Bridges call :func:`inject`
(or :func:`trace_headers`) when they publish and :func:`extract` when they re-send a
message locally.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal, Protocol, TypeAlias

__all__ = [
    "Observer",
    "Outcome",
    "Site",
    "background",
    "background_cancelled",
    "background_dropped",
    "extract",
    "inject",
    "observer",
    "send",
    "send_async",
    "trace_headers",
]

#: How a receiver (or a send) ended. ``"timeout"``: cancelled because its own timeout or
#: the send's ``_timeout`` expired; ``"cancelled"``: cancelled for any other reason (the
#: sender was cancelled, or a sibling failed under the raise policy).
Outcome: TypeAlias = Literal["ok", "error", "timeout", "cancelled"]

#: What a send returns: ``[(receiver, value), ...]``.
Result: TypeAlias = list[tuple[Callable[..., Any], Any]]


class Site:
    """One receiver of one signal, as an observer sees it: built once per connected
    receiver (and thrown away with the plan), so an observer may cache what it derives
    from it in :attr:`data`."""

    __slots__ = ("data", "name", "signal", "timeout")

    def __init__(self, signal: str, name: str, timeout: float | None) -> None:
        #: The signal's name (``"anonymous"`` for a signal without one).
        self.signal = signal
        #: The receiver's qualified name, e.g. ``"app.hooks.on_request"``.
        self.name = name
        #: The receiver's own ``connect(timeout=)`` in seconds, or ``None``.
        self.timeout = timeout
        #: Free for the observer (e.g. prebuilt span and metric attributes).
        self.data: Any = None


class Observer(Protocol):
    """What the engine reports to. Every method is called in the context of the code it
    reports on, so an observer may make a span current with ``contextvars`` and restore
    it at the matching end; it must not raise."""

    def send_started(
        self,
        signal: str,
        sender: object,
        *,
        receivers: int,
        mode: str,
        errors: str,
        timeout: float | None,
    ) -> object:
        """A send is about to run its receivers, in the sender's context.

        :param signal: the signal's name.
        :param receivers: how many receivers the send may call.
        :param mode: ``"sync"`` (``send``), ``"concurrent"``, ``"sequential"`` or
            ``"limited"`` (``send_async`` with ``_limit``).
        :param errors: the error policy, ``"raise"`` or ``"collect"``.
        :param timeout: the send's ``_timeout`` in seconds, or ``None``.
        :returns: a handle, passed back to :meth:`send_finished`.
        """
        ...

    def send_finished(self, handle: object, outcome: Outcome, error: BaseException | None) -> None:
        """The send started with ``handle`` is over; ``error`` is what it raised."""
        ...

    def receiver_started(self, site: Site, send: object) -> object:
        """A receiver is about to be called, in the context it runs in, by the send
        whose handle is ``send`` (its parent: concurrent receivers share one context
        until they are handed off, so what is current may be a sibling's). Returns a
        handle for :meth:`receiver_finished`."""
        ...

    def receiver_finished(
        self, handle: object, outcome: Outcome, error: BaseException | None
    ) -> None:
        """The receiver started with ``handle`` returned (``"ok"``) or raised ``error``."""
        ...

    def background_started(self, name: str) -> object:
        """A background call (:class:`~asignal.BackgroundRunner`) named ``name`` starts,
        in its own context: a copy of the one it was scheduled from, so what is current
        there is the span that scheduled it. Returns a handle for
        :meth:`background_finished`."""
        ...

    def background_finished(
        self, handle: object, outcome: Outcome, error: BaseException | None
    ) -> None:
        """The background call started with ``handle`` ended."""
        ...

    def background_dropped(self, name: str) -> None:
        """A runner refused the call ``name`` (full, or not accepting)."""
        ...

    def background_cancelled(self, name: str) -> None:
        """A runner cancelled the call ``name`` unfinished (its drain deadline passed)."""
        ...

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """Write the current trace context into ``headers`` (e.g. W3C ``traceparent``)."""
        ...

    def extract(self, headers: Mapping[str, str]) -> AbstractContextManager[None]:
        """A context manager under which the trace context carried by ``headers`` is
        current, so sends made inside continue that trace."""
        ...


#: The observer, or ``None``: set by an instrumentor (see
#: :mod:`asignal.contrib.opentelemetry`), read by the engine once per send.
observer: Observer | None = None


def inject(headers: MutableMapping[str, str]) -> None:
    """For bridges: write the current trace context into a message's ``headers`` (a
    mutable mapping of str to str). Does nothing while nothing observes."""
    obs = observer
    if obs is not None:
        obs.inject(headers)


def trace_headers() -> dict[str, str] | None:
    """For bridges that build a message's headers later, in another task: the current
    trace context as headers (``traceparent``, ...), read now; ``None`` while nothing
    observes (then it costs one attribute read)."""
    obs = observer
    if obs is None:
        return None
    headers: dict[str, str] = {}
    obs.inject(headers)
    return headers


def extract(headers: Mapping[str, str] | None) -> AbstractContextManager[None]:
    """For bridges: a context manager under which a received message's trace context
    (from its ``headers``; ``None`` for none) is current, so the local sends made for it
    continue the sender's trace. A no-op while nothing observes."""
    obs = observer
    if obs is None or not headers:
        return nullcontext()
    return obs.extract(headers)


# The observed path reads ``observer`` from this module at each call.
from ._path import (  # noqa: E402
    background,
    background_cancelled,
    background_dropped,
    send,
    send_async,
)
