"""The Quart adapter's forwarders: one coroutine per Quart signal, re-sending it on
:mod:`asignal.signals` for one application.

Quart sends its own blinker signals (:mod:`quart.signals`) with ``send_async``, awaiting
one receiver after another in the task that runs the request. :class:`Wiring` connects
one forwarding coroutine per Quart signal, with ``sender=app`` so that two applications
in one process never mix; each forwards with a single concurrent asignal send, bounded by
what is left of the request's time budget.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import anyio
import blinker
import quart
import quart.signals as quart_signals
from quart.globals import app_ctx

from .. import signals
from .._signal import Signal
from ._common import Emitter
from ._quart_budget import RequestBudget, current_task, request_budget

__all__ = ["Wiring", "collect_self_cancel", "self_cancelled"]

logger: Final = logging.getLogger("asignal")

_Forwarder = Callable[..., Awaitable[None]]

#: Quart's signal -> the Wiring method that forwards it.
ROUTES: Final[tuple[tuple[blinker.Signal, str], ...]] = (
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
)


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


def self_cancelled() -> bool:
    """Whether a cancellation exception caught now was raised by a receiver itself,
    rather than delivered because somebody cancelled the current task: asyncio counts
    real cancellation requests on the task, anyio's cancel scopes make the effective
    deadline ``-inf``."""
    task = current_task()
    if isinstance(task, asyncio.Task) and task.cancelling():
        return False
    return anyio.current_effective_deadline() != -math.inf


#: Top-level packages whose frames are plumbing between a forwarder and a receiver.
_PLUMBING: Final = frozenset(
    {"asignal", "asyncio", "anyio", "trio", "outcome", "sniffio", "contextlib", "blinker"}
)


def _raiser(exc: BaseException) -> str:
    """The qualified name of the receiver that raised ``exc``: the outermost frame of its
    traceback, below the forwarder, that belongs to none of the plumbing packages (the
    engine, the event loop). A spent exception re-raised keeps its old frames after it,
    so the innermost frame would name the event loop instead."""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.partition(".")[0] not in _PLUMBING:
            return tb.tb_frame.f_code.co_qualname
        tb = tb.tb_next
    return "a receiver"


class Wiring:
    """One application wired to :mod:`asignal.signals`: its forwarders, and the state
    that lets the teardown signals report what Quart itself does not."""

    __slots__ = (
        "__weakref__",
        "_claimed",
        "_connections",
        "_unhandled",
        "app",
        "emitter",
        "previous_asgi",
        "runners",
        "wrapper",
    )

    def __init__(self, app: quart.Quart, emitter: Emitter) -> None:
        self.app = app
        self.emitter = emitter
        self._connections: list[tuple[blinker.Signal, _Forwarder]] = []
        # Requests/websockets whose own app context has been reported. An app context
        # pushed later in a context copied from the request (a background task started
        # by it) is not that request's, and is reported with request=None.
        self._claimed: weakref.WeakSet[Any] = weakref.WeakSet()
        # Quart catches an unhandled request/websocket exception itself and tears down
        # with exc=None; Flask (and DESIGN.md) report that exception to the teardown
        # signals. Keyed by the Quart AppContext that is current when it is caught.
        self._unhandled: weakref.WeakKeyDictionary[Any, BaseException] = weakref.WeakKeyDictionary()
        # Set by the adapter's ASGI wrapper: what app.asgi_app was before it, the
        # wrapper itself, and the background runners of the app's servings (innermost
        # last; one per lifespan, usually one).
        self.previous_asgi: object = None
        self.wrapper: object = None
        self.runners: list[Any] = []

    @property
    def connected(self) -> bool:
        return bool(self._connections)

    def connect(self) -> None:
        # The forwarders reference this wiring weakly: Quart's signals are module-level
        # and keep weak=False receivers forever, so a strong reference would keep every
        # app that was ever wired alive. The app keeps its wiring alive itself.
        ref = weakref.ref(self)
        for quart_signal, method in ROUTES:
            forwarder = _make_forwarder(ref, method)
            quart_signal.connect(forwarder, sender=self.app, weak=False)
            self._connections.append((quart_signal, forwarder))
        # If the app is dropped without uninstall(), its forwarders leave Quart's
        # signals with it instead of lingering there forever.
        weakref.finalize(self.app, _disconnect_all, self._connections)

    def disconnect(self) -> None:
        _disconnect_all(self._connections)

    # -- sending ------------------------------------------------------------------------

    async def send(self, signal: Signal, /, **kwargs: Any) -> None:
        """One asignal send for this app, within the current request's budget if the
        current task is the one running a request."""
        state = request_budget.get()
        if state is None or state.owner is not current_task():
            await self.emitter.send(signal, **kwargs)
            return
        await self.emitter.send(signal, state.budget, **kwargs)

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
        wanted = self.emitter.wants(signals.appcontext_pushed)
        budgeted = self.emitter.timeout is not None
        if not (wanted or budgeted):
            return
        connection = _current_connection()
        if connection is not None:
            if connection in self._claimed:
                connection = None
            else:
                self._claimed.add(connection)
                if budgeted:
                    # The request's own app context, pushed by the task that runs it:
                    # the budget starts here and lives in this task's context (blinker
                    # awaits this coroutine in that task, so the set() stays there).
                    request_budget.set(RequestBudget(self.emitter.budget(), current_task()))
        if wanted:
            await self.send(signals.appcontext_pushed, request=connection)

    async def _on_request_started(self, sender: Any, **_: Any) -> None:
        if self.emitter.wants(signals.request_started):
            await self.send(signals.request_started, request=_current_request())

    async def _on_got_request_exception(
        self, sender: Any, *, exception: BaseException, **_: Any
    ) -> None:
        self._note_unhandled(exception)
        if self.emitter.wants(signals.got_request_exception):
            await self.send(
                signals.got_request_exception, request=_current_request(), exception=exception
            )

    async def _on_request_finished(self, sender: Any, *, response: Any, **_: Any) -> None:
        if self.emitter.wants(signals.request_finished):
            await self.send(signals.request_finished, request=_current_request(), response=response)

    async def _on_request_tearing_down(
        self, sender: Any, *, exc: BaseException | None = None, **_: Any
    ) -> None:
        if self.emitter.wants(signals.request_tearing_down):
            await self.send(
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
            await self.send(signals.appcontext_tearing_down, exc=exc)

    async def _on_appcontext_popped(self, sender: Any, **_: Any) -> None:
        if self.emitter.wants(signals.appcontext_popped):
            await self.send(signals.appcontext_popped)

    async def _on_before_render_template(
        self, sender: Any, *, template: Any, context: Any, **_: Any
    ) -> None:
        if self.emitter.wants(signals.before_render_template):
            await self.send(signals.before_render_template, template=template, context=context)

    async def _on_template_rendered(
        self, sender: Any, *, template: Any, context: Any, **_: Any
    ) -> None:
        if self.emitter.wants(signals.template_rendered):
            await self.send(signals.template_rendered, template=template, context=context)

    async def _on_message_flashed(
        self, sender: Any, *, message: Any, category: Any, **_: Any
    ) -> None:
        if self.emitter.wants(signals.message_flashed):
            await self.send(signals.message_flashed, message=message, category=category)

    async def _on_websocket_started(self, sender: Any, **_: Any) -> None:
        if self.emitter.wants(signals.websocket_started):
            await self.send(signals.websocket_started, websocket=_current_websocket())

    async def _on_got_websocket_exception(
        self, sender: Any, *, exception: BaseException, **_: Any
    ) -> None:
        self._note_unhandled(exception)
        if self.emitter.wants(signals.got_websocket_exception):
            await self.send(
                signals.got_websocket_exception,
                websocket=_current_websocket(),
                exception=exception,
            )

    async def _on_websocket_finished(self, sender: Any, *, response: Any = None, **_: Any) -> None:
        if self.emitter.wants(signals.websocket_finished):
            await self.send(
                signals.websocket_finished, websocket=_current_websocket(), response=response
            )

    async def _on_websocket_tearing_down(
        self, sender: Any, *, exc: BaseException | None = None, **_: Any
    ) -> None:
        if self.emitter.wants(signals.websocket_tearing_down):
            await self.send(
                signals.websocket_tearing_down,
                websocket=_current_websocket(),
                exc=self._resolve_exc(exc, forget=False),
            )

    async def _on_got_background_exception(
        self, sender: Any, *, exception: BaseException, **_: Any
    ) -> None:
        if self.emitter.wants(signals.got_background_exception):
            await self.send(signals.got_background_exception, exception=exception)

    async def _on_got_serving_exception(
        self, sender: Any, *, exception: BaseException, **_: Any
    ) -> None:
        if self.emitter.wants(signals.got_serving_exception):
            await self.send(signals.got_serving_exception, exception=exception)


def _disconnect_all(connections: list[tuple[blinker.Signal, _Forwarder]]) -> None:
    # Each forwarder serves one app only, so it leaves the signal entirely (sender=ANY),
    # which also drops blinker's bookkeeping for it.
    for quart_signal, forwarder in connections:
        quart_signal.disconnect(forwarder)
    connections.clear()


def collect_self_cancel(wiring: Wiring, what: str, exc: BaseException) -> None:
    """Called with a cancellation exception that reached a forwarder. A real cancellation
    of this task propagates as itself. One that a receiver raised itself, while nobody
    cancelled this task, is that receiver's failure, never a cancellation (passed on as
    one, it makes Quart drop the response or reject the websocket, and confuses trio's
    cancel scopes): under ``"collect"`` it is logged, under ``"raise"`` it reaches Quart
    as a ``RuntimeError`` naming the receiver, like any other receiver exception."""
    if not self_cancelled():
        raise exc
    message = (
        f"{_raiser(exc)} raised {type(exc).__name__} itself while nobody cancelled the send "
        f"of {what}"
    )
    if wiring.emitter.errors != "collect":
        raise RuntimeError(message) from exc
    logger.error("%s: collected as a receiver failure", message, exc_info=exc)


def _make_forwarder(ref: weakref.ref[Wiring], method: str) -> _Forwarder:
    # A plain coroutine function, so blinker awaits it directly instead of handing it to
    # Quart's _sync_wrapper (which would run it in a thread).
    name = method.removeprefix("_on_")

    async def forward(sender: Any, **kwargs: Any) -> None:
        wiring = ref()
        if wiring is not None and wiring.connected:
            try:
                await getattr(wiring, method)(sender, **kwargs)
            except anyio.get_cancelled_exc_class() as exc:
                collect_self_cancel(wiring, name, exc)

    forward.__qualname__ = f"QuartIntegration.{method}"
    return forward
