"""What every adapter shares: the app as sender, the options fixed at install, and the
per-request time budget."""

from __future__ import annotations

import math
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final

from anyio import current_time

from .._dispatch import ErrorPolicy
from .._dispatch._common import get_logger, label, timeout_reporter
from .._receivers import describe
from .._signal import Signal

__all__ = ["Budget", "Emitter", "check_count", "check_seconds"]

_DEFAULT_MAX_PENDING: Final = 1000
_DEFAULT_DRAIN_TIMEOUT: Final = 10.0


def check_seconds(value: object, what: str, *, allow_none: bool = True) -> float | None:
    """Validate a duration in seconds for option ``what``.

    Returns ``None`` for no bound (``None`` itself when ``allow_none``, ``inf``, or an int
    too large for a float, such as ``10**400``: no clock reaches it either), else the
    value as a ``float``. Raises ``TypeError`` for anything but a number (``bool``
    included) and ``ValueError`` for a negative or NaN value, each naming ``what``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        accepted = "a number of seconds or None" if allow_none else "a number of seconds"
        raise TypeError(f"{what} must be {accepted}, got {value!r}")
    if value < 0 or value != value:  # NaN is the one value unequal to itself
        raise ValueError(f"{what} must be >= 0 seconds, got {value!r}")
    if isinstance(value, int):
        # float() of a huge int raises OverflowError; compare as ints instead.
        return None if value > _LARGEST_FLOAT else float(value)
    return None if math.isinf(value) else value


_LARGEST_FLOAT: Final = int(1.7976931348623157e308)


def check_count(value: object, what: str) -> int:
    """Validate a count for option ``what``: an ``int`` >= 1. Raises ``TypeError`` for a
    non-int (``bool`` included) and ``ValueError`` below 1, each naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be >= 1, got {value!r}")
    return value


def _check_errors(value: object) -> ErrorPolicy:
    if value == "collect":
        return "collect"
    if value == "raise":
        return "raise"
    raise ValueError(f'errors must be "collect" or "raise", got {value!r}')


class Budget:
    """The time awaited receivers may still hold up one response, in seconds.

    An adapter takes one from :meth:`Emitter.budget` when a request starts and passes it
    to every :meth:`Emitter.send` of that request, so the installed ``timeout`` bounds
    the request's sends *together*: each send gets what the earlier ones left. Only time
    spent inside those sends counts: the clock is paused between them, so a slow view
    never eats what the receivers that follow it were promised, and a send made from
    inside another (a template rendered by a receiver) is counted once. The clock is the
    event loop's, the one the sends' own timeouts run on.

    :param seconds: the whole budget, or ``None`` for no bound.
    """

    __slots__ = ("clock", "cut", "depth", "left", "since")

    def __init__(self, seconds: float | None) -> None:
        #: Seconds left when no send is running; ``None`` for no bound.
        self.left: float | None = seconds
        #: Sends of this budget running now (nested ones included).
        self.depth: int = 0
        #: When the outermost running send started, on :attr:`clock`.
        self.since: float = 0.0
        #: The event loop's clock, looked up once, when the first send starts: going
        #: through anyio's ``current_time`` costs about a microsecond a call.
        self.clock: Callable[[], float] | None = None
        #: What collects the timeouts of this request's sends (:class:`CutOff`), made by
        #: the first send and reused by the next ones: one object per request, not per send.
        self.cut: CutOff | None = None

    def remaining(self) -> float | None:
        """Seconds left (>= 0), or ``None`` for a budget without a bound. Call it inside
        the event loop."""
        left = self.left
        if left is None:
            return None
        if self.depth and self.clock is not None:
            left -= self.clock() - self.since
        return left if left > 0.0 else 0.0

    def start(self) -> float | None:
        """A send of this budget starts: the clock runs (unless a send already runs).
        Returns the seconds that send may take (:meth:`remaining`)."""
        left = self.left
        if left is None:
            return None
        if self.depth == 0:
            clock = self.clock
            if clock is None:
                clock = self.clock = _loop_clock()
            self.since = clock()
            self.depth = 1
            # The clock starts now: all that is left (never negative, see stop), without
            # remaining()'s call and second clock read, on every send of a request.
            return left
        self.depth += 1
        return self.remaining()

    def stop(self) -> None:
        """The send begun by the matching :meth:`start` has ended: once none runs, what it
        took is spent and the clock pauses."""
        self.depth -= 1
        if self.depth == 0 and self.left is not None and self.clock is not None:
            spent = self.clock() - self.since
            self.left = self.left - spent if spent < self.left else 0.0

    def __repr__(self) -> str:
        return f"<Budget left={self.remaining()!r}>"


def _loop_clock() -> Callable[[], float]:
    """What ``anyio.current_time`` reads, without anyio's per-call backend lookup."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            return asyncio.get_running_loop().time  # type: ignore[no-any-return]
        except RuntimeError:
            pass  # no asyncio loop in this thread: trio
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            # The run's clock, the one trio's deadlines use: trio.current_time() looks it
            # up on every call, and anyio's current_time adds a backend lookup (0.37 us a
            # read, against 0.11 us; a budgeted send reads it twice).
            return trio.lowlevel.current_clock().current_time  # type: ignore[no-any-return]
        except RuntimeError:
            pass  # not inside trio.run either
    return current_time


#: The budget of an emitter without a ``timeout``: shared, as it never changes.
UNBOUNDED: Final = Budget(None)


class Emitter:
    """Sends asignal's framework signals for one installed application.

    ``app`` is the sender of every signal. ``timeout`` (seconds, or ``None``) is the
    per-request budget: the total time awaited receivers may hold up one response, across
    all that request's sends (see :class:`Budget`); a send made without a budget gets the
    whole ``timeout``. ``errors`` is the ``_errors`` policy of every send; ``"collect"``
    (the default of the adapters) logs a receiver's exception on the ``asignal`` logger
    and never lets it reach the application.

    ``max_pending``, ``drain_timeout`` (seconds) and ``background_timeout`` (seconds or
    ``None``) configure the background runner the adapter runs for the app's lifespan
    (:attr:`runner_options`): at most ``max_pending`` background calls pending, the drain
    at shutdown waits ``drain_timeout`` at most, and each background call is bounded by
    ``background_timeout`` unless its receiver has its own ``timeout``.

    Raises ``TypeError`` or ``ValueError`` at construction, naming the option, for a bad
    value, so a misconfigured install fails at start-up, not on a request.
    """

    __slots__ = ("app", "background_timeout", "drain_timeout", "errors", "max_pending", "timeout")

    def __init__(
        self,
        app: Any,
        *,
        timeout: float | None,
        errors: ErrorPolicy,
        max_pending: int = _DEFAULT_MAX_PENDING,
        drain_timeout: float = _DEFAULT_DRAIN_TIMEOUT,
        background_timeout: float | None = None,
    ) -> None:
        self.app: Any = app
        self.timeout: float | None = check_seconds(timeout, "timeout")
        self.errors: ErrorPolicy = _check_errors(errors)
        self.max_pending: int = check_count(max_pending, "max_pending")
        drain = check_seconds(drain_timeout, "drain_timeout", allow_none=False)
        self.drain_timeout: float = math.inf if drain is None else drain
        self.background_timeout: float | None = check_seconds(
            background_timeout, "background_timeout"
        )

    @property
    def options(self) -> dict[str, Any]:
        """The install options, validated, by name: adapters compare them to tell a
        repeated ``install`` with different options."""
        return {
            "timeout": self.timeout,
            "errors": self.errors,
            "max_pending": self.max_pending,
            "drain_timeout": self.drain_timeout,
            "background_timeout": self.background_timeout,
        }

    @property
    def runner_options(self) -> dict[str, Any]:
        """Keyword arguments for ``asignal.BackgroundRunner`` built from the options."""
        return {
            "max_pending": self.max_pending,
            "drain_timeout": self.drain_timeout,
            "default_timeout": self.background_timeout,
        }

    def wants(self, signal: Signal) -> bool:
        """Whether anything listens to ``signal`` for this app: about a dict lookup, so an
        adapter can skip building kwargs (or awaiting at all) on the hot path."""
        return signal.has_receivers_for(self.app)

    def budget(self) -> Budget:
        """A fresh per-request :class:`Budget` of ``timeout`` seconds; the shared
        unbounded one when ``timeout`` is ``None``."""
        timeout = self.timeout
        if timeout is None:
            return UNBOUNDED
        return Budget(timeout)

    def send(
        self, signal: Signal, /, budget: Budget | None = None, **kwargs: Any
    ) -> Awaitable[list[tuple[Any, Any]]]:
        """``signal.send_async`` with ``sender=app`` and the installed options: await it.

        With a ``budget`` the send gets ``_timeout=`` what the budget has left, and what
        it takes is spent from it; without one, the whole ``timeout``. The receivers that
        the deadline cuts off are logged as one record for the send (:class:`CutOff`).
        Without a ``timeout`` this hands back ``send_async``'s own coroutine, not a
        coroutine wrapping it: one frame less on every send of every request. A send that
        nobody listens to returns at once (``send_async`` checks that itself, as cheaply
        as :meth:`wants`)."""
        if self.timeout is None:
            return signal.send_async(self.app, _timeout=None, _errors=self.errors, **kwargs)
        return self.timed_send(signal, budget, kwargs)

    async def timed_send(
        self, signal: Signal, budget: Budget | None, kwargs: dict[str, Any]
    ) -> list[tuple[Any, Any]]:
        """:meth:`send` for an emitter with a ``timeout``, the keyword arguments given as
        one dict: a request's hot path calls it directly, which spares the repacking of
        ``**kwargs`` through :meth:`send` (~0.3 us a send)."""
        if budget is None:
            timeout = self.timeout
            cut = CutOff(signal, timeout)
        else:
            timeout = budget.start()
            reused = budget.cut
            if reused is None:
                cut = budget.cut = CutOff(signal, timeout)
            elif reused.open:
                cut = CutOff(signal, timeout)  # a send made from inside another one
            else:
                cut = reused
                cut.signal, cut.seconds, cut.open = signal, timeout, True
        token = timeout_reporter.set(cut)
        try:
            return await signal.send_async(
                self.app, _timeout=timeout, _errors=self.errors, **kwargs
            )
        finally:
            timeout_reporter.reset(token)
            if budget is not None:
                budget.stop()
            if cut.receivers:
                cut.close(None if budget is None else self.timeout)
            else:
                cut.open = False  # close() with nothing to log: the usual send, no call


class CutOff:
    """The receivers that one budgeted send's deadline cut off, logged as one record once
    the send is over (:meth:`close`): when a request's budget is spent, every later send
    of it cuts its suspending receivers at once, and a record per receiver (the engine's
    way) made dozens of records per request, all saying the same thing.

    The engine offers each timeout to the instance set as its ``timeout_reporter`` for
    the send; it takes only the ones of its own send's deadline. A receiver's own
    ``timeout``, a send made from a receiver (another signal), and anything after
    :meth:`close` (a task a receiver left behind shares the context) are declined, and
    the engine logs them itself, one record each, as before.

    :param signal: the signal sent.
    :param seconds: the send's ``_timeout``: what the request's budget had left.
    """

    __slots__ = ("open", "receivers", "seconds", "signal")

    def __init__(self, signal: Signal, seconds: float | None) -> None:
        self.signal: Signal = signal
        self.seconds: float | None = seconds
        #: The receivers cut off, in the order the engine reported them.
        self.receivers: list[Any] = []
        #: Whether the send is still under way: a closed one declines every timeout.
        self.open: bool = True

    def __call__(self, signal: Any, receiver: Any, seconds: float) -> bool:
        if not self.open or signal is not self.signal or seconds != self.seconds:
            return False
        self.receivers.append(receiver)
        return True

    def close(self, budget: float | None) -> None:
        """The send is over: log the receivers it cut off, if any, as one error record
        on the ``asignal`` logger naming each by qualified name, and the signal.
        ``budget``: the request's whole budget (the installed ``timeout``, seconds), or
        ``None`` for a send outside any request, which had the whole ``timeout``."""
        self.open = False
        receivers = self.receivers
        if not receivers:
            return
        self.receivers = []
        names = ", ".join(describe(receiver) for receiver in receivers)
        noun = "receiver" if len(receivers) == 1 else "receivers"
        seconds = self.seconds or 0.0
        if budget is None:
            get_logger().error(
                "%s %s of signal %s cut off: did not finish within %.3g s",
                noun,
                names,
                label(self.signal),
                seconds,
            )
        elif seconds > 0.0:
            get_logger().error(
                "%s %s of signal %s cut off: did not finish within the %.3g s left of the "
                "request's time budget (timeout=%.3g s)",
                noun,
                names,
                label(self.signal),
                seconds,
                budget,
            )
        else:
            get_logger().error(
                "%s %s of signal %s cut off: did not finish at once, the request's time "
                "budget (timeout=%.3g s) being spent before this send",
                noun,
                names,
                label(self.signal),
                budget,
            )
