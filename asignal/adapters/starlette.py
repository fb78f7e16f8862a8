"""Starlette and FastAPI integration: Flask's signal set from a pure ASGI middleware.

One line per application::

    from asignal.adapters.starlette import install

    app = Starlette(routes=...)        # or FastAPI()
    install(app, timeout=2.0)

:func:`install` puts :class:`SignalMiddleware` *outside* Starlette's
``ServerErrorMiddleware``, so it sees every unhandled exception and the 500 response
that follows, and a hook just *inside* it, so that ``got_request_exception`` is sent
before the 500 goes out (Flask's order). The middleware is in the app's path only while
a receiver listens to the app (directly or through ``ANY``); otherwise the app runs its
own stack, untouched. The lifespan is reported from the router's ``lifespan_context``.
Everything else comes from the ASGI messages; no Starlette class is patched.

Where each signal comes from (``sender`` is the application given to :func:`install`;
a request that reaches a mounted sub-application is reported once, by the outermost
installed application that anyone listens to):

============================  =========================================================
``appcontext_pushed``         an ``http``/``websocket`` connection starts (``request=``)
``request_started``           before the application is called (``request=``)
``got_request_exception``     an exception escapes the application before the response
                              body is complete: sent before the 500 (``exception=``)
``request_finished``          ``http.response.start``, before it is forwarded
                              (``response=``: a :class:`ResponseInfo`)
``request_tearing_down``      the application call has returned: body and background
                              tasks are done (``exc=``)
``appcontext_tearing_down``   then (``exc=``); ``appcontext_popped`` last
``websocket_*``               a ``websocket`` connection: started, finished (the app
                              returned, or the client disconnected), tearing down;
                              ``got_websocket_exception`` for an exception that escapes
                              (``WebSocketDisconnect`` is not one)
``got_background_exception``  an exception escapes *after* the response body was sent
                              completely: in Starlette only a ``BackgroundTask`` runs then
``serving_started``           the lifespan's startup has run, before Starlette tells the
                              server (``lifespan.startup.complete``)
``serving_stopped``           the lifespan's shutdown has run, before Starlette tells the
                              server (``lifespan.shutdown.complete``)
``got_serving_exception``     the startup or shutdown raised; the lifespan still fails
``before_render_template``    :class:`Jinja2Templates` responses, before rendering
``template_rendered``         and after rendering, both before the response is sent
``message_flashed``           :func:`flash`
============================  =========================================================

While nobody listens, a request costs nothing: no :class:`~starlette.requests.Request`
is built, nothing is awaited, ``send`` is not wrapped. Responses always pass through
unchanged and unbuffered.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import jinja2
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates as _StarletteJinja2Templates
from starlette.templating import _TemplateResponse as _StarletteTemplateResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from .. import signals
from .._dispatch import ErrorPolicy
from ._common import Emitter

__all__ = [
    "StarletteIntegration",
    "Jinja2Templates",
    "ResponseInfo",
    "SignalMiddleware",
    "TemplateResponse",
    "flash",
    "get_flashed_messages",
    "install",
]

#: Scope key holding the :class:`Emitter` of the outermost installed application. Its
#: presence tells a mounted, also-installed sub-application that the connection is
#: already being reported; templates and flash find their sender through it.
EMITTER_KEY: Final = "asignal.emitter"
#: Scope key holding the per-connection :class:`_HTTPConnection` while it is reported.
_CONNECTION_KEY: Final = "asignal.connection"
#: Scope key caching the flashed messages popped from the session for this request.
_FLASHES_KEY: Final = "asignal.flashes"

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

    status_code: int
    headers: Headers


# --- who listens, cheaply -------------------------------------------------------------------

_HTTP_SIGNALS: Final = (
    signals.appcontext_pushed,
    signals.request_started,
    signals.got_request_exception,
    signals.request_finished,
    signals.request_tearing_down,
    signals.appcontext_tearing_down,
    signals.appcontext_popped,
    signals.got_background_exception,
)
_WEBSOCKET_SIGNALS: Final = (
    signals.appcontext_pushed,
    signals.websocket_started,
    signals.websocket_finished,
    signals.got_websocket_exception,
    signals.websocket_tearing_down,
    signals.appcontext_tearing_down,
    signals.appcontext_popped,
)
# Sent from inside a request (templates, flash): their sender is the app that marked the
# scope, so an installed app must be in the request's path when they have receivers.
_REQUEST_SCOPED_SIGNALS: Final = (
    signals.before_render_template,
    signals.template_rendered,
    signals.message_flashed,
)


class _Changes:
    """Counts connects and disconnects on the signals the middleware sends.

    A middleware re-reads who listens only when the count moved, so a request costs one
    comparison instead of a lookup per signal. Receivers are told through the signals'
    ``receiver_connected``/``receiver_disconnected`` meta-signals, which fire after the
    change is in place. A weakly held receiver that dies fires neither: the middleware
    then believes someone still listens, which is harmless, as every send checks again.
    """

    version = 0
    watching = False
    lock = threading.Lock()


def _signals_changed(signal: Any, **kwargs: Any) -> None:
    with _Changes.lock:
        _Changes.version += 1
    for installation in list(_live_installations):
        installation._refresh()


def _watch_signals() -> None:
    with _Changes.lock:
        if _Changes.watching:
            return
        _Changes.watching = True
    for sig in {*_HTTP_SIGNALS, *_WEBSOCKET_SIGNALS, *_REQUEST_SCOPED_SIGNALS}:
        sig.receiver_connected.connect(_signals_changed, weak=False)
        sig.receiver_disconnected.connect(_signals_changed, weak=False)


class _Listening:
    """Which of the middleware's signals have receivers for one sender, at one moment."""

    __slots__ = (
        "any",
        "appcontext_popped",
        "appcontext_pushed",
        "appcontext_tearing_down",
        "got_websocket_exception",
        "http",
        "http_messages",
        "http_teardown",
        "request_finished",
        "request_started",
        "request_tearing_down",
        "websocket",
        "websocket_finished",
        "websocket_started",
        "websocket_tearing_down",
    )

    def __init__(self, emitter: Emitter) -> None:
        wants = emitter.wants
        self.appcontext_pushed = wants(signals.appcontext_pushed)
        self.appcontext_tearing_down = wants(signals.appcontext_tearing_down)
        self.appcontext_popped = wants(signals.appcontext_popped)
        self.request_started = wants(signals.request_started)
        self.request_finished = wants(signals.request_finished)
        self.request_tearing_down = wants(signals.request_tearing_down)
        self.websocket_started = wants(signals.websocket_started)
        self.websocket_finished = wants(signals.websocket_finished)
        self.got_websocket_exception = wants(signals.got_websocket_exception)
        self.websocket_tearing_down = wants(signals.websocket_tearing_down)
        # What an HTTP request needs: its outgoing messages watched (for the response
        # and to tell request errors from background ones), and teardown signals.
        self.http_messages = (
            self.request_finished
            or wants(signals.got_request_exception)
            or wants(signals.got_background_exception)
        )
        self.http_teardown = (
            self.request_tearing_down or self.appcontext_tearing_down or self.appcontext_popped
        )
        self.http = any(wants(sig) for sig in _HTTP_SIGNALS)
        self.websocket = any(wants(sig) for sig in _WEBSOCKET_SIGNALS)
        self.any = self.http or self.websocket or any(wants(sig) for sig in _REQUEST_SCOPED_SIGNALS)


# --- HTTP connections -----------------------------------------------------------------------


class _HTTPConnection:
    """One reported request: what the outer middleware and the inner exception hook
    share, and the ``send`` the application is given while ``http_messages`` is wanted."""

    __slots__ = (
        "_request",
        "body_complete",
        "downstream",
        "emitter",
        "listening",
        "reported",
        "scope",
    )

    def __init__(
        self, emitter: Emitter, scope: Scope, downstream: Send, listening: _Listening
    ) -> None:
        self.emitter = emitter
        self.scope = scope
        self.downstream = downstream
        self.listening = listening
        self._request: Request | None = None
        self.body_complete = False
        # The exception already reported, so the hook inside ServerErrorMiddleware and
        # the outer middleware (or the hooks of nested, installed apps) report it once.
        self.reported: BaseException | None = None

    async def send(self, message: Message) -> None:
        """Forward ``message``; ``request_finished`` first if it starts the response."""
        kind = message["type"]
        if kind == "http.response.start":
            if self.listening.request_finished:
                response = ResponseInfo(message["status"], Headers(raw=message.get("headers", [])))
                await self.emitter.send(
                    signals.request_finished, request=self.request, response=response
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
        if error is self.reported or isinstance(error, ClientDisconnect):
            return
        self.reported = error
        emitter = self.emitter
        if self.body_complete:
            # The response is out; in Starlette only the response's background task runs
            # after the final body message, inside the same ASGI call.
            if emitter.wants(signals.got_background_exception):
                await emitter.send(signals.got_background_exception, exception=error)
        elif emitter.wants(signals.got_request_exception):
            await emitter.send(signals.got_request_exception, request=self.request, exception=error)


async def _no_receive() -> Message:
    raise RuntimeError("the WebSocket given to signal receivers cannot receive")


async def _no_send(message: Message) -> None:
    raise RuntimeError("the WebSocket given to signal receivers cannot send")


class SignalMiddleware:
    """Pure ASGI middleware that sends :mod:`asignal.signals` for one application.

    ``app`` is the ASGI application to wrap. ``sender`` is the sender of every signal
    (default: ``app``); ``timeout`` (seconds or ``None``) and ``errors`` (``"collect"`` or
    ``"raise"``) are the dispatch options of every send, as for
    :class:`asignal.adapters._common.Emitter`, which raises ``ValueError`` for bad ones.

    For Starlette and FastAPI use :func:`install`, which places this middleware outside
    ``ServerErrorMiddleware``; wrap other ASGI applications directly::

        app = SignalMiddleware(inner_app, sender=inner_app)

    Wrapped directly, an exception is reported when it leaves ``app``, which may be
    after an inner error handler has sent its 500. Connections that an outer installed
    application already reports pass through untouched, so one request never emits
    twice.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        sender: Any = None,
        timeout: float | None = None,
        errors: ErrorPolicy = "collect",
    ) -> None:
        self.app = app
        self.emitter = Emitter(app if sender is None else sender, timeout=timeout, errors=errors)
        #: Set to ``False`` by :meth:`StarletteIntegration.uninstall`: the middleware then only
        #: passes through, in case something still holds a reference to it.
        self.enabled = True
        # What to call while a request is reported: install() makes it the same stack
        # with a hook inside ServerErrorMiddleware; the unreported path never pays for it.
        self._reporting_app: ASGIApp = app
        # install() reports the lifespan from the router's lifespan context instead, as
        # this middleware is in the app's path only while someone listens.
        self._reports_lifespan = True
        # install() hears here of a request that nobody listens to, to take the
        # middleware out of the app's path.
        self._on_idle: Callable[[], None] | None = None
        self._version = -1
        self._listening = _Listening(self.emitter)
        _watch_signals()

    def listening(self) -> _Listening:
        """Which signals have receivers for the sender now (cached between changes)."""
        version = _Changes.version
        if version != self._version:
            # Read the version first: a change while reading makes the next call re-read.
            self._listening = _Listening(self.emitter)
            self._version = version
        return self._listening

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            if EMITTER_KEY in scope:
                # An outer installed app reports this connection: stay out of the way, but
                # keep the hook that orders got_request_exception before the 500.
                if _CONNECTION_KEY in scope:
                    await self._reporting_app(scope, receive, send)
                else:
                    await self.app(scope, receive, send)
                return
            if self.enabled:
                listening = self._listening
                if self._version != _Changes.version:
                    listening = self.listening()
                if listening.any:
                    # The mark makes this app the sender for the whole connection.
                    scope[EMITTER_KEY] = self.emitter
                    if kind == "http":
                        if listening.http:
                            await self._http(scope, receive, send, listening)
                            return
                    elif listening.websocket:
                        await self._websocket(scope, receive, send, listening)
                        return
                elif self._on_idle is not None:
                    self._on_idle()
        elif kind == "lifespan" and self._reports_lifespan and self.enabled:
            await self._lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, listening: _Listening
    ) -> None:
        emitter = self.emitter
        connection = _HTTPConnection(emitter, scope, send, listening)
        if listening.appcontext_pushed:
            await emitter.send(signals.appcontext_pushed, request=connection.request)
        if listening.request_started:
            await emitter.send(signals.request_started, request=connection.request)
        # For the hook inside ServerErrorMiddleware (and installed apps mounted inside).
        scope[_CONNECTION_KEY] = connection
        try:
            await self._reporting_app(
                scope, receive, connection.send if listening.http_messages else send
            )
        except Exception as error:
            # Reported here only if no hook inside ServerErrorMiddleware did it already
            # (an app that is not Starlette's, or a failure outside that middleware).
            await connection.report(error)
            exc = None if isinstance(error, ClientDisconnect) else error
            if listening.http_teardown:
                await self._http_teardown(connection, exc, listening)
            raise
        finally:
            # The scope outlives the call (receivers may keep the Request); without the
            # connection in it, what a request leaves behind holds no reference cycle.
            del scope[_CONNECTION_KEY]
        # A cancelled connection (server shutdown) emits nothing more: receivers cannot
        # be awaited in a cancelled scope, and shielding them could stall the shutdown.
        if listening.http_teardown:
            await self._http_teardown(connection, None, listening)

    async def _http_teardown(
        self, connection: _HTTPConnection, exc: Exception | None, listening: _Listening
    ) -> None:
        emitter = self.emitter
        if listening.request_tearing_down:
            await emitter.send(signals.request_tearing_down, request=connection.request, exc=exc)
        if listening.appcontext_tearing_down:
            await emitter.send(signals.appcontext_tearing_down, exc=exc)
        if listening.appcontext_popped:
            await emitter.send(signals.appcontext_popped)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, listening: _Listening
    ) -> None:
        emitter = self.emitter
        websocket = WebSocket(scope, _no_receive, _no_send)
        if listening.appcontext_pushed:
            await emitter.send(signals.appcontext_pushed, request=websocket)
        if listening.websocket_started:
            await emitter.send(signals.websocket_started, websocket=websocket)
        try:
            await self.app(scope, receive, send)
        except WebSocketDisconnect:
            # The client went away: the handler's normal end, not an error.
            await self._websocket_teardown(websocket, None, listening)
            raise
        except Exception as error:
            if listening.got_websocket_exception:
                await emitter.send(
                    signals.got_websocket_exception, websocket=websocket, exception=error
                )
            await self._websocket_teardown(websocket, error, listening)
            raise
        await self._websocket_teardown(websocket, None, listening)

    async def _websocket_teardown(
        self, websocket: WebSocket, exc: Exception | None, listening: _Listening
    ) -> None:
        emitter = self.emitter
        if exc is None and listening.websocket_finished:
            # Starlette handlers return nothing, unlike Quart's: ``response`` is None.
            await emitter.send(signals.websocket_finished, websocket=websocket, response=None)
        if listening.websocket_tearing_down:
            await emitter.send(signals.websocket_tearing_down, websocket=websocket, exc=exc)
        if listening.appcontext_tearing_down:
            await emitter.send(signals.appcontext_tearing_down, exc=exc)
        if listening.appcontext_popped:
            await emitter.send(signals.appcontext_popped)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        emitter = self.emitter
        reported: BaseException | None = None

        async def send_reporting(message: Message) -> None:
            nonlocal reported
            kind = message["type"]
            # Receivers run before the server hears the news: serving_started before the
            # server accepts connections, serving_stopped before it tears the loop down.
            if kind == "lifespan.startup.complete":
                await emitter.send(signals.serving_started)
            elif kind == "lifespan.shutdown.complete":
                await emitter.send(signals.serving_stopped)
            elif kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
                # Starlette's router sends the failure from its ``except`` block, so the
                # exception is the one being handled; report it before the server (or
                # test client) reacts to the failure by stopping.
                error = sys.exc_info()[1]
                if not isinstance(error, Exception):
                    error = RuntimeError(message.get("message") or kind)
                reported = error
                await emitter.send(signals.got_serving_exception, exception=error)
            await send(message)

        try:
            await self.app(scope, receive, send_reporting)
        except Exception as error:
            if error is not reported:
                await emitter.send(signals.got_serving_exception, exception=error)
            raise


class _UnhandledExceptionHook:
    """Sits just inside ``ServerErrorMiddleware``: what escapes it is unhandled (handled
    ones, ``HTTPException`` included, became responses in ``ExceptionMiddleware``), and
    reporting it here puts ``got_request_exception`` before the 500 response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as error:
            connection: _HTTPConnection | None = scope.get(_CONNECTION_KEY)
            if connection is not None:
                await connection.report(error)
            raise


def _with_hook(stack: ASGIApp) -> ASGIApp:
    """``stack`` again, with the hook just inside its ``ServerErrorMiddleware``.

    A second ``ServerErrorMiddleware`` built from the first one's public attributes
    shares everything inside it, so requests nobody listens to keep the untouched stack.
    Only Starlette's own class is rebuilt; other stacks get no hook.
    """
    if type(stack) is not ServerErrorMiddleware:
        return stack
    return ServerErrorMiddleware(
        _UnhandledExceptionHook(stack.app), handler=stack.handler, debug=stack.debug
    )


# --- installing -----------------------------------------------------------------------------

#: Installations in place, for :func:`_signals_changed` to refresh; weak, so that an app
#: and its installation (which reference each other) can be collected together.
_live_installations: weakref.WeakSet[StarletteIntegration] = weakref.WeakSet()
_INSTALLATION_ATTR: Final = "_asignal_installation"

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


class StarletteIntegration:
    """The handle :func:`install` returns; :meth:`uninstall` undoes the installation.

    While no receiver of an HTTP, websocket, template or flash signal listens to the app
    (directly or through ``ANY``), the app runs its own middleware stack, untouched; the
    first ``connect`` puts :class:`SignalMiddleware` in front of it, and the last
    ``disconnect`` takes it away again (told by the signals' ``receiver_connected`` and
    ``receiver_disconnected``). The lifespan is reported from the router's
    ``lifespan_context``, which is in the path whatever listens.
    """

    def __init__(self, app: Starlette, *, timeout: float | None, errors: ErrorPolicy) -> None:
        self.app = app
        self.timeout = timeout
        self.errors: ErrorPolicy = errors
        self._emitter = Emitter(app, timeout=timeout, errors=errors)
        self._build_original = app.build_middleware_stack
        self._lifespan_original: Lifespan = app.router.lifespan_context
        self._lifespan = self._reporting_lifespan(self._lifespan_original)
        #: The app's own stack, and the middleware in front of it; set when it is built.
        self._plain: ASGIApp | None = None
        self._reporting: SignalMiddleware | None = None
        # Re-entrant: building the stack runs the app's code, which may connect receivers.
        self._lock = threading.RLock()

    @property
    def installed(self) -> bool:
        """Whether this installation is still in place."""
        return getattr(self.app, _INSTALLATION_ATTR, None) is self

    def _attach(self) -> None:
        app = self.app
        setattr(app, _INSTALLATION_ATTR, self)
        _live_installations.add(self)
        # Starlette builds its stack on the first call (FastAPI overrides
        # ``build_middleware_stack``; both are wrapped alike): adopt what it builds, or
        # the stack already built if the app has started.
        app.build_middleware_stack = self._build  # type: ignore[method-assign]
        app.router.lifespan_context = self._lifespan
        if app.middleware_stack is not None:
            with self._lock:
                self._adopt(app.middleware_stack)
            self._refresh()

    def _adopt(self, plain: ASGIApp) -> None:
        reporting = SignalMiddleware(
            plain, sender=self.app, timeout=self.timeout, errors=self.errors
        )
        reporting._reporting_app = _with_hook(plain)
        reporting._reports_lifespan = False
        reporting._on_idle = self._refresh
        self._plain, self._reporting = plain, reporting

    def _build(self) -> ASGIApp:
        with self._lock:
            self._adopt(self._build_original())
            # The middleware goes first; the first request nobody listens to swaps in the
            # plain stack (``_on_idle``), so a connect racing this build is never lost.
            assert self._reporting is not None
            return self._reporting

    def _refresh(self) -> None:
        """Put the middleware in the app's path if anyone listens, else take it out."""
        with self._lock:
            plain, reporting = self._plain, self._reporting
            if plain is None or reporting is None or not self.installed:
                return
            current = self.app.middleware_stack
            if current is plain or current is reporting:
                self.app.middleware_stack = reporting if reporting.listening().any else plain

    def _reporting_lifespan(self, lifespan: Lifespan) -> Lifespan:
        emitter = self._emitter

        @asynccontextmanager
        async def reporting(app: Any) -> AsyncIterator[Any]:
            # Starlette sends ``lifespan.startup.complete`` once this yields, and the
            # failure messages once an exception leaves it: both come after the signals.
            try:
                async with lifespan(app) as state:
                    if self.installed:
                        await emitter.send(signals.serving_started)
                    yield state
            except Exception as error:
                if self.installed:
                    await emitter.send(signals.got_serving_exception, exception=error)
                raise
            if self.installed:
                await emitter.send(signals.serving_stopped)

        return reporting

    def uninstall(self) -> None:
        """Take asignal out of the app; calling it again does nothing."""
        with self._lock:
            if not self.installed:
                return
            app = self.app
            delattr(app, _INSTALLATION_ATTR)
            _live_installations.discard(self)
            if vars(app).get("build_middleware_stack") == self._build:
                del app.build_middleware_stack
            if app.router.lifespan_context is self._lifespan:
                app.router.lifespan_context = self._lifespan_original
            if self._reporting is not None:
                self._reporting.enabled = False
                if app.middleware_stack is self._reporting:
                    app.middleware_stack = self._plain


def install(
    app: Starlette, *, timeout: float | None = None, errors: ErrorPolicy = "collect"
) -> StarletteIntegration:
    """Send :mod:`asignal.signals` for ``app``, a Starlette or FastAPI application.

    ``timeout`` (seconds, or ``None`` for no bound) limits each send, so a hanging
    receiver delays a response by at most that long per signal; ``errors="collect"``
    logs a receiver's exception on the ``asignal`` logger instead of letting it reach the
    request (``"raise"`` lets it through). Works before or after the app has started.

    Returns the :class:`StarletteIntegration`; installing an installed app again returns the
    existing one unchanged. Raises ``TypeError`` if ``app`` is not a
    :class:`~starlette.applications.Starlette` (wrap other ASGI apps in
    :class:`SignalMiddleware`) and ``ValueError`` for a bad ``timeout`` or ``errors``.
    """
    if not isinstance(app, Starlette):
        raise TypeError(
            f"install() takes a Starlette or FastAPI application, not {type(app).__name__}; "
            "wrap other ASGI applications in SignalMiddleware"
        )
    existing: StarletteIntegration | None = getattr(app, _INSTALLATION_ATTR, None)
    if existing is not None:
        return existing
    installation = StarletteIntegration(app, timeout=timeout, errors=errors)
    _watch_signals()
    installation._attach()
    return installation


# --- templates ----------------------------------------------------------------------------


def _emitter_of(request: Request) -> Emitter | None:
    emitter: Emitter | None = request.scope.get(EMITTER_KEY)
    return emitter


class TemplateResponse(_StarletteTemplateResponse):
    """The response of :meth:`Jinja2Templates.TemplateResponse`.

    When nobody listens to ``before_render_template`` or ``template_rendered``, it is
    Starlette's own: the template renders in the constructor. Otherwise rendering waits
    for the response to be sent (``__call__``), so that both signals are awaited around
    it and ``before_render_template`` receivers can still change ``context``. Reading
    ``body`` earlier renders it on the spot; the signals still fire when it is sent.
    """

    def __init__(
        self,
        template: Any,
        context: dict[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        *,
        emitter: Emitter | None = None,
    ) -> None:
        self._pending = False
        if emitter is not None and not (
            emitter.wants(signals.before_render_template)
            or emitter.wants(signals.template_rendered)
        ):
            emitter = None
        self._emitter = emitter
        if emitter is None:
            super().__init__(template, context, status_code, headers, media_type, background)
            return
        self.template = template
        self.context = context
        # An empty placeholder body sets the headers Starlette would set (content-length
        # included); the length is corrected once the template has rendered.
        HTMLResponse.__init__(self, b"", status_code, headers, media_type, background)
        self._pending = True

    @property
    def body(self) -> bytes | memoryview:
        if self._pending:
            self._render()
        return self._body

    @body.setter
    def body(self, value: bytes | memoryview) -> None:
        self._body = value

    def _render(self) -> None:
        self._pending = False
        self._body = self.render(self.template.render(self.context))
        headers = self.headers
        if "content-length" in headers:
            headers["content-length"] = str(len(self._body))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        emitter = self._emitter
        if emitter is not None:
            self._emitter = None
            await emitter.send(
                signals.before_render_template, template=self.template, context=self.context
            )
            if self._pending:
                self._render()
            await emitter.send(
                signals.template_rendered, template=self.template, context=self.context
            )
        await super().__call__(scope, receive, send)


class Jinja2Templates(_StarletteJinja2Templates):
    """Drop-in for :class:`starlette.templating.Jinja2Templates` that sends
    ``before_render_template`` and ``template_rendered`` (``template=`` the
    ``jinja2.Template``, ``context=`` the context dict) from the app installed for the
    request, and offers ``get_flashed_messages()`` to templates.

    See :class:`TemplateResponse` for when the template renders.
    """

    def _setup_env_defaults(self, env: jinja2.Environment) -> None:
        super()._setup_env_defaults(env)
        env.globals.setdefault("get_flashed_messages", _template_get_flashed_messages)

    def TemplateResponse(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> TemplateResponse:
        """As Starlette's: render template ``name`` with ``context`` (plus ``request``
        and the context processors' output) into an HTML response."""
        context = context or {}
        context.setdefault("request", request)
        for context_processor in self.context_processors:
            context.update(context_processor(request))
        return TemplateResponse(
            self.get_template(name),
            context,
            status_code=status_code,
            headers=headers,
            media_type=media_type,
            background=background,
            emitter=_emitter_of(request),
        )


# --- flashing -----------------------------------------------------------------------------


async def flash(request: Request, message: str, category: str = "message") -> None:
    """Flash ``message`` for the next request, as Flask's ``flash``.

    It is appended to ``request.session["_flashes"]`` as a ``[category, message]`` pair
    (Flask's layout, kept JSON-serialisable for Starlette's cookie session), then
    ``message_flashed(message=, category=)`` is sent from the installed app. Raises
    ``AssertionError`` (Starlette's) if ``SessionMiddleware`` is not installed.
    """
    flashes = list(request.session.get("_flashes", ()))
    flashes.append([category, message])
    # Reassigned, not appended in place, so the session knows it changed.
    request.session["_flashes"] = flashes
    emitter = _emitter_of(request)
    if emitter is not None and emitter.wants(signals.message_flashed):
        await emitter.send(signals.message_flashed, message=message, category=category)


def get_flashed_messages(
    request: Request, with_categories: bool = False, category_filter: Sequence[str] = ()
) -> list[str] | list[tuple[str, str]]:
    """The messages flashed so far, removed from the session, as Flask's.

    The first call of a request pops them from the session; later calls in the same
    request return the same messages. ``category_filter`` keeps only those categories.
    Returns the messages (``list[str]``), or ``(category, message)`` pairs with
    ``with_categories=True``.
    """
    flashes: list[tuple[str, str]] | None = request.scope.get(_FLASHES_KEY)
    if flashes is None:
        stored = request.session.pop("_flashes") if "_flashes" in request.session else []
        flashes = [(category, message) for category, message in stored]
        request.scope[_FLASHES_KEY] = flashes
    if category_filter:
        flashes = [flash for flash in flashes if flash[0] in category_filter]
    if with_categories:
        return flashes
    return [message for _, message in flashes]


@jinja2.pass_context
def _template_get_flashed_messages(
    context: Mapping[str, Any], with_categories: bool = False, category_filter: Sequence[str] = ()
) -> list[str] | list[tuple[str, str]]:
    return get_flashed_messages(context["request"], with_categories, category_filter)
