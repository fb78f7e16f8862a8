"""``Signal``, ``NamedSignal``, ``Namespace``, ``signal()`` and ``ANY``: blinker's API,
with a concurrent ``send_async``.

``Signal`` is the senders' side, on top of the receivers' side that it inherits
(``_connecting.py``: connect, disconnect, muting, lookups, the meta-signals) and the
bookkeeping under both (``_registry.py``: who is connected to which sender, the cached
plan of each sender); the engine that runs the receivers of a send is in ``_dispatch/``.
What stays here is the class itself and the fast paths of ``send`` and ``send_async``,
inlined in them because every call frame counts there.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Hashable
from contextvars import copy_context
from time import monotonic
from typing import TYPE_CHECKING, Any, Final

from . import _observe
from ._connecting import Connecting
from ._dispatch import (
    ErrorPolicy,
    check_errors,
    check_limit,
    collected,
    collectible,
    dispatch,
    inline,
    resume,
    resume_single,
    send_wrapped,
    single_on_trio,
)
from ._dispatch._background_send import send_background as _send_background
from ._options import SEND_ASYNC_OPTIONS, SEND_OPTIONS, check_underscored, check_wrapper
from ._receivers import ANY, KEYED_SPECIALLY, Record, check_timeout

if TYPE_CHECKING:
    from ._background import Scheduled
    from ._subscribe import Subscription

__all__ = ["ANY", "NamedSignal", "Namespace", "Signal", "default_namespace", "signal"]

_SECONDS: Final = frozenset({int, float})
#: The largest number of seconds the fast check lets through: beyond it an int cannot
#: become a float, and the full check explains why.
_MAX_SECONDS: Final = sys.float_info.max


class Signal(Connecting):
    """A notification emitter: receivers connect to it, senders send through it.

    A drop-in for blinker's ``Signal`` (1.9): the same methods, arguments and return
    shapes, plus ``priority=`` and ``timeout=`` on :meth:`connect` and a
    :meth:`send_async` that runs coroutine receivers concurrently.

    :param doc: the signal's docstring.
    """

    #: An alias of :data:`asignal.ANY`, as ``blinker.Signal.ANY``.
    ANY = ANY

    def __init__(self, doc: str | None = None) -> None:
        if doc:
            self.__doc__ = doc
        #: Connected receivers by id, in first-connection order. As in blinker, only its
        #: truth value is public: ``if sig.receivers:`` tells whether anything listens.
        self.receivers: dict[Hashable, Record] = {}
        #: While true, sends call no receiver and return ``[]`` (see :meth:`muted`).
        self.is_muted: bool = False
        super().__init__()

    # --- sending ------------------------------------------------------------------------------

    def send(
        self,
        sender: Any = None,
        /,
        *,
        _async_wrapper: Callable[[Callable[..., Awaitable[Any]]], Callable[..., Any]] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Callable[..., Any], Any]]:
        """Call every receiver for ``sender``, one after another, as blinker's ``send``.

        Each receiver is called as ``receiver(sender, **kwargs)``. Exceptions of
        receivers propagate at once, as blinker's.

        :param sender: positional only; ``None`` by default.
        :param _async_wrapper: turns a coroutine receiver into a sync callable (e.g. one
            that runs it to completion); without it a coroutine receiver is an error.
        :returns: ``[(receiver, return value), ...]`` in dispatch order.
        :raises RuntimeError: a coroutine receiver is connected and no
            ``_async_wrapper`` was given; raised before any receiver is called.
        :raises TypeError: more than one positional argument; ``_async_wrapper`` is not
            callable; a keyword that starts with ``_`` is a near-miss of
            ``_async_wrapper``.
        """
        if self.is_muted or not self.receivers:
            return []
        if _async_wrapper is not None:
            check_wrapper(_async_wrapper, "_async_wrapper", "a coroutine receiver into a sync one")
        if kwargs:
            for key in kwargs:
                if key < "`" and key >= "_":  # starts with "_": see send_async
                    check_underscored(key, SEND_OPTIONS, "send")
        plan = self._any_only
        if plan is None:
            plan = self._plan(sender)
            if not plan.getters:
                return []
        if _observe.observer is not None:
            # Observation hook: see asignal/_observe/ (whose sync path calls every
            # receiver and schedules the background ones, each reporting itself).
            return _observe.send(self, plan, sender, _async_wrapper, kwargs)
        if plan.wrapped:
            return send_wrapped(self, plan, sender, _async_wrapper, kwargs)
        getters = plan.getters
        if len(getters) == 1:
            # One receiver is common (a logger, a test's recorder): no loop at all.
            receiver = getters[0]()
            if receiver is None:
                return []
            return [(receiver, receiver(sender, **kwargs) if kwargs else receiver(sender))]
        # A comprehension is the fastest loop CPython has; the walrus dereferences each
        # weak receiver once and skips the collected ones.
        if kwargs:
            return [(r, r(sender, **kwargs)) for get in plan.getters if (r := get()) is not None]
        return [(r, r(sender)) for get in plan.getters if (r := get()) is not None]

    async def send_async(
        self,
        sender: Any = None,
        /,
        *,
        _sync_wrapper: Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]] | None = None,
        _sequential: bool = False,
        _timeout: float | None = None,
        _receiver_timeout: float | None = None,
        _limit: int | None = None,
        _errors: ErrorPolicy = "raise",
        **kwargs: Any,
    ) -> list[tuple[Callable[..., Any], Any]]:
        """Send to every receiver for ``sender``; coroutine receivers run concurrently.

        Receivers are called as ``receiver(sender, **kwargs)`` in dispatch order: higher
        ``priority`` first, then connection order. Each priority tier runs concurrently
        and finishes before the next starts. A coroutine receiver that returns without
        suspending never becomes a task; one that suspends continues concurrently with
        the rest (on trio, in a nursery opened on the sender's task). Sync receivers are
        called in the event loop, in dispatch order. Every receiver sees the sender's
        context variables; what a receiver sets in them does not leak back into the
        sender.

        Cancelling the sender cancels every running receiver and propagates; so do
        ``BaseException``\\ s that are not ``Exception``\\ s, under either policy. A
        cancellation that a receiver raises itself, nobody having cancelled the send, is
        that receiver's failure.

        :param sender: positional only; ``None`` by default.
        :param _sync_wrapper: turns each sync receiver into an async callable, e.g.
            ``anyio.to_thread``-based, so it runs like a coroutine receiver (blinker's
            option; without it sync receivers are simply called).
        :param _sequential: run one receiver at a time, awaiting each in the sender's
            task and context: blinker's ``send_async`` behaviour.
        :param _timeout: seconds for the whole send; on expiry the running receivers
            are cancelled. ``None``: no limit.
        :param _receiver_timeout: seconds each receiver may run (a receiver's own
            ``connect(timeout=)`` takes precedence); on expiry it is cancelled.
        :param _limit: the most receivers running at once (an int >= 1).
        :param _errors: ``"raise"``: the first exception cancels the running receivers
            and is raised as itself; several failing at once raise an ``ExceptionGroup``
            of them (in dispatch order); an expired timeout raises ``TimeoutError``.
            ``"collect"``: every receiver runs to its end; an exception (or a
            ``TimeoutError``) becomes that receiver's value and is logged on the
            ``asignal`` logger with the receiver's qualified name.
        :returns: ``[(receiver, value), ...]`` in dispatch order, whatever order the
            receivers finished in.
        :raises ValueError: a negative, NaN or too large timeout, ``_limit < 1`` or an
            unknown ``_errors``, before any receiver runs (options are checked when a
            receiver is connected, so a send nobody listens to costs no checks).
        :raises TypeError: more than one positional argument; a timeout or ``_limit``
            that is not a number; ``_sync_wrapper`` is not callable; a keyword that
            starts with ``_`` is a near-miss of an option (``_timout=``), before any
            receiver runs.
        """
        if self.is_muted or not self.receivers:
            return []
        # Options are checked whenever a receiver would run, before any does.
        if _timeout is not None and not (
            type(_timeout) in _SECONDS and 0 <= _timeout <= _MAX_SECONDS
        ):
            # Not a plain finite number of seconds: let the full check explain or adjust.
            _timeout = check_timeout(_timeout, "_timeout")
        if _receiver_timeout is not None:
            _receiver_timeout = check_timeout(_receiver_timeout, "_receiver_timeout")
        if _limit is not None:
            _limit = check_limit(_limit)
        # One compare for the default policy (a compare that feeds a branch is the
        # specialised kind; one stored as a bool is not).
        if _errors == "raise":
            collect = False
        elif _errors == "collect":
            collect = True
        else:
            collect = check_errors(_errors) == "collect"  # raises ValueError
        if _sync_wrapper is not None:
            check_wrapper(_sync_wrapper, "_sync_wrapper", "a sync receiver into an async one")
        if kwargs:
            for key in kwargs:
                # Starts with "_" ("`" follows "_"): no slice, and one compare for
                # the usual lowercase payload names.
                if key < "`" and key >= "_":
                    check_underscored(key, SEND_ASYNC_OPTIONS, "send_async")
        plan = self._any_only
        if plan is None:
            # _plan(), its cached case inlined.
            if type(sender) in KEYED_SPECIALLY or (plan := self._plans.get(id(sender))) is None:
                plan = self._plan(sender)
            if not plan.entries:
                return []
        if _observe.observer is not None:  # observation hook: see asignal/_observe/
            options: dict[str, Any] = {"sync_wrapper": _sync_wrapper, "limit": _limit}
            options.update(sequential=_sequential, send_timeout=_timeout)
            options.update(receiver_timeout=_receiver_timeout)
            return await _observe.send_async(self, plan, sender, kwargs, dispatch, collect, options)
        if not _sequential and _limit is None and _receiver_timeout is None:
            # The fast paths. on_trio() is inlined, and asked only when it matters: this
            # is the hot path. trio cannot be running unless it was imported, and that
            # dict lookup costs a quarter of reading sniffio's thread-local.
            if plan.single:
                # One coroutine receiver: its first step right here, no driver at all.
                receiver = plan.getters[0]()
                if receiver is None:
                    return []
                if (
                    _timeout is not None
                    and "trio" in sys.modules
                    and (sn := sys.modules.get("sniffio")) is not None
                    and sn.thread_local.name == "trio"
                ):
                    # trio: the deadline's scope must be open before the receiver starts.
                    return await single_on_trio(self, receiver, sender, kwargs, collect, _timeout)
                started = monotonic() if _timeout is not None else 0.0
                run = copy_context().run
                try:
                    coro = receiver(sender, **kwargs) if kwargs else receiver(sender)
                    pending = run(coro.send, None)
                except StopIteration as stop:
                    return [(receiver, stop.value)]
                except BaseException as exc:
                    if not collectible(exc, collect):
                        raise
                    return [(receiver, collected(self, receiver, exc))]
                return await resume_single(
                    self, receiver, coro, pending, run, collect, _timeout, started
                )
            if (
                plan.simple
                and (_sync_wrapper is None or not plan.has_sync)
                and (
                    "trio" not in sys.modules
                    or (sn := sys.modules.get("sniffio")) is None
                    or sn.thread_local.name != "trio"
                )
            ):
                # On asyncio: run the receivers inline, right here, until one suspends;
                # only then build the machinery to run the rest beside it. (Inline in
                # this function too: one coroutine frame less per send.) The monotonic
                # clock, not the loop's: reading it is cheaper, and the deadline is only
                # placed on the loop's clock if something suspends. (On trio the
                # nursery must be open before the first receiver starts: dispatch()
                # opens it.)
                started = monotonic() if _timeout is not None else 0.0
                results: list[tuple[Callable[..., Any], Any]] = []
                it = iter(plan.entries)
                drv = inline(self, it, sender, kwargs, results, collect)
                run = copy_context().run
                try:
                    pending = run(drv.send, None)
                except StopIteration:
                    return results
                return await resume(
                    self,
                    plan,
                    sender,
                    kwargs,
                    collect,
                    _timeout,
                    started,
                    results,
                    (drv, pending, run, it),
                )
        return await dispatch(
            self,
            plan,
            sender,
            kwargs,
            sync_wrapper=_sync_wrapper,
            sequential=_sequential,
            send_timeout=_timeout,
            receiver_timeout=_receiver_timeout,
            limit=_limit,
            collect=collect,
        )

    def send_background(self, sender: Any = None, /, **kwargs: Any) -> Scheduled | None:
        """Schedule the whole send on the current :class:`~asignal.BackgroundRunner` and
        return at once: the sender's choice, where ``connect(background=True)`` is the
        receiver's. In the background, ``send_async(sender, _errors="collect",
        **kwargs)`` runs every receiver with its usual ordering and timeouts; failures
        are logged, never raised. A plain method: callable from a coroutine, from sync
        code on the event loop's thread and from an anyio worker thread (a FastAPI sync
        endpoint). The other ``send_async`` options may be passed.

        :returns: the :class:`~asignal.Scheduled` record; ``None`` when nobody listens to
            ``sender`` (nothing is scheduled, no runner is needed), when the signal is
            muted, or when the runner is full or shutting down (dropped, counted in
            ``stats.dropped`` and logged).
        :raises RuntimeError: no runner is current.
        :raises TypeError: ``_errors`` is passed; a ``_`` keyword is a near-miss of an
            option.
        """
        return _send_background(self, sender, kwargs)

    def subscribe(self, sender: Any = ANY, *, max_buffer: int = 100) -> Subscription:
        """``async with sig.subscribe() as sends: async for sender, kwargs in sends:``
        the sends of this signal by ``sender`` (default: any), in order, never holding a
        sender up: past ``max_buffer`` unread sends, new ones are dropped for this
        subscriber (counted in ``sends.dropped`` and logged). Leaving the block
        disconnects.

        :param max_buffer: sends buffered before dropping (an int >= 1).
        :raises TypeError: ``max_buffer`` is not an int.
        :raises ValueError: ``max_buffer`` < 1.
        """
        from ._subscribe import subscribe

        return subscribe(self, sender, max_buffer=max_buffer)

    async def wait_for(
        self,
        sender: Any = ANY,
        *,
        condition: Callable[..., bool] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the API's name (Sanic's app.event)
    ) -> tuple[Any, dict[str, Any]]:
        """Wait for the next send by ``sender`` for which ``condition(sender, **kwargs)``
        is true, and return its ``(sender, kwargs)`` (as Sanic's ``app.event``).

        :param timeout: seconds to wait (``None``: no limit).
        :raises TimeoutError: no such send within ``timeout``.
        """
        from ._subscribe import wait_for

        return await wait_for(self, sender, condition=condition, timeout=timeout)


# Defined on top of Signal, and importable from here as they always were.
from ._namespace import NamedSignal, Namespace, default_namespace, signal  # noqa: E402
