"""What every adapter shares: the app as sender and the dispatch options fixed at install."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from .._dispatch import ErrorPolicy, check_errors, check_timeout
from .._signal import Signal

__all__ = ["Emitter"]


class Emitter:
    """Sends asignal's framework signals for one installed application.

    ``app`` is the sender of every signal. ``timeout`` (seconds, or ``None``) bounds each
    send as a whole; receivers run concurrently, so it is also the longest any receiver
    can delay the application. ``errors`` is the ``_errors`` policy of every send;
    ``"collect"`` (the default of the adapters) logs a receiver's exception on the
    ``asignal`` logger and never lets it reach the application.

    Raises ``ValueError`` at construction for a negative or NaN ``timeout`` or an unknown
    ``errors`` policy, so a misconfigured install fails at start-up, not on a request.
    """

    __slots__ = ("app", "errors", "timeout")

    def __init__(self, app: Any, *, timeout: float | None, errors: ErrorPolicy) -> None:
        self.app = app
        self.timeout = check_timeout(timeout, "timeout")
        self.errors: ErrorPolicy = check_errors(errors)

    def wants(self, signal: Signal) -> bool:
        """Whether anything listens to ``signal`` for this app: about a dict lookup, so an
        adapter can skip building kwargs (or awaiting at all) on the hot path."""
        return signal.has_receivers_for(self.app)

    def send(self, signal: Signal, /, **kwargs: Any) -> Awaitable[list[tuple[Any, Any]]]:
        """``signal.send_async`` with ``sender=app`` and the installed options: await it.

        A plain function handing back ``send_async``'s coroutine, not a coroutine
        wrapping it: one frame less on every send of every request. A send that nobody
        listens to returns at once (``send_async`` checks that itself, as cheaply as
        :meth:`wants` would)."""
        return signal.send_async(self.app, _timeout=self.timeout, _errors=self.errors, **kwargs)
