"""Quart integration: Quart's own lifecycle, re-sent on :mod:`asignal.signals`.

One line per application::

    from asignal.adapters.quart import install

    install(app)                 # or install(app, timeout=0.5)

From then on every signal of :mod:`asignal.signals` fires once per event, with the Quart
application as sender and the keyword arguments documented there (``request=`` /
``websocket=`` included), and its receivers run concurrently under the error policy and
timeout chosen here. ``docs/quart.md`` maps each signal to the Quart hook it comes from.

How it is wired: Quart sends its own blinker signals (:mod:`quart.signals`) with
``send_async``, one receiver after another. The adapter connects one forwarding coroutine
per Quart signal, with ``sender=app`` so that two applications in one process never mix,
and each forwards to asignal with a single concurrent ``send_async``. ``serving_started``
and ``serving_stopped`` come from the ASGI lifespan messages Quart answers with once its
``before_serving`` / ``after_serving`` functions have run: the adapter wraps
``app.asgi_app`` (the hook Quart documents for middleware) and sends them just before
``lifespan.startup.complete`` / ``lifespan.shutdown.complete`` reach the server.

Quart runs on asyncio only, so this adapter does too.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, cast

import blinker
import quart
import quart.signals as quart_signals
from quart.globals import app_ctx

from .. import signals
from .._dispatch import ErrorPolicy
from ._common import Emitter

if TYPE_CHECKING:
    # Quart takes its ASGI types from hypercorn; they are needed for type checking only.
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope

__all__ = ["EXTENSION_KEY", "QuartIntegration", "install"]

#: Key of ``app.extensions`` under which :func:`install` stores the installed
#: :class:`QuartIntegration`.
EXTENSION_KEY: Final = "asignal"

_ASGIApp = Callable[["Scope", "ASGIReceiveCallable", "ASGISendCallable"], Coroutine[Any, Any, None]]
_Forwarder = Callable[..., Awaitable[None]]
_MISSING: Final = object()


def _current_connection() -> Any:
    """The request or websocket of the current Quart context, or ``None``."""
    if quart.has_request_context():
        return cast(Any, quart.request)._get_current_object()
    if quart.has_websocket_context():
        return cast(Any, quart.websocket)._get_current_object()
    return None


def _current_request() -> Any:
    if quart.has_request_context():
        return cast(Any, quart.request)._get_current_object()
    return None


def _current_websocket() -> Any:
    if quart.has_websocket_context():
        return cast(Any, quart.websocket)._get_current_object()
    return None


def _current_app_context() -> Any:
    if quart.has_app_context():
        return cast(Any, app_ctx)._get_current_object()
    return None


class QuartIntegration:
    """The handle :func:`install` returns: one Quart app wired to :mod:`asignal.signals`.

    ``app`` is the application (the sender of every signal); ``emitter`` holds the
    dispatch options fixed at install (``timeout`` in seconds or ``None``, ``errors``).
    ``installed`` is ``False`` once :meth:`uninstall` has run.
    """

    __slots__ = (
        "__weakref__",
        "_claimed",
        "_connections",
        "_finalizer",
        "_inner_asgi",
        "_previous_asgi",
        "_unhandled",
        "_wrapper",
        "app",
        "emitter",
        "installed",
    )

    def __init__(self, app: quart.Quart, emitter: Emitter) -> None:
        self.app = app
        self.emitter = emitter
        self.installed = False
        self._connections: list[tuple[blinker.Signal, _Forwarder]] = []
        # Requests/websockets whose own app context has been reported. An app context
        # pushed later in a context copied from the request (a background task started
        # by it) is not that request's, and is reported with request=None.
        self._claimed: weakref.WeakSet[Any] = weakref.WeakSet()
        # Quart catches an unhandled request/websocket exception itself and tears down
        # with exc=None; Flask (and DESIGN.md) report that exception to the teardown
        # signals. Keyed by the Quart AppContext that is current when it is caught.
        self._unhandled: weakref.WeakKeyDictionary[Any, BaseException] = weakref.WeakKeyDictionary()
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._previous_asgi: object = _MISSING
        self._inner_asgi: _ASGIApp | None = None
        self._wrapper: _ASGIApp | None = None

    # -- wiring -------------------------------------------------------------------------

    def _install(self) -> None:
        # The forwarders reference this handle weakly: Quart's signals are module-level
        # and keep weak=False receivers forever, so a strong reference would keep every
        # app that was ever installed alive. The app keeps the handle alive through
        # app.extensions for as long as it lives itself.
        ref = weakref.ref(self)
        routes: list[tuple[blinker.Signal, str]] = [
            (quart_signals.appcontext_pushed, "_on_appcontext_pushed"),
            (quart_signals.request_started, "_on_request_started"),
            (quart_signals.got_request_exception, "_on_got_request_exception"),
            (quart_signals.request_finished, "_on_request_finished"),
            (quart_signals.request_tearing_down, "_on_request_tearing_down"),
            (quart_signals.appcontext_tearing_down, "_on_appcontext_tearing_down"),
            (quart_signals.appcontext_popped, "_on_appcontext_popped"),
            (quart_signals.before_render_template, "_on_before_render_template"),
            (quart_signals.template_rendered, "_on_template_rendered"),
            (quart_signals.message_flashed, "_on_message_flashed"),
            (quart_signals.websocket_started, "_on_websocket_started"),
            (quart_signals.got_websocket_exception, "_on_got_websocket_exception"),
            (quart_signals.websocket_finished, "_on_websocket_finished"),
            (quart_signals.websocket_tearing_down, "_on_websocket_tearing_down"),
            (quart_signals.got_background_exception, "_on_got_background_exception"),
            (quart_signals.got_serving_exception, "_on_got_serving_exception"),
        ]
        for quart_signal, method in routes:
            forwarder = _make_forwarder(ref, method)
            quart_signal.connect(forwarder, sender=self.app, weak=False)
            self._connections.append((quart_signal, forwarder))
        # If the app is dropped without uninstall(), its forwarders leave Quart's
        # signals with it instead of lingering there forever.
        self._finalizer = weakref.finalize(self.app, _disconnect_all, self._connections)

        self._previous_asgi = self.app.__dict__.get("asgi_app", _MISSING)
        self._inner_asgi = self.app.asgi_app
        self._wrapper = _make_lifespan_wrapper(ref, self._inner_asgi)
        # An instance attribute shadows Quart.asgi_app, as `app.asgi_app = middleware(...)`
        # in Quart's docs does; uninstall() deletes it again.
        self.app.__dict__["asgi_app"] = self._wrapper
        self.app.extensions[EXTENSION_KEY] = self
        self.installed = True

    def uninstall(self) -> None:
        """Undo :func:`install`: disconnect the forwarders from Quart's signals, unwrap
        ``app.asgi_app`` and forget the handle. Idempotent.

        If another middleware wrapped ``app.asgi_app`` after :func:`install`, the lifespan
        wrapper stays in that chain but passes every message through untouched.
        """
        if not self.installed:
            return
        self.installed = False
        if self._finalizer is not None:
            self._finalizer()
        if self.app.__dict__.get("asgi_app") is self._wrapper:
            if self._previous_asgi is _MISSING:
                del self.app.__dict__["asgi_app"]
            else:
                self.app.__dict__["asgi_app"] = self._previous_asgi
        if self.app.extensions.get(EXTENSION_KEY) is self:
            del self.app.extensions[EXTENSION_KEY]

    # -- forwarding: one coroutine per Quart signal ---------------------------------------

    def _resolve_exc(self, exc: BaseException | None, *, forget: bool) -> BaseException | None:
        ctx = _current_app_context()
        if ctx is None:
            return exc
        noted = self._unhandled.pop(ctx, None) if forget else self._unhandled.get(ctx)
        return exc if exc is not None else noted

    def _note_unhandled(self, exception: BaseException) -> None:
        ctx = _current_app_context()
        if ctx is not None:
            self._unhandled[ctx] = exception

    async def _on_appcontext_pushed(self, sender: Any, **_: Any) -> None:
        if not self.emitter.wants(signals.appcontext_pushed):
            return
        connection = _current_connection()
        if connection is not None:
            if connection in self._claimed:
                connection = None
            else:
                self._claimed.add(connection)
        await self.emitter.send(signals.appcontext_pushed, request=connection)

    async def _on_request_started(self, sender: Any, **_: Any) -> None:
        if self.emitter.wants(signals.request_started):
            await self.emitter.send(signals.request_started, request=_current_request())

    async def _on_got_request_exception(
        self, sender: Any, *, exception: BaseException, **_: Any
    ) -> None:
        self._note_unhandled(exception)
        if self.emitter.wants(signals.got_request_exception):
            await self.emitter.send(
                signals.got_request_exception, request=_current_request(), exception=exception
            )

    async def _on_request_finished(self, sender: Any, *, response: Any, **_: Any) -> None:
        if self.emitter.wants(signals.request_finished):
            await self.emitter.send(
                signals.request_finished, request=_current_request(), response=response
            )

    async def _on_request_tearing_down(
        self, sender: Any, *, exc: BaseException | None = None, **_: Any
    ) -> None:
        if self.emitter.wants(signals.request_tearing_down):
            await self.emitter.send(
                signals.request_tearing_down,
                request=_current_request(),
                exc=self._resolve_exc(exc, forget=False),
            )

    async def _on_appcontext_tearing_down(
        self, sender: Any, *, exc: BaseException | None = None, **_: Any
    ) -> None:
        # Always resolve, so the noted exception is forgotten with its app context.
        exc = self._resolve_exc(exc, forget=True)
        if self.emitter.wants(signals.appcontext_tearing_down):
            await self.emitter.send(signals.appcontext_tearing_down, exc=exc)

    async def _on_appcontext_popped(self, sender: Any, **_: Any) -> None:
        if self.emitter.wants(signals.appcontext_popped):
            await self.emitter.send(signals.appcontext_popped)

    async def _on_before_render_template(
        self, sender: Any, *, template: Any, context: Any, **_: Any
    ) -> None:
        if self.emitter.wants(signals.before_render_template):
            await self.emitter.send(
                signals.before_render_template, template=template, context=context
            )

    async def _on_template_rendered(
        self, sender: Any, *, template: Any, context: Any, **_: Any
    ) -> None:
        if self.emitter.wants(signals.template_rendered):
            await self.emitter.send(signals.template_rendered, template=template, context=context)

    async def _on_message_flashed(
        self, sender: Any, *, message: Any, category: Any, **_: Any
    ) -> None:
        if self.emitter.wants(signals.message_flashed):
            await self.emitter.send(signals.message_flashed, message=message, category=category)

    async def _on_websocket_started(self, sender: Any, **_: Any) -> None:
        if self.emitter.wants(signals.websocket_started):
            await self.emitter.send(signals.websocket_started, websocket=_current_websocket())

    async def _on_got_websocket_exception(
        self, sender: Any, *, exception: BaseException, **_: Any
    ) -> None:
        self._note_unhandled(exception)
        if self.emitter.wants(signals.got_websocket_exception):
            await self.emitter.send(
                signals.got_websocket_exception,
                websocket=_current_websocket(),
                exception=exception,
            )

    async def _on_websocket_finished(self, sender: Any, *, response: Any = None, **_: Any) -> None:
        if self.emitter.wants(signals.websocket_finished):
            await self.emitter.send(
                signals.websocket_finished, websocket=_current_websocket(), response=response
            )

    async def _on_websocket_tearing_down(
        self, sender: Any, *, exc: BaseException | None = None, **_: Any
    ) -> None:
        if self.emitter.wants(signals.websocket_tearing_down):
            await self.emitter.send(
                signals.websocket_tearing_down,
                websocket=_current_websocket(),
                exc=self._resolve_exc(exc, forget=False),
            )

    async def _on_got_background_exception(
        self, sender: Any, *, exception: BaseException, **_: Any
    ) -> None:
        if self.emitter.wants(signals.got_background_exception):
            await self.emitter.send(signals.got_background_exception, exception=exception)

    async def _on_got_serving_exception(
        self, sender: Any, *, exception: BaseException, **_: Any
    ) -> None:
        if self.emitter.wants(signals.got_serving_exception):
            await self.emitter.send(signals.got_serving_exception, exception=exception)

    async def _on_lifespan_message(self, message: ASGISendEvent) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            await self.emitter.send(signals.serving_started)
        elif kind == "lifespan.shutdown.complete":
            await self.emitter.send(signals.serving_stopped)


def _disconnect_all(connections: list[tuple[blinker.Signal, _Forwarder]]) -> None:
    # Each forwarder serves one app only, so it leaves the signal entirely (sender=ANY),
    # which also drops blinker's bookkeeping for it.
    for quart_signal, forwarder in connections:
        quart_signal.disconnect(forwarder)
    connections.clear()


def _make_forwarder(ref: weakref.ref[QuartIntegration], method: str) -> _Forwarder:
    # A plain coroutine function, so blinker awaits it directly instead of handing it to
    # Quart's _sync_wrapper (which would run it in a thread).
    async def forward(sender: Any, **kwargs: Any) -> None:
        integration = ref()
        if integration is not None and integration.installed:
            await getattr(integration, method)(sender, **kwargs)

    forward.__qualname__ = f"QuartIntegration.{method}"
    return forward


def _make_lifespan_wrapper(ref: weakref.ref[QuartIntegration], inner: _ASGIApp) -> _ASGIApp:
    async def asgi_app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        integration = ref()
        if scope["type"] != "lifespan" or integration is None or not integration.installed:
            await inner(scope, receive, send)
            return

        async def send_after_signal(message: ASGISendEvent) -> None:
            # Sent before the message is forwarded: the server neither accepts requests
            # before serving_started's receivers are done (or timed out) nor stops the
            # loop before serving_stopped's are.
            current = ref()
            if current is not None and current.installed:
                await current._on_lifespan_message(message)
            await send(message)

        await inner(scope, receive, send_after_signal)

    return asgi_app


def install(
    app: quart.Quart, *, timeout: float | None = None, errors: ErrorPolicy = "collect"
) -> QuartIntegration:
    """Wire ``app`` to :mod:`asignal.signals` and return the handle.

    ``timeout`` (seconds, or ``None`` for no limit) bounds each send of one signal, so a
    hanging receiver delays the request by at most that long per signal before it is
    cancelled. ``errors`` is the ``_errors`` policy of every send: ``"collect"`` (default)
    logs a receiver's exception on the ``asignal`` logger and never lets it reach Quart;
    ``"raise"`` lets it propagate into Quart as if Quart's own receiver had raised.

    Installing on an app that already has an installed handle is a no-op that returns
    that handle unchanged (the first install's options stay). The handle is stored in
    ``app.extensions["asignal"]``; :meth:`QuartIntegration.uninstall` undoes everything.

    Raises ``ValueError`` for a negative or NaN ``timeout`` or an unknown ``errors``.
    """
    existing = app.extensions.get(EXTENSION_KEY)
    if isinstance(existing, QuartIntegration) and existing.installed:
        return existing
    integration = QuartIntegration(app, Emitter(app, timeout=timeout, errors=errors))
    integration._install()
    return integration
