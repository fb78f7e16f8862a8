"""The observed path: what ``Signal.send``/``send_async`` and ``BackgroundRunner`` run
while an observer is set (see :mod:`asignal._observe`)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeAlias

from .._receivers import describe
from . import Observer, Outcome, Result, Site

if TYPE_CHECKING:
    from .._dispatch import Plan
    from .._signal import Signal

__all__ = ["background", "background_cancelled", "background_dropped", "send", "send_async"]

# This package's module, whose ``observer`` is read at each call (it is being imported
# when this module is).
_hook = sys.modules[__package__]


# --- background calls ----------------------------------------------------------------------


def background(
    fn: Callable[..., Awaitable[Any]], name: str, timeout: float | None
) -> Callable[..., Awaitable[Any]]:
    """For the runner: ``fn`` reporting its call as the background call ``name``, which
    the runner bounds by ``timeout`` seconds (``None``: no bound)."""

    async def observed(*args: Any) -> Any:
        obs = _hook.observer
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
    obs = _hook.observer
    if obs is not None:
        obs.background_dropped(name)


def background_cancelled(name: str) -> None:
    """For the runner: it cancelled the background call ``name`` unfinished."""
    obs = _hook.observer
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
    from .._dispatch import Plan

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
    obs = _hook.observer
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
    for (get, is_async, own), (_, _, record) in zip(plan.entries, shadow.entries, strict=True):
        if own.background:  # scheduled below, as the unobserved path does
            continue
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
    obs = _hook.observer
    if obs is None:  # uninstrumented a moment ago: the unobserved path, whole
        from .._dispatch._sync import send_wrapped  # here: the engine imports this package

        return send_wrapped(signal, plan, sender, async_wrapper, kwargs)
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
    slots = None
    try:
        if plan.background:
            from .._dispatch._background_send import merge, schedule_nowait

            # Through the shadow, so each background call reports itself under this
            # send's handle; no runner is a RuntimeError before any receiver runs.
            slots = schedule_nowait(signal, shadow, sender, kwargs)
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
    return results if slots is None else _unwrap(merge(shadow, results, slots))


def _label(signal: Signal) -> str:
    # As the engine names a signal in its messages.
    name = getattr(signal, "name", None)
    return repr(name) if name is not None else repr(signal)
