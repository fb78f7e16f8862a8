"""The pure ASGI middleware that turns a connection's ASGI messages into signals."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ... import signals
from ..._dispatch import ErrorPolicy
from ..._runner_current import _current as _current_runner
from .._common import Budget, Emitter
from ._connection import HTTPConnection, ResponseInfo, after_response
from ._listening import CONNECTION_KEY, EMITTER_KEY, Changes, Listening, watch_signals
from .lifespan import CallRunner, RunnerSlot, report_lifespan
from .placement import Placement

__all__ = ["ResponseInfo", "SignalMiddleware"]


#: SignalMiddleware._placement before the first call has looked.
_UNCHECKED: Any = object()


async def _no_receive() -> Message:
    raise RuntimeError("the WebSocket given to signal receivers cannot receive")


async def _no_send(message: Message) -> None:
    raise RuntimeError("the WebSocket given to signal receivers cannot send")


class SignalMiddleware:
    """Pure ASGI middleware that sends :mod:`asignal.signals` for one application.

    ``app`` is the ASGI application to wrap. ``sender`` is the sender of every signal
    (default: the application, see below). ``timeout`` (seconds or ``None``) is the
    per-request budget of awaited receivers, ``errors`` (``"collect"`` or ``"raise"``) the
    dispatch policy, and ``max_pending``, ``drain_timeout`` and ``background_timeout``
    bound the background runner, all as for :func:`install`; a bad value raises
    ``TypeError`` or ``ValueError`` naming the option.

    Placed the usual Starlette ways, ``Starlette(middleware=[Middleware(SignalMiddleware)])``
    or ``app.add_middleware(SignalMiddleware)``, it sits inside ``ServerErrorMiddleware``,
    where it cannot see a 500 response. So on the app's first call (its lifespan
    start-up, or its first request) it installs the app with its own options, exactly as
    :func:`install` does, and then only passes through: the signals, their order and the
    sender are :func:`install`'s. There ``sender`` must be the application (or left
    out); anything else raises ``ValueError`` at start-up.

    Wrapping any other ASGI application directly, it reports from where it is::

        app = SignalMiddleware(inner_app, sender=inner_app)

    An exception is then reported when it leaves ``app``, which may be after an inner
    error handler has sent its 500. Connections that an outer installed application
    already reports pass through untouched, so one request never emits twice.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        sender: Any = None,
        timeout: float | None = None,
        errors: ErrorPolicy = "collect",
        max_pending: int = 1000,
        drain_timeout: float = 10.0,
        background_timeout: float | None = None,
    ) -> None:
        #: The ASGI application this middleware wraps.
        self.app: ASGIApp = app
        #: The :class:`~asignal.adapters._common.Emitter` sending this app's signals,
        #: with its options (``timeout``, ``errors``, the background runner's).
        self.emitter: Emitter = Emitter(
            app if sender is None else sender,
            timeout=timeout,
            errors=errors,
            max_pending=max_pending,
            drain_timeout=drain_timeout,
            background_timeout=background_timeout,
        )
        #: Set to ``False`` by :meth:`StarletteIntegration.uninstall`: the middleware then
        #: only passes through, in case something still holds a reference to it.
        self.enabled: bool = True
        #: Holds the background runner of the app's lifespan while it runs; without one,
        #: each connection gets its own, which runs its work after the response, within
        #: the call. install() shares its slot with the middleware it builds.
        self.slot: RunnerSlot = RunnerSlot()
        # What to call while a request is reported: install() makes it the same stack
        # with a hook inside ServerErrorMiddleware; the unreported path never pays for it.
        self._reporting_app: ASGIApp = app
        # install() reports the lifespan from the router's lifespan context instead.
        self._reports_lifespan = True
        # Where this middleware was put, found on its first call (see Placement).
        self._placement: Placement | None = _UNCHECKED
        self._version = -1
        self._listening = Listening(self.emitter.app)
        watch_signals()

    def listening(self) -> Listening:
        """Which signals have receivers for the sender now (cached between changes)."""
        version = Changes.version
        if version != self._version:
            # Read the version first: a change while reading makes the next call re-read.
            self._listening = Listening(self.emitter.app)
            self._version = version
        return self._listening

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        placement = self._placement
        if placement is not None:
            if placement is _UNCHECKED:
                placement = self._placement = Placement.of(self, scope)
            if placement is not None:
                await placement.call(self, scope, receive, send)
                return
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            if EMITTER_KEY in scope:
                # An outer installed app reports this connection: stay out of the way, but
                # keep the hook that orders got_request_exception before the 500.
                if CONNECTION_KEY in scope:
                    await self._reporting_app(scope, receive, send)
                else:
                    await self.app(scope, receive, send)
                return
            call: Awaitable[None] | None = None
            listening = self._listening
            if self._version != Changes.version:
                listening = self.listening()
            if listening.any and self.enabled:
                # The mark makes this app the sender for the whole connection.
                scope[EMITTER_KEY] = self.emitter
                if kind == "http":
                    if listening.http:
                        call = self._http(scope, receive, send, listening)
                elif listening.websocket:
                    call = self._websocket(scope, receive, send, listening)
            runner = self.slot.runner
            if runner is not None:
                if call is None:
                    # Nobody listens: the app's own stack with the server's callables.
                    # Code in it finds the lifespan runner as the one open on this loop
                    # (see asignal._runner_current); activating it would cost every request.
                    await self.app(scope, receive, send)
                    return
                # runner.activate() is exactly this set and reset; spelled out, it costs a
                # reported request ~0.2 us less (no context manager object, no two calls).
                token = _current_runner.set(runner)
                try:
                    await call
                finally:
                    _current_runner.reset(token)
                return
            await self._without_lifespan(self.app(scope, receive, send) if call is None else call)
            return
        if kind == "lifespan" and self._reports_lifespan and self.enabled:
            await report_lifespan(self, scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _without_lifespan(self, call: Awaitable[None]) -> None:
        """Await ``call`` (the connection) with a runner of its own made current, and run
        what it scheduled once it is done: the app is served without a lifespan."""
        deferred = CallRunner(self.emitter.max_pending)
        with deferred.activate():
            try:
                await call
            except Exception:
                if deferred.work:
                    await deferred.run(self.emitter)
                raise
        if deferred.work:
            await deferred.run(self.emitter)

    async def _http(self, scope: Scope, receive: Receive, send: Send, listening: Listening) -> None:
        emitter = self.emitter
        connection = HTTPConnection(emitter, scope, send, listening)
        budget = connection.budget
        if listening.appcontext_pushed:
            await emitter.send(signals.appcontext_pushed, budget, request=connection.request)
        if listening.request_started:
            if emitter.timeout is None:
                # Emitter.send's untimed case, inlined: ~0.4 us less (see HTTPConnection.send).
                await signals.request_started.send_async(
                    emitter.app, _errors=emitter.errors, request=connection.request
                )
            else:
                await emitter.timed_send(
                    signals.request_started, budget, {"request": connection.request}
                )
        # For the hook inside ServerErrorMiddleware, templates, flash and mounted apps.
        scope[CONNECTION_KEY] = connection
        # The hook inside ServerErrorMiddleware is there to send got_request_exception
        # before the 500; without receivers for it, the app's own stack does (what
        # escapes is still reported below, as a background error if the body was out).
        app = self._reporting_app if listening.got_request_exception else self.app
        # However the call ends, the sends that follow it take one path (connection.end):
        # a job on the app's runner, so the call returns (or raises) at once. A cancelled
        # connection (server shutdown) emits nothing more: receivers cannot be awaited
        # in a cancelled scope, and shielding them could stall the shutdown.
        try:
            await app(scope, receive, connection.send if listening.http_messages else send)
        except Exception as error:
            # Reported here only if no hook inside ServerErrorMiddleware did it already
            # (an app that is not Starlette's, or a failure outside that middleware).
            await connection.report(error)
            ending = connection.end(self.slot.runner, error)
            if ending is not None:
                await ending
            raise
        finally:
            # The scope outlives the call (receivers may keep the Request); without the
            # connection in it, what a request leaves behind holds no reference cycle.
            del scope[CONNECTION_KEY]
        ending = connection.end(self.slot.runner, None)
        if ending is not None:
            await ending

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, listening: Listening
    ) -> None:
        emitter = self.emitter
        budget = emitter.budget()
        websocket = WebSocket(scope, _no_receive, _no_send)
        if listening.appcontext_pushed:
            await emitter.send(signals.appcontext_pushed, budget, request=websocket)
        if listening.websocket_started:
            await emitter.send(signals.websocket_started, budget, websocket=websocket)
        # As for HTTP: the sends that follow the call go as one job (see after_response).
        try:
            await self.app(scope, receive, send)
        except Exception as error:
            ending = self._websocket_end(websocket, error, listening, budget)
            if ending is not None:
                await ending
            raise
        ending = self._websocket_end(websocket, None, listening, budget)
        if ending is not None:
            await ending

    def _websocket_end(
        self, websocket: WebSocket, error: Exception | None, listening: Listening, budget: Budget
    ) -> Awaitable[Any] | None:
        """The websocket application call has ended, returning or raising ``error``: hand
        :meth:`_websocket_teardown` to :func:`after_response`."""
        if not listening.websocket_teardown:
            return None
        # A client that went away is the handler's normal end, not an error.
        exc = None if isinstance(error, WebSocketDisconnect) else error
        return after_response(
            self.slot.runner,
            self._websocket_teardown,
            websocket,
            exc,
            listening,
            budget,
            name="asignal websocket teardown",
        )

    async def _websocket_teardown(
        self, websocket: WebSocket, exc: Exception | None, listening: Listening, budget: Budget
    ) -> None:
        """What follows the application call, in order: ``got_websocket_exception`` (if it
        raised), ``websocket_finished`` (if not), ``websocket_tearing_down``,
        ``appcontext_tearing_down``, ``appcontext_popped``."""
        emitter = self.emitter
        if exc is not None and listening.got_websocket_exception:
            await emitter.send(
                signals.got_websocket_exception, budget, websocket=websocket, exception=exc
            )
        if exc is None and listening.websocket_finished:
            # Starlette handlers return nothing, unlike Quart's: ``response`` is None.
            await emitter.send(
                signals.websocket_finished, budget, websocket=websocket, response=None
            )
        if listening.websocket_tearing_down:
            await emitter.send(signals.websocket_tearing_down, budget, websocket=websocket, exc=exc)
        if listening.appcontext_tearing_down:
            await emitter.send(signals.appcontext_tearing_down, budget, exc=exc)
        if listening.appcontext_popped:
            await emitter.send(signals.appcontext_popped, budget)


class UnhandledExceptionHook:
    """Sits just inside ``ServerErrorMiddleware``: what escapes it is unhandled (handled
    ones, ``HTTPException`` included, became responses in ``ExceptionMiddleware``), and
    reporting it here puts ``got_request_exception`` before the 500 response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as error:
            connection: HTTPConnection | None = scope.get(CONNECTION_KEY)
            if connection is not None:
                await connection.report(error)
            raise


def with_hook(stack: ASGIApp, inner: ASGIApp | None = None) -> ASGIApp:
    """``stack`` again, with the hook just inside its ``ServerErrorMiddleware``.

    A second ``ServerErrorMiddleware`` built from the first one's public attributes
    shares everything inside it (or ``inner``, if given), so requests nobody listens to
    keep the untouched stack. Only Starlette's own class is rebuilt; other stacks get no
    hook.
    """
    if type(stack) is not ServerErrorMiddleware:
        return stack
    return ServerErrorMiddleware(
        UnhandledExceptionHook(stack.app if inner is None else inner),
        handler=stack.handler,
        debug=stack.debug,
    )
