"""The bookkeeping behind :class:`~asignal.Signal`: who is connected to which sender, and
the cached plan of each sender.

``receivers`` maps each receiver's id to its record, in first-connection order;
``_by_sender`` maps a sender key (or ``ANY_KEY``) to the ids connected to it. A send
never walks these: it looks up a :class:`~asignal._dispatch.Plan` for its sender in
``_plans``, which is rebuilt lazily and thrown away, whole, by every connect and
disconnect. Writers hold ``_lock``; a send reads ``_plans`` without it, so it always sees
one consistent snapshot.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from types import MethodType
from typing import Any

from ._dispatch import Plan
from ._receivers import ANY_KEY, KEYED_SPECIALLY, Record, add_sender, sender_key
from ._weak_warning import warn_collected

__all__ = ["Registry"]

_EMPTY_PLAN = Plan([])


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


class Registry:
    """The connection bookkeeping of a signal; :class:`~asignal.Signal` adds the public
    methods on top of it."""

    receivers: dict[Hashable, Record]

    def __init__(self) -> None:
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
                if record.connected_at is not None:
                    warn_collected(record.connected_at, sig)

        def sender_collected(ref: _SenderRef | _SenderMethodRef) -> None:
            sig = self_ref()
            if sig is not None:
                sig._forget_sender(ref)

        self._receiver_collected = receiver_collected
        self._sender_collected = sender_collected

    def _add(self, record: Record, key: Hashable, sender: Any) -> None:
        """File a new record (or a connected receiver's new one) under ``key``."""
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

    def _discard(self, rid: Hashable, key: Hashable) -> None:
        """Disconnect the receiver ``rid`` from ``key`` (every sender for ``ANY_KEY``)."""
        with self._lock:
            record = self.receivers.get(rid)
            if record is not None:
                if key is ANY_KEY:
                    self._remove(record, record.senders)
                elif key in record.senders:
                    self._remove(record, (key,))

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
                for record in records:
                    # A send is about to reach it: its weak-reference diagnosis is moot.
                    # Here, once per plan, rather than on the send path.
                    record.connected_at = None
                plan = Plan(records) if records else _EMPTY_PLAN
                self._plans[key] = plan
            if key is ANY_KEY and len(self._by_sender) == (ANY_KEY in self._by_sender):
                self._any_only = plan
            return plan
