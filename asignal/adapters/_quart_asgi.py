"""The Quart adapter's ASGI wrapper: the background runner of the app's serving, and
``serving_started`` / ``serving_stopped`` around Quart's lifespan.

Quart answers the ASGI lifespan itself (``before_serving`` / ``after_serving``); the
adapter wraps ``app.asgi_app`` (the hook Quart documents for middleware) to run one
:class:`~asignal.BackgroundRunner` for as long as the app is served, make it current in
every request's and websocket's ASGI call, and send ``serving_started`` just before
``lifespan.startup.complete`` reaches the server and ``serving_stopped`` once the runner
has drained, just before ``lifespan.shutdown.complete`` does.

An app called without the lifespan (``app.test_client()`` outside ``app.test_app()``)
has no serving runner: each ASGI call then gets a runner of its own, which runs the
background receivers after the response and drains before the call returns.

What Quart does after the response: nothing that sends a signal. It tears the request
context down (``request_tearing_down``, ``appcontext_tearing_down``,
``appcontext_popped``) *before* it sends the response, so no send of ours follows the
response inside the ASGI call, and there is nothing to move off its path.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio

from .. import signals
from .._background import BackgroundRunner
from .._signal import NamedSignal
from ._quart_forward import Wiring, collect_self_cancel

if TYPE_CHECKING:
    # Quart takes its ASGI types from hypercorn; they are needed for type checking only.
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope

__all__ = ["ASGIApp", "make_asgi_wrapper"]

ASGIApp = Callable[["Scope", "ASGIReceiveCallable", "ASGISendCallable"], Coroutine[Any, Any, None]]


async def _send_serving(wiring: Wiring, signal: NamedSignal) -> None:
    try:
        await wiring.send(signal)
    except anyio.get_cancelled_exc_class() as exc:
        collect_self_cancel(wiring, signal.name, exc)


def make_asgi_wrapper(wiring: Wiring, inner: ASGIApp) -> ASGIApp:
    """``inner`` (Quart's ``asgi_app``) wrapped for ``wiring``'s app. The wrapper holds
    the wiring strongly: it lives on the app, so the app keeps its wiring alive, while
    Quart's module-level signals only hold it weakly."""

    async def asgi_app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if not wiring.connected:
            await inner(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _serve(wiring, inner, scope, receive, send)
        elif wiring.runners:
            with wiring.runners[-1].activate():
                await inner(scope, receive, send)
        else:
            # No lifespan runs (Quart's test client without test_app()): background
            # receivers still run, after the response, inside this call.
            async with BackgroundRunner(**wiring.emitter.runner_options):
                await inner(scope, receive, send)

    return asgi_app


async def _serve(
    wiring: Wiring,
    inner: ASGIApp,
    scope: Scope,
    receive: ASGIReceiveCallable,
    send: ASGISendCallable,
) -> None:
    shutdown: list[ASGISendEvent] = []

    async def send_around_signals(message: ASGISendEvent) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            # Before the message is forwarded: the server accepts no request before
            # serving_started's receivers are done (or timed out).
            await _send_serving(wiring, signals.serving_started)
        elif kind == "lifespan.shutdown.complete":
            # Held until the runner has drained; Quart's lifespan returns right after.
            shutdown.append(message)
            return
        await send(message)

    async with BackgroundRunner(**wiring.emitter.runner_options) as runner:
        wiring.runners.append(runner)
        try:
            await inner(scope, receive, send_around_signals)
        finally:
            wiring.runners.remove(runner)
    if shutdown:
        # The serving runner is closed; serving_stopped's own background receivers get
        # a runner that drains before the server is told that shutdown is complete.
        async with BackgroundRunner(**wiring.emitter.runner_options):
            await _send_serving(wiring, signals.serving_stopped)
        await send(shutdown[0])
