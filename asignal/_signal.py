"""``Signal``, ``NamedSignal``, ``Namespace``, ``signal()`` and ``ANY``: blinker's API,
with a concurrent ``send_async``.

Bookkeeping. ``receivers`` maps each receiver's id to its record, in first-connection
order; ``_by_sender`` maps a sender key (or ``ANY_KEY``) to the ids connected to it. A
send never walks these: it looks up a :class:`~asignal._dispatch.Plan` for its sender in
``_plans``, which is rebuilt lazily and thrown away, whole, by every connect and
disconnect. Writers hold ``_lock``; a send reads ``_plans`` without it, so it always sees
one consistent snapshot.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Generator, Hashable
from contextlib import contextmanager
from contextvars import copy_context
from functools import cached_property
from time import monotonic
from types import MethodType
from typing import Any, TypeVar

from . import _observe
from ._dispatch import (
    ErrorPolicy,
    Plan,
    check_errors,
    check_limit,
    collected,
    dispatch,
    inline,
    label,
    resume,
    resume_single,
)
from ._receivers import (
    ANY,
    ANY_KEY,
    KEYED_SPECIALLY,
    Record,
    add_sender,
    check_timeout,
    describe,
    make_record,
    receiver_id,
    sender_key,
)

__all__ = ["ANY", "NamedSignal", "Namespace", "Signal", "default_namespace", "signal"]

F = TypeVar("F", bound=Callable[..., Any])

_EMPTY_PLAN = Plan([])
_SECONDS = frozenset({int, float})
_INF = float("inf")


class _SenderMethodRef(weakref.WeakMethod):  # type: ignore[type-arg]
    """A weak reference to a bound-method sender (which is a new object on every access)
    that remembers the sender's key."""

    __slots__ = ("key",)
    key: Hashable

    def __new__(
        cls, sender: Any, callback: Callable[[Any], None], key: Hashable
    ) -> _SenderMethodRef:
        self = super().__new__(cls, sender, callback)
        self.key = key
        return self

    def __init__(self, sender: Any, callback: Callable[[Any], None], key: Hashable) -> None:
        super().__init__(sender, callback)  # type: ignore[call-arg]


class _SenderRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to a sender that remembers the sender's key."""

    __slots__ = ("key",)

    def __new__(cls, sender: Any, callback: Callable[[Any], None], key: Hashable) -> _SenderRef:
        return super().__new__(cls, sender, callback)

    def __init__(self, sender: Any, callback: Callable[[Any], None], key: Hashable) -> None:
        super().__init__(sender, callback)  # type: ignore[call-arg]
        self.key = key


class Signal:
    """A notification emitter: receivers connect to it, senders send through it.

    A drop-in for blinker's ``Signal`` (1.9): the same methods, arguments and return
    shapes, plus ``priority=`` and ``timeout=`` on :meth:`connect` and a
    :meth:`send_async` that runs coroutine receivers concurrently.

    :param doc: the signal's docstring.
    """

    #: An alias of :data:`asignal.ANY`, as ``blinker.Signal.ANY``.
    ANY = ANY

    @cached_property
    def receiver_connected(self) -> Signal:
        """Sent at the end of each :meth:`connect`, with ``sender`` = this signal and
        kwargs ``receiver``, ``sender`` and ``weak``: the arguments of the call (as
        blinker's)."""
        return Signal(doc="Emitted after a receiver connects.")

    @cached_property
    def receiver_disconnected(self) -> Signal:
        """Sent at the end of each explicit :meth:`disconnect`, with ``sender`` = this
        signal and kwargs ``receiver`` and ``sender`` (as blinker's). Not sent when a
        weakly held receiver is collected: it no longer exists to be passed."""
        return Signal(doc="Emitted after a receiver disconnects.")

    def __init__(self, doc: str | None = None) -> None:
        if doc:
            self.__doc__ = doc
        #: Connected receivers by id, in first-connection order. As in blinker, only its
        #: truth value is public: ``if sig.receivers:`` tells whether anything listens.
        self.receivers: dict[Hashable, Record] = {}
        #: While true, sends call no receiver and return ``[]`` (see :meth:`muted`).
        self.is_muted = False
        self._by_sender: dict[Hashable, dict[Hashable, None]] = {}
        self._weak_senders: dict[Hashable, _SenderRef | _SenderMethodRef] = {}
        self._plans: dict[Hashable, Plan] = {}
        # The plan of every sender while nobody is connected to a specific sender: sends
        # then skip computing their sender's key.
        self._any_only: Plan | None = None
        self._lock = threading.RLock()
        self._seq = 0
        # Weak-reference callbacks hold the signal weakly: a record must not keep its
        # signal alive.
        self_ref = weakref.ref(self)

        def receiver_collected(record: Record) -> None:
            sig = self_ref()
            if sig is not None:
                sig._forget(record)

        def sender_collected(ref: _SenderRef | _SenderMethodRef) -> None:
            sig = self_ref()
            if sig is not None:
                sig._forget_sender(ref)

        self._receiver_collected = receiver_collected
        self._sender_collected = sender_collected

    # --- connecting ---------------------------------------------------------------------

    def connect(
        self,
        receiver: F,
        sender: Any = ANY,
        weak: bool = True,
        *,
        priority: float = 0,
        timeout: float | None = None,
    ) -> F:
        """Connect ``receiver`` to be called when this signal is sent by ``sender``.

        As blinker's ``connect``: ``receiver`` is called as ``receiver(sender,
        **kwargs)``; ``sender`` is an object or :data:`ANY` (every sender), and a receiver
        connected to ``ANY`` and to a sender is called once per send; with ``weak=True``
        the receiver is held by a weak reference and disconnected when it is collected
        (set ``weak=False`` for lambdas and functions defined inside functions).
        Connecting a connected receiver again adds ``sender``, and ``weak``, ``priority``
        and ``timeout`` take the new values.

        :param priority: receivers with a higher priority are called first; in
            :meth:`send_async`, each priority tier finishes before the next starts.
            Equal priorities keep connection order.
        :param timeout: seconds :meth:`send_async` lets this receiver run before it is
            cancelled (``None``: no limit).
        :returns: ``receiver``, so ``connect`` works as a decorator.
        :raises TypeError: ``receiver`` is not callable, or cannot be held weakly.
        :raises ValueError: ``timeout`` is negative or NaN, or ``priority`` is NaN.
        """
        key = ANY_KEY if sender is ANY else sender_key(sender)
        record = make_record(
            receiver,
            weak=weak,
            priority=priority,
            timeout=timeout,
            on_collected=self._receiver_collected,
        )
        with self._lock:
            old = self.receivers.get(record.rid)
            if old is not None:
                record.seq = old.seq
                record.senders = old.senders
            else:
                self._seq += 1
                record.seq = self._seq
            add_sender(record, key)
            self.receivers[record.rid] = record
            bucket = self._by_sender.get(key)
            if bucket is None:
                bucket = self._by_sender[key] = {}
            bucket[record.rid] = None
            if key is not ANY_KEY and key not in self._weak_senders:
                try:
                    ref_type = _SenderMethodRef if isinstance(sender, MethodType) else _SenderRef
                    self._weak_senders[key] = ref_type(sender, self._sender_collected, key)
                except TypeError:
                    pass  # values and other objects that cannot be weakly referenced
            self._invalidate()
        if "receiver_connected" in self.__dict__ and self.receiver_connected.receivers:
            try:
                self.receiver_connected.send(self, receiver=receiver, sender=sender, weak=weak)
            except TypeError:
                # As blinker: a meta-receiver that refuses the connection undoes it.
                self.disconnect(receiver, sender)
                raise
        return receiver

    def connect_via(
        self,
        sender: Any,
        weak: bool = False,
        *,
        priority: float = 0,
        timeout: float | None = None,
    ) -> Callable[[F], F]:
        """Decorator form of :meth:`connect` for a given ``sender``. Holds the receiver
        strongly by default, as blinker's ``connect_via``.

        ::

            @sig.connect_via(app)
            async def on_app_event(sender, **kwargs): ...
        """

        def decorator(fn: F) -> F:
            self.connect(fn, sender, weak, priority=priority, timeout=timeout)
            return fn

        return decorator

    @contextmanager
    def connected_to(
        self,
        receiver: Callable[..., Any],
        sender: Any = ANY,
        *,
        priority: float = 0,
        timeout: float | None = None,
    ) -> Generator[None, None, None]:
        """Context manager that connects ``receiver`` (strongly) for the block and
        disconnects it on exit, even when the block raises (as blinker's)."""
        self.connect(receiver, sender, False, priority=priority, timeout=timeout)
        try:
            yield None
        finally:
            self.disconnect(receiver)

    @contextmanager
    def muted(self) -> Generator[None, None, None]:
        """Context manager during which sends call no receiver and return ``[]`` (as
        blinker's). Nests: the previous state comes back on exit."""
        previous = self.is_muted
        self.is_muted = True
        try:
            yield None
        finally:
            self.is_muted = previous

    def disconnect(self, receiver: Callable[..., Any], sender: Any = ANY) -> None:
        """Disconnect ``receiver`` from ``sender``; with ``sender=ANY``, from every sender
        (as blinker's). Disconnecting what is not connected does nothing. A receiver left
        with no sender is forgotten entirely."""
        rid = receiver_id(receiver)
        key = ANY_KEY if sender is ANY else sender_key(sender)
        with self._lock:
            record = self.receivers.get(rid)
            if record is not None:
                if key is ANY_KEY:
                    self._remove(record, record.senders)
                elif key in record.senders:
                    self._remove(record, (key,))
        if "receiver_disconnected" in self.__dict__ and self.receiver_disconnected.receivers:
            self.receiver_disconnected.send(self, receiver=receiver, sender=sender)

    def _remove(self, record: Record, keys: tuple[Hashable, ...]) -> None:
        rid = record.rid
        for key in keys:
            bucket = self._by_sender.get(key)
            if bucket is not None:
                bucket.pop(rid, None)
                if not bucket:
                    del self._by_sender[key]
                    self._weak_senders.pop(key, None)
        remaining = tuple(k for k in record.senders if k not in keys)
        if remaining:
            record.senders = remaining
        elif self.receivers.get(rid) is record:
            del self.receivers[rid]
        self._invalidate()

    def _forget(self, record: Record) -> None:
        with self._lock:
            if self.receivers.get(record.rid) is record:
                self._remove(record, record.senders)

    def _forget_sender(self, ref: _SenderRef | _SenderMethodRef) -> None:
        # A collected sender's id may be reused by a new object: its bucket must go now.
        with self._lock:
            if self._weak_senders.get(ref.key) is not ref:
                return
            del self._weak_senders[ref.key]
            for rid in self._by_sender.pop(ref.key, ()):
                record = self.receivers.get(rid)
                if record is not None:
                    self._remove(record, (ref.key,))
            self._invalidate()

    # --- looking up -----------------------------------------------------------------------

    def _plan(self, sender: Any) -> Plan:
        plan = self._any_only
        if plan is not None:
            return plan
        key = id(sender) if type(sender) not in KEYED_SPECIALLY else sender_key(sender)
        plans = self._plans
        plan = plans.get(key)
        if plan is None:
            # Most senders have nobody connected to them specifically: they share the
            # ANY plan, found with one more lookup and no lock.
            plan = plans.get(ANY_KEY) if key not in self._by_sender else None
            if plan is None:
                plan = self._resolve(key)
        return plan

    def _invalidate(self) -> None:
        # Called with the lock held, after every change. Replacing the dict (never
        # clearing it) keeps each send's snapshot consistent without a lock.
        self._plans = {}
        self._any_only = None

    def _resolve(self, key: Hashable) -> Plan:
        with self._lock:
            if key not in self._by_sender:
                # Only ANY receivers apply: share one plan between all such senders, so
                # senders that nobody connected to never grow the cache.
                key = ANY_KEY
            plan = self._plans.get(key)
            if plan is None:
                ids = dict.fromkeys(self._by_sender.get(ANY_KEY, ()))
                ids.update(dict.fromkeys(self._by_sender.get(key, ())))
                records = [self.receivers[rid] for rid in ids if rid in self.receivers]
                plan = Plan(records) if records else _EMPTY_PLAN
                self._plans[key] = plan
            if key is ANY_KEY and len(self._by_sender) == (ANY_KEY in self._by_sender):
                self._any_only = plan
            return plan

    def receivers_for(self, sender: Any) -> Generator[Callable[..., Any], None, None]:
        """Yield the live receivers that a send by ``sender`` calls, in dispatch order
        (priority, then connection order). As blinker's, plus that order."""
        if self.receivers:
            for get, _, _ in self._plan(sender).entries:
                receiver = get()
                if receiver is not None:
                    yield receiver

    def has_receivers_for(self, sender: Any) -> bool:
        """Whether a send by ``sender`` would call at least one receiver connected to it
        or to ``ANY`` (as blinker's; weakly held receivers that died an instant ago may
        still count). About one dict lookup."""
        if not self.receivers:
            return False
        return bool(self._plan(sender).entries)

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

        Each receiver is called as ``receiver(sender, **kwargs)``.

        :param sender: positional only; ``None`` by default.
        :param _async_wrapper: turns a coroutine receiver into a sync callable (e.g. one
            that runs it to completion); without it a coroutine receiver is an error.
        :returns: ``[(receiver, return value), ...]`` in dispatch order.
        :raises RuntimeError: a coroutine receiver is connected and no
            ``_async_wrapper`` was given; raised before any receiver is called.
        :raises TypeError: more than one positional argument.
        Exceptions of receivers propagate at once, as blinker's.
        """
        if self.is_muted or not self.receivers:
            return []
        plan = self._any_only
        if plan is None:
            plan = self._plan(sender)
            if not plan.getters:
                return []
        if _observe.observer is not None:  # observation hook: see asignal/_observe/
            return _observe.send(self, plan, sender, _async_wrapper, kwargs)
        if plan.has_async:
            return self._send_wrapped(plan, sender, _async_wrapper, kwargs)
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

    def _send_wrapped(
        self,
        plan: Plan,
        sender: Any,
        wrapper: Callable[[Callable[..., Awaitable[Any]]], Callable[..., Any]] | None,
        kwargs: dict[str, Any],
    ) -> list[tuple[Callable[..., Any], Any]]:
        live = [(get(), is_async) for get, is_async, _ in plan.entries]
        if wrapper is None:
            for receiver, is_async in live:
                if is_async and receiver is not None:
                    raise RuntimeError(
                        f"cannot send signal {label(self)} to coroutine receiver "
                        f"{describe(receiver)} with send(); use 'await send_async()' or "
                        "pass _async_wrapper"
                    )
        results = []
        for receiver, is_async in live:
            if receiver is None:
                continue
            fn = wrapper(receiver) if is_async and wrapper is not None else receiver
            results.append((receiver, fn(sender, **kwargs)))
        return results

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
        the rest. Sync receivers are called in the event loop, in dispatch order. Every
        receiver sees the sender's context variables; what a receiver sets in them does
        not leak back into the sender.

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
        :raises ValueError: a negative or NaN timeout, ``_limit < 1`` or an unknown
            ``_errors``, before any receiver runs (options are checked when a receiver
            is connected, so a send nobody listens to costs no checks).
        :raises TypeError: more than one positional argument.

        Cancelling the sender cancels every running receiver and propagates; so do
        ``BaseException``\\ s that are not ``Exception``\\ s, under either policy.
        """
        if self.is_muted or not self.receivers:
            return []
        # Options are checked whenever a receiver would run, before any does.
        if _timeout is not None and not (type(_timeout) in _SECONDS and 0 <= _timeout < _INF):
            # Not a plain finite number of seconds: let the full check explain or adjust.
            _timeout = check_timeout(_timeout, "_timeout")
        if _receiver_timeout is not None:
            _receiver_timeout = check_timeout(_receiver_timeout, "_receiver_timeout")
        if _limit is not None:
            _limit = check_limit(_limit)
        collect = _errors == "collect"
        if not collect and _errors != "raise":
            check_errors(_errors)
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
            # is the hot path.
            if plan.single and (
                _timeout is None
                or (sn := sys.modules.get("sniffio")) is None
                or sn.thread_local.name != "trio"
            ):
                # One coroutine receiver: its first step right here, no driver at all.
                receiver = plan.getters[0]()
                if receiver is None:
                    return []
                started = monotonic() if _timeout is not None else 0.0
                run = copy_context().run
                try:
                    coro = receiver(sender, **kwargs) if kwargs else receiver(sender)
                    pending = run(coro.send, None)
                except StopIteration as stop:
                    return [(receiver, stop.value)]
                except Exception as exc:
                    if not collect:
                        raise
                    return [(receiver, collected(self, receiver, exc))]
                return await resume_single(
                    self, receiver, coro, pending, run, collect, _timeout, started
                )
            if plan.simple and (_sync_wrapper is None or not plan.has_sync):
                sn = sys.modules.get("sniffio")
                trio = sn is not None and sn.thread_local.name == "trio"
                # On trio a deadline, or the raise policy's need to cancel the receiver
                # left on this task, takes a cancel scope opened before any receiver
                # runs: those sends take the general path.
                if not trio or (collect and _timeout is None):
                    # Run the receivers inline, right here, until one suspends; only then
                    # build the machinery to run the rest beside it. (Inline in this
                    # function too: one coroutine frame less per send.) The monotonic
                    # clock, not the loop's: reading it is cheaper, and the deadline is
                    # only placed on the loop's clock if something suspends.
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
                        trio,
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


class NamedSignal(Signal):
    """A :class:`Signal` with a name, as blinker's ``NamedSignal``.

    :param name: the signal's name (its key in its :class:`Namespace`).
    :param doc: the signal's docstring.
    """

    def __init__(self, name: str, doc: str | None = None) -> None:
        super().__init__(doc)
        #: The signal's name.
        self.name: str = name

    def __repr__(self) -> str:
        base = super().__repr__()
        return f"{base[:-1]}; {self.name!r}>"


class Namespace(dict[str, NamedSignal]):
    """A dict of named signals, as blinker's ``Namespace``."""

    def signal(self, name: str, doc: str | None = None) -> NamedSignal:
        """Return the signal called ``name``, creating it on first use. The same name
        always gives the same object."""
        try:
            return self[name]
        except KeyError:
            return self.setdefault(name, NamedSignal(name, doc))


#: The namespace behind :func:`signal`, as blinker's ``default_namespace``.
default_namespace: Namespace = Namespace()

#: ``signal(name, doc=None)``: the :class:`NamedSignal` called ``name`` in
#: :data:`default_namespace`, created on first use (as blinker's ``signal``).
signal = default_namespace.signal
