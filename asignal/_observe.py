"""The observation hook: how a tracer or a metrics library sees every send and receiver.

Nothing here imports a telemetry package; :mod:`asignal.contrib.opentelemetry` is one
:class:`Observer`. While :data:`observer` is ``None`` (the default), the engine's send paths
check that one attribute and go on as if this module did not exist.

When an observer is set, ``Signal.send`` and ``Signal.send_async`` take the observed path
below. It runs the engine's own general path on a *shadow* of the send's plan: the same
records in the same order, each of whose ``get`` returns the receiver wrapped in a small
callable that reports its start and its end. The engine therefore applies every option
and policy (mode, timeouts, errors, limits) exactly as it does unobserved; concurrent
receivers run in one task group (or inline, until one suspends) in copies of the
sender's context, so what an observer makes current in :meth:`Observer.send_started` is
the parent of every receiver, and what it makes current in
:meth:`Observer.receiver_started` is current inside that receiver.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from time import monotonic
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from ._receivers import describe

if TYPE_CHECKING:
    from ._dispatch import Plan
    from ._signal import Signal

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
]

#: How a receiver (or a send) ended. ``"timeout"``: cancelled because its own timeout or
#: the send's ``_timeout`` expired; ``"cancelled"``: cancelled for any other reason (the
#: sender was cancelled, or a sibling failed under the raise policy).
Outcome: TypeAlias = Literal["ok", "error", "timeout", "cancelled"]

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


def extract(headers: Mapping[str, str] | None) -> AbstractContextManager[None]:
    """For bridges: a context manager under which a received message's trace context
    (from its ``headers``; ``None`` for none) is current, so the local sends made for it
    continue the sender's trace. A no-op while nothing observes."""
    obs = observer
    if obs is None or not headers:
        return nullcontext()
    return obs.extract(headers)


# --- background calls ----------------------------------------------------------------------


def background(
    fn: Callable[..., Awaitable[Any]], name: str, timeout: float | None
) -> Callable[..., Awaitable[Any]]:
    """For the runner: ``fn`` reporting its call as the background call ``name``, which
    the runner bounds by ``timeout`` seconds (``None``: no bound)."""

    async def observed(*args: Any) -> Any:
        obs = observer
        if obs is None:
            return await fn(*args)
        handle = obs.background_started(name)
        started = monotonic()
        try:
            value = await fn(*args)
        except BaseException as exc:
            if isinstance(exc, Exception) or not _is_cancellation(exc):
                outcome: Outcome = "error"
            elif timeout is not None and monotonic() - started >= timeout - _SLACK:
                outcome = "timeout"
            else:
                outcome = "cancelled"
            obs.background_finished(handle, outcome, exc)
            raise
        obs.background_finished(handle, "ok", None)
        return value

    return observed


def background_dropped(name: str) -> None:
    """For the runner: it refused the background call ``name``."""
    obs = observer
    if obs is not None:
        obs.background_dropped(name)


def background_cancelled(name: str) -> None:
    """For the runner: it cancelled the background call ``name`` unfinished."""
    obs = observer
    if obs is not None:
        obs.background_cancelled(name)


# --- the observed path ---------------------------------------------------------------------

# (the observer, the send's handle, its deadline on ``time.monotonic``, its
# ``_receiver_timeout``). The send's receivers report to the observer that saw it start,
# even if another is set meanwhile. The deadlines are read only when a receiver is
# cancelled, to tell a timeout from any other cancellation.
_Sending: TypeAlias = tuple[Observer, object, float, float | None]
_sending: ContextVar[_Sending] = ContextVar("asignal_sending")
# A receiver's own deadline is set by the engine a moment before the wrapper starts its
# clock: a cancellation this close to it is still that timeout.
_SLACK = 0.001


def _name(signal: Signal) -> str:
    name = getattr(signal, "name", None)
    return name if isinstance(name, str) else "anonymous"


def _cancelled_outcome(site: Site, started: float) -> Outcome:
    now = monotonic()
    sending = _sending.get(None)
    if sending is not None:
        _, _, send_deadline, receiver_timeout = sending
        if now >= send_deadline:
            return "timeout"
        timeout = site.timeout if site.timeout is not None else receiver_timeout
        if timeout is not None and now - started >= timeout - _SLACK:
            return "timeout"
    return "cancelled"


def _is_cancellation(exc: BaseException) -> bool:
    if isinstance(exc, GeneratorExit):
        return True
    import anyio

    try:
        return isinstance(exc, anyio.get_cancelled_exc_class())
    except Exception:  # no async library running: not a cancellation
        return False


class _Call(tuple[Any, Site]):
    """A receiver as the engine sees it on the observed path: ``(receiver, site)``. A
    tuple, so that making one per call runs no Python code. It names itself after the
    receiver (``describe`` reads ``__qualname__``, found by ``__getattr__``; the empty
    ``__module__`` adds nothing), so the engine's log lines and timeout messages name
    the receiver."""

    __slots__ = ()
    __module__ = ""

    def __getattr__(self, name: str) -> Any:
        if name == "__qualname__":
            return self[1].name
        raise AttributeError(name)


class _SyncCall(_Call):
    __slots__ = ()
    __module__ = ""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        receiver, site = self
        sending = _sending.get(None)
        if sending is None:  # not sent on the observed path
            return receiver(*args, **kwargs)
        obs = sending[0]
        handle = obs.receiver_started(site, sending[1])
        try:
            value = receiver(*args, **kwargs)
        except BaseException as exc:
            obs.receiver_finished(handle, "error", exc)
            raise
        obs.receiver_finished(handle, "ok", None)
        return value


class _AsyncCall(_Call):
    __slots__ = ()
    __module__ = ""

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        receiver, site = self
        sending = _sending.get(None)
        if sending is None:
            return await receiver(*args, **kwargs)
        obs = sending[0]
        handle = obs.receiver_started(site, sending[1])
        # Only a receiver's own timeout needs its start (the send's deadline is absolute).
        started = monotonic() if site.timeout is not None or sending[3] is not None else 0.0
        try:
            value = await receiver(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, Exception) or not _is_cancellation(exc):
                obs.receiver_finished(handle, "error", exc)
            else:
                obs.receiver_finished(handle, _cancelled_outcome(site, started), exc)
            raise
        obs.receiver_finished(handle, "ok", None)
        return value


class _Shadow:
    """A record whose ``get`` returns its receiver wrapped in a :class:`_Call`; every other
    field is the original record's."""

    __slots__ = ("_record", "get", "site")

    def __init__(self, record: Any, site: Site) -> None:
        self._record = record
        self.site = site
        deref = record.get
        call = _AsyncCall if record.is_async else _SyncCall

        def get() -> _Call | None:
            receiver = deref()
            return None if receiver is None else call((receiver, site))

        self.get = get

    def __getattr__(self, name: str) -> Any:
        return getattr(self._record, name)


# Shadow plans by the id of their plan (kept alive alongside, so the id stays theirs).
# A plan is replaced on every connect/disconnect, so old entries just go unused: the
# cache is dropped whole when it grows.
_shadows: dict[int, tuple[Plan, Plan]] = {}
_SHADOWS_MAX = 512


def _shadow(signal: Signal, plan: Plan) -> Plan:
    cached = _shadows.get(id(plan))
    if cached is not None and cached[0] is plan:
        return cached[1]
    from ._dispatch import Plan

    name = _name(signal)
    shadows = [
        _Shadow(record, Site(name, describe(record.get() or record), record.timeout))
        for _, _, record in plan.entries
    ]
    shadow = Plan(shadows)  # type: ignore[arg-type]  # records by duck typing
    if len(_shadows) >= _SHADOWS_MAX:
        _shadows.clear()
    _shadows[id(plan)] = (plan, shadow)
    return shadow


def _unwrap(results: Result) -> Result:
    return [(r[0] if isinstance(r, _Call) else r, value) for r, value in results]


def _send_outcome(exc: BaseException, deadline: float) -> Outcome:
    if isinstance(exc, TimeoutError) and monotonic() >= deadline:
        return "timeout"
    if not isinstance(exc, Exception) and _is_cancellation(exc):
        return "cancelled"
    return "error"


async def send_async(
    signal: Signal,
    plan: Plan,
    sender: Any,
    kwargs: dict[str, Any],
    dispatch: Callable[..., Awaitable[Result]],
    collect: bool,
    options: dict[str, Any],
) -> Result:
    """The observed ``send_async``: report the send, then run the shadow of ``plan``
    through ``dispatch`` (the engine's general path) with the send's own ``options``."""
    obs = observer
    if obs is None:
        return await dispatch(signal, plan, sender, kwargs, collect=collect, **options)
    shadow = _shadow(signal, plan)
    send_timeout: float | None = options["send_timeout"]
    deadline = monotonic() + send_timeout if send_timeout is not None else float("inf")
    if options["sequential"]:
        mode = "sequential"
    else:
        mode = "concurrent" if options["limit"] is None else "limited"
    handle = obs.send_started(
        _name(signal),
        sender,
        receivers=len(plan.entries),
        mode=mode,
        errors="collect" if collect else "raise",
        timeout=send_timeout,
    )
    sync_wrapper = options["sync_wrapper"]
    if sync_wrapper is not None:
        # The user's wrapper gets the receiver itself, and what it returns is reported.
        options = {
            **options,
            "sync_wrapper": lambda c: _AsyncCall((sync_wrapper(c[0]), c[1])),
        }
    token = _sending.set((obs, handle, deadline, options["receiver_timeout"]))
    try:
        results = await dispatch(signal, shadow, sender, kwargs, collect=collect, **options)
    except BaseException as exc:
        obs.send_finished(handle, _send_outcome(exc, deadline), exc)
        raise
    finally:
        _sending.reset(token)
    obs.send_finished(handle, "ok", None)
    return _unwrap(results)


def send(
    signal: Signal,
    plan: Plan,
    sender: Any,
    async_wrapper: Callable[[Callable[..., Awaitable[Any]]], Callable[..., Any]] | None,
    kwargs: dict[str, Any],
) -> Result:
    """The observed ``send``: blinker's sequential loop, each call reported."""
    shadow = _shadow(signal, plan)
    # (receiver, is_async, its site) of each live receiver, in dispatch order.
    calls = []
    for (get, is_async, _), (_, _, record) in zip(plan.entries, shadow.entries, strict=True):
        receiver = get()
        if receiver is None:
            continue
        if is_async and async_wrapper is None:
            raise RuntimeError(
                f"cannot send signal {_label(signal)} to coroutine receiver "
                f"{describe(receiver)} with send(); use 'await send_async()' or "
                "pass _async_wrapper"
            )
        calls.append((receiver, is_async, record.site))  # type: ignore[union-attr]
    obs = observer
    if obs is None:  # uninstrumented a moment ago
        return [
            (r, (async_wrapper(r) if is_async and async_wrapper else r)(sender, **kwargs))
            for r, is_async, _ in calls
        ]
    handle = obs.send_started(
        _name(signal),
        sender,
        receivers=len(plan.entries),
        mode="sync",
        errors="raise",
        timeout=None,
    )
    results: Result = []
    token = _sending.set((obs, handle, float("inf"), None))
    try:
        for receiver, is_async, site in calls:
            # Wrapped right before the call, as the unobserved path does.
            fn = async_wrapper(receiver) if is_async and async_wrapper else receiver
            results.append((receiver, _SyncCall((fn, site))(sender, **kwargs)))
    except BaseException as exc:
        obs.send_finished(handle, "error", exc)
        raise
    finally:
        _sending.reset(token)
    obs.send_finished(handle, "ok", None)
    return results


def _label(signal: Signal) -> str:
    # As the engine names a signal in its messages.
    name = getattr(signal, "name", None)
    return repr(name) if name is not None else repr(signal)
