"""Receiver and sender identity, weak references, and sync/async classification.

A connected receiver is held by one record object. For a weak receiver the record *is*
the weak reference (a ``weakref.ref`` or ``WeakMethod`` subclass), so connecting costs
one object and calling the record is the C-level dereference. Records of strong
receivers expose the same ``get`` shape through ``itertools.repeat(obj).__next__``,
which is just as cheap to call.
"""

from __future__ import annotations

import functools
import itertools
import math
import types
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Final, TypeAlias

__all__ = [
    "ANY",
    "ANY_KEY",
    "AnySender",
    "KEYED_SPECIALLY",
    "Record",
    "StrongRecord",
    "WeakFunctionRecord",
    "WeakMethodRecord",
    "check_timeout",
    "describe",
    "is_async_callable",
    "make_record",
    "receiver_id",
    "sender_key",
]


class AnySender:
    """The type of :data:`ANY`; one instance, which reprs as ``ANY`` as blinker's does."""

    _instance: AnySender | None = None

    def __new__(cls) -> AnySender:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANY"

    def __reduce__(self) -> str:
        return "ANY"


ANY: Final[AnySender] = AnySender()
"""The sender that means "any sender", as blinker's ``ANY``: ``connect(receiver)`` (or
``connect(receiver, ANY)``) connects ``receiver`` for every sender. Its type is
:class:`AnySender`, of which it is the only instance."""

#: The bucket key of receivers connected to ANY. A tuple no sender key can equal: sender
#: keys are ints (ids) or ``(type, value)`` pairs whose first item is a type.
ANY_KEY: Final[Hashable] = ("asignal.ANY",)

# Senders of these types are equal by value: two equal floats or strings are the same
# sender even when they are distinct objects. The type is part of the key so that 0,
# False and 0.0 stay three different senders (blinker 1.9 cannot tell 0 from ANY).
_BY_VALUE: Final = frozenset({str, int, float, bool, bytes, complex})
#: Senders whose key is not their ``id``; every other sender's key is ``id(sender)``, which
#: the send path computes inline.
KEYED_SPECIALLY: Final = _BY_VALUE | {types.MethodType}


def sender_key(sender: object) -> Hashable:
    """The key under which receivers connected to ``sender`` are filed."""
    tp = type(sender)
    if tp in _BY_VALUE:
        return (tp, sender)
    if tp is types.MethodType:
        # A bound method is a new object on every attribute access; its function and
        # instance are stable.
        return (id(sender.__func__), id(sender.__self__))  # type: ignore[attr-defined]
    return id(sender)


def receiver_id(receiver: object) -> Hashable:
    """The identity of a receiver: as blinker's, a bound method is its function plus
    its instance, anything else its ``id``."""
    if type(receiver) is types.MethodType:
        return (id(receiver.__func__), id(receiver.__self__))
    return id(receiver)


#: ``inspect.CO_COROUTINE``, without importing inspect for it.
_CO_COROUTINE: Final = 0x80


def is_async_callable(obj: object) -> bool:
    """Whether calling ``obj`` returns a coroutine: ``async def`` functions and methods,
    ``functools.partial`` of them (nested too), and objects whose ``__call__`` is
    ``async def``."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    if type(obj) is types.FunctionType and not obj.__dict__:
        # A plain function with no attributes (so no coroutine marker, no __wrapped__):
        # its code flags are the whole answer, and reading them is 20x cheaper than
        # inspect's checks. This makes connecting many receivers fast.
        return bool(obj.__code__.co_flags & _CO_COROUTINE)
    # inspect costs milliseconds to import: only receivers that need it pay for it.
    import inspect

    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(type(obj), "__call__", None)  # noqa: B004 - we want the class attribute
    return call is not None and inspect.iscoroutinefunction(call)


def describe(obj: object) -> str:
    """A receiver's qualified name for messages and logs, e.g. ``app.hooks.on_request``."""
    target = obj
    prefix = ""
    while isinstance(target, functools.partial):
        target, prefix = target.func, "functools.partial of "
    qualname: str | None = getattr(target, "__qualname__", None)
    module: str | None
    if qualname is None:
        # A callable instance: name it by its class.
        qualname = type(target).__qualname__ + " instance"
        module = type(target).__module__
    else:
        module = getattr(target, "__module__", None)
    name = f"{module}.{qualname}" if module and module != "builtins" else qualname
    return prefix + name


def check_timeout(value: float | None, what: str) -> float | None:
    """Validate a timeout in seconds: ``None`` (no limit) or a number >= 0 (``inf`` is no
    limit). Raises ``TypeError`` for a non-number and ``ValueError`` for a negative or NaN
    value, naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds or None, got {value!r}")
    try:
        seconds = float(value)
    except OverflowError:
        # An int beyond any float: no clock could hold it, and its repr is unreadable.
        raise ValueError(
            f"{what} is too large to be a number of seconds ({len(str(value))} digits); "
            "pass None for no limit"
        ) from None
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"{what} must be >= 0 seconds (or None), got {value!r}")
    return None if math.isinf(seconds) else seconds


def _check_priority(priority: float) -> float:
    if isinstance(priority, bool) or not isinstance(priority, int | float):
        raise TypeError(f"priority must be a number, got {priority!r}")
    if math.isnan(priority):
        raise ValueError("priority must not be NaN")
    return priority


# Every record carries the same fields; ``senders`` is a tuple of sender keys, shared
# (``_ANY_ONLY``) by all receivers connected only to ANY so they cost no tuple each.
_FIELDS = (
    "rid",
    "is_async",
    "priority",
    "timeout",
    "background",
    "seq",
    "senders",
    "connected_at",
)
_ANY_ONLY: Final = (ANY_KEY,)


class _Fields:
    """The fields every record declares in its ``__slots__`` (``_FIELDS``)."""

    __slots__ = ()
    rid: Hashable
    is_async: bool
    priority: float
    timeout: float | None
    #: Scheduled on the current background runner, never awaited by the send.
    background: bool
    seq: int
    senders: tuple[Hashable, ...]
    #: Where a weak receiver that looks short-lived was connected, until a send reaches
    #: it (see :mod:`asignal._weak_warning`); ``None`` otherwise.
    connected_at: tuple[str, str, str, int] | None


class _Weak(_Fields):
    __slots__ = ()

    @property
    def get(self) -> Callable[[], Any]:
        """The record itself: calling a weak reference dereferences it."""
        return self  # type: ignore[return-value]


class WeakFunctionRecord(_Weak, weakref.ref):  # type: ignore[type-arg]
    """A weakly held receiver (a function or callable object); calling it returns the
    receiver, or ``None`` once collected."""

    __slots__ = _FIELDS


class WeakMethodRecord(_Weak, weakref.WeakMethod):  # type: ignore[type-arg]
    """A weakly held bound method; calling it returns a fresh bound method, or ``None``
    once its instance (or function) is collected."""

    __slots__ = _FIELDS


class StrongRecord(_Fields):
    """A strongly held receiver (``weak=False``)."""

    __slots__ = (*_FIELDS, "get")

    def __init__(self, receiver: Any) -> None:
        # A zero-argument C callable that returns the receiver (and holds it): the same
        # call shape and cost as dereferencing a weak record.
        self.get: Callable[[], Any] = itertools.repeat(receiver).__next__


Record: TypeAlias = WeakFunctionRecord | WeakMethodRecord | StrongRecord


def make_record(
    receiver: Any,
    *,
    weak: bool,
    priority: float,
    timeout: float | None,
    on_collected: Callable[[Any], None],
    background: bool = False,
) -> Record:
    """Classify and wrap ``receiver``. Raises ``TypeError`` naming it when it is not
    callable, or when it must be held weakly and cannot be."""
    if not callable(receiver):
        raise TypeError(f"receiver {receiver!r} is not callable")
    if priority != 0 or type(priority) is not int:
        priority = _check_priority(priority)
    if timeout is not None:
        timeout = check_timeout(timeout, f"timeout of receiver {describe(receiver)}")
    if background is not False and background is not True:
        raise TypeError(
            f"background of receiver {describe(receiver)} must be True or False, got {background!r}"
        )
    record: Record
    if not weak:
        record = StrongRecord(receiver)
    elif type(receiver) is types.MethodType:
        record = WeakMethodRecord(receiver, on_collected)
    else:
        try:
            record = WeakFunctionRecord(receiver, on_collected)
        except TypeError:
            raise TypeError(
                f"cannot hold receiver {describe(receiver)} weakly "
                f"({type(receiver).__name__} objects do not support weak references); "
                "connect it with weak=False"
            ) from None
    record.rid = receiver_id(receiver)
    record.is_async = is_async_callable(receiver)
    record.priority = priority
    record.timeout = timeout
    record.background = background
    record.senders = ()
    record.connected_at = None
    return record


def add_sender(record: Record, key: Hashable) -> None:
    if key in record.senders:
        return
    record.senders = _ANY_ONLY if not record.senders and key == ANY_KEY else (*record.senders, key)
