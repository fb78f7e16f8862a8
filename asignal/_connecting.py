"""The receivers' side of :class:`~asignal.Signal`: connecting, disconnecting, muting,
looking up who a send would call, and the ``receiver_connected`` /
``receiver_disconnected`` meta-signals, each as blinker's.

``Signal`` inherits these from :class:`Connecting` and adds the senders' side (``send``,
``send_async`` and their fast paths) in ``_signal.py``; the bookkeeping under both is
``_registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from ._receivers import ANY, ANY_KEY, make_record, receiver_id, sender_key
from ._registry import Registry
from ._weak_warning import connect_site

if TYPE_CHECKING:
    from ._signal import Signal

__all__ = ["Connecting"]

F = TypeVar("F", bound=Callable[..., Any])


class Connecting(Registry):
    """The connecting half of a signal; :class:`~asignal.Signal` is the class to use
    (its ``__init__`` sets :attr:`is_muted` and ``receivers``)."""

    is_muted: bool

    @cached_property
    def receiver_connected(self) -> Signal:
        """Sent at the end of each :meth:`connect`, with ``sender`` = this signal and
        kwargs ``receiver``, ``sender`` and ``weak``: the arguments of the call (as
        blinker's)."""
        from ._signal import Signal  # defined on top of this class

        return Signal(doc="Emitted after a receiver connects.")

    @cached_property
    def receiver_disconnected(self) -> Signal:
        """Sent at the end of each explicit :meth:`disconnect`, with ``sender`` = this
        signal and kwargs ``receiver`` and ``sender`` (as blinker's). Not sent when a
        weakly held receiver is collected: it no longer exists to be passed."""
        from ._signal import Signal

        return Signal(doc="Emitted after a receiver disconnects.")

    # --- connecting ---------------------------------------------------------------------

    def connect(
        self,
        receiver: F,
        sender: Any = ANY,
        weak: bool = True,
        *,
        priority: float = 0,
        timeout: float | None = None,
        background: bool = False,
    ) -> F:
        """Connect ``receiver`` to be called when this signal is sent by ``sender``.

        As blinker's ``connect``: ``receiver`` is called as ``receiver(sender,
        **kwargs)``; ``sender`` is an object or :data:`ANY` (every sender), and a receiver
        connected to ``ANY`` and to a sender is called once per send; with ``weak=True``
        the receiver is held by a weak reference and disconnected when it is collected
        (set ``weak=False`` for lambdas and functions defined inside functions).
        Connecting a connected receiver again adds ``sender``, and ``weak``, ``priority``,
        ``timeout`` and ``background`` take the new values.

        :param priority: receivers with a higher priority are called first; in
            :meth:`send_async`, each priority tier finishes before the next starts.
            Equal priorities keep connection order.
        :param timeout: seconds :meth:`send_async` lets this receiver run before it is
            cancelled (``None``: no limit; a background receiver: the runner's
            ``default_timeout``).
        :param background: never awaited by a send: every send (``send``,
            ``send_async``, adapters) schedules it on the current
            :class:`~asignal.BackgroundRunner`, in a copy of the sender's context, and
            its value in the result list is that :class:`~asignal.Scheduled` (``None``
            when a full runner dropped a ``send``'s call; ``send_async`` waits for room).
            Its exception is logged with its and the signal's name, never raised. A send
            without a runner raises ``RuntimeError`` before any receiver runs.
        :returns: ``receiver``, so ``connect`` works as a decorator.
        :raises TypeError: ``receiver`` is not callable, or cannot be held weakly;
            ``background`` is not a bool.
        :raises ValueError: ``timeout`` is negative or NaN, or ``priority`` is NaN.
        """
        key = ANY_KEY if sender is ANY else sender_key(sender)
        record = make_record(
            receiver,
            weak=weak,
            priority=priority,
            timeout=timeout,
            on_collected=self._receiver_collected,
            background=background,
        )
        if weak:
            record.connected_at = connect_site(receiver)
        self._add(record, key, sender)
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
        background: bool = False,
    ) -> Callable[[F], F]:
        """Decorator form of :meth:`connect` for a given ``sender``. Holds the receiver
        strongly by default, as blinker's ``connect_via``. For example:

        ```python
        @sig.connect_via(app)
        async def on_app_event(sender, **kwargs): ...
        ```
        """

        def decorator(fn: F) -> F:
            self.connect(
                fn, sender, weak, priority=priority, timeout=timeout, background=background
            )
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
        background: bool = False,
    ) -> Generator[None, None, None]:
        """Context manager that connects ``receiver`` (strongly) for the block and
        disconnects it on exit, even when the block raises (as blinker's). Options as
        :meth:`connect`'s."""
        self.connect(
            receiver, sender, False, priority=priority, timeout=timeout, background=background
        )
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
        self._discard(receiver_id(receiver), ANY_KEY if sender is ANY else sender_key(sender))
        if "receiver_disconnected" in self.__dict__ and self.receiver_disconnected.receivers:
            self.receiver_disconnected.send(self, receiver=receiver, sender=sender)

    # --- looking up -----------------------------------------------------------------------

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
