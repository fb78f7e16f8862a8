"""One reported HTTP request: the ``send`` the application is given, the exception
reports, and the sends that follow the response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Send

from ... import signals
from ..._background import BackgroundRunner
from .._common import Budget, Emitter
from ._listening import Listening

# Messages that carry the response body (the last one has no ``more_body``); anything
# raised after the last one is background work.
_BODY_MESSAGES: Final = frozenset({"http.response.body", "http.response.zerocopysend"})


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """The response as ``request_finished`` sees it: the ``http.response.start`` message.

    ``status_code`` is the HTTP status (``int``); ``headers`` are the response headers as
    read-only :class:`starlette.datastructures.Headers`. The body is not available: it
    may still be streaming when the signal is sent.
    """

    #: The HTTP status.
    status_code: int
    #: The response headers, read-only.
    headers: Headers


class HTTPConnection:
    """One reported request: what the outer middleware and the inner exception hook
    share, and the ``send`` the application is given while ``http_messages`` is wanted.

    ``budget`` is the request's :class:`~asignal.adapters._common.Budget`: every send of
    the request, templates and flash included, takes its timeout from it."""

    __slots__ = (
        "_request",
        "background_error",
        "body_complete",
        "budget",
        "downstream",
        "emitter",
        "listening",
        "reported",
        "scope",
    )

    def __init__(
        self, emitter: Emitter, scope: Any, downstream: Send, listening: Listening
    ) -> None:
        self.emitter = emitter
        self.scope = scope
        self.downstream = downstream
        self.listening = listening
        self.budget: Budget = emitter.budget()
        self._request: Request | None = None
        self.body_complete = False
        # The exception already reported, so the hook inside ServerErrorMiddleware and
        # the outer middleware (or the hooks of nested, installed apps) report it once.
        self.reported: BaseException | None = None
        # An exception raised after the response: reported after the call, with the
        # teardown (see end()), never while the exception is on its way to the server.
        self.background_error: Exception | None = None

    async def send(self, message: Message) -> None:
        """Forward ``message``; ``request_finished`` first if it starts the response."""
        kind = message["type"]
        if kind == "http.response.start":
            if self.listening.request_finished:
                response = ResponseInfo(message["status"], Headers(raw=message.get("headers", [])))
                emitter = self.emitter
                if emitter.timeout is None:
                    # What Emitter.send would hand back, called here: its call and the
                    # two kwargs dicts it builds cost ~0.4 us, a fifth of a whole send.
                    await signals.request_finished.send_async(
                        emitter.app, _errors=emitter.errors, request=self.request, response=response
                    )
                else:
                    await emitter.timed_send(
                        signals.request_finished,
                        self.budget,
                        {"request": self.request, "response": response},
                    )
        elif (
            kind in _BODY_MESSAGES and not message.get("more_body", False)
        ) or kind == "http.response.pathsend":
            await self.downstream(message)
            self.body_complete = True
            return
        await self.downstream(message)

    @property
    def request(self) -> Request:
        """The one ``Request`` every signal of this connection carries, built on first use.

        Receivers get the request's metadata (the scope is shared, so routing and session
        data appear as the app fills them in) but not its body: reading it would take it
        from the application."""
        if self._request is None:
            self._request = Request(self.scope)
        return self._request

    async def report(self, error: Exception) -> None:
        """Report ``error`` once: ``got_request_exception`` (awaited: it comes before the
        500) while the response is not complete, else keep it for
        ``got_background_exception``, sent with the teardown."""
        if error is self.reported or isinstance(error, ClientDisconnect):
            return
        self.reported = error
        if self.body_complete:
            # The response is out; in Starlette only the response's background task runs
            # after the final body message, inside the same ASGI call.
            self.background_error = error
        elif self.emitter.wants(signals.got_request_exception):
            await self.emitter.send(
                signals.got_request_exception, self.budget, request=self.request, exception=error
            )

    async def teardown(self, exc: Exception | None) -> None:
        """What follows the application call, in order: ``got_background_exception`` (if
        the app raised after its response), ``request_tearing_down``,
        ``appcontext_tearing_down``, ``appcontext_popped``."""
        emitter, budget, listening = self.emitter, self.budget, self.listening
        background_error = self.background_error
        if background_error is not None and emitter.wants(signals.got_background_exception):
            await emitter.send(signals.got_background_exception, budget, exception=background_error)
        if listening.request_tearing_down:
            await emitter.send(signals.request_tearing_down, budget, request=self.request, exc=exc)
        if listening.appcontext_tearing_down:
            await emitter.send(signals.appcontext_tearing_down, budget, exc=exc)
        if listening.appcontext_popped:
            await emitter.send(signals.appcontext_popped, budget)

    def end(
        self, runner: BackgroundRunner | None, error: Exception | None
    ) -> Awaitable[Any] | None:
        """The application call has ended, returning (``error`` is ``None``) or raising
        ``error``: hand :meth:`teardown` to :func:`after_response`. Returns what the caller
        must await (no ``runner``), else ``None``, also when nothing is to be sent."""
        if not self.listening.http_teardown and self.background_error is None:
            return None
        # A client that went away is not the application's failure.
        exc = None if isinstance(error, ClientDisconnect) else error
        return after_response(runner, self.teardown, exc, name="asignal request teardown")


def after_response(
    runner: BackgroundRunner | None, fn: Callable[..., Awaitable[Any]], /, *args: Any, name: str
) -> Awaitable[Any] | None:
    """Hand ``fn(*args)``, the sends that follow a connection's application call, to
    ``runner`` (the app's lifespan runner) as one job, so that the ASGI call returns, or
    its exception leaves it, at once: what the server does next with the connection
    (reuse it, or close it after an exception) never waits for receivers. The job runs
    the sends in order, each bounded by what the request's budget has left.

    Returns ``fn(*args)`` for the caller to await within the call, after the response,
    when there is no such runner (an app served without a lifespan) or it cannot take
    the job now (``max_pending`` jobs pending, or shutting down); else ``None``. So the
    sends are never dropped: an overloaded app is held back by them again, within the
    request's budget, instead of losing its teardown."""
    if runner is None or runner.pending >= runner.max_pending or not runner.accepting:
        return fn(*args)
    runner.schedule_nowait(fn, *args, name=name)
    return None
