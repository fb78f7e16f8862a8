"""``SignalMiddleware`` placed the usual Starlette ways (``Middleware(...)`` in the app's
``middleware`` list, ``app.add_middleware``): it installs the app on its first call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from ._listening import EMITTER_KEY

if TYPE_CHECKING:
    from .integration import StarletteIntegration
    from .middleware import SignalMiddleware


def _inside(app: Starlette, middleware: SignalMiddleware) -> bool:
    stack: Any = app.middleware_stack
    for _ in range(64):
        if stack is None:
            return False
        if stack is middleware:
            return True
        stack = getattr(stack, "app", None)
    return False


class Placement:
    """A :class:`SignalMiddleware` inside a Starlette app's own stack, where it cannot
    see the 500 that ``ServerErrorMiddleware`` (outside it) sends. It installs the app
    with its options instead, so the app reports exactly as :func:`install` makes it,
    and passes through from then on."""

    __slots__ = ("first", "integration")

    def __init__(self, integration: StarletteIntegration) -> None:
        #: The installation the middleware found itself inside defers to.
        self.integration: StarletteIntegration = integration
        #: The call that found the placement entered the app before the installation.
        self.first: bool = True

    @staticmethod
    def of(middleware: SignalMiddleware, scope: Scope) -> Placement | None:
        """The placement of ``middleware``, found on its first call: ``None`` unless it
        is inside the stack of the Starlette app that ``scope`` is for.

        Raises ``ValueError`` (at start-up, as the first call is usually the lifespan)
        for a ``sender`` other than that app, or if the app is already installed with
        other options."""
        app = scope.get("app")
        if not isinstance(app, Starlette) or not _inside(app, middleware):
            return None
        if middleware.emitter.app is not app and middleware.emitter.app is not middleware.app:
            raise ValueError(
                f"SignalMiddleware inside a Starlette app sends with the app as sender; "
                f"sender={middleware.emitter.app!r} cannot be kept there. Use "
                f"asignal.adapters.starlette.install(app), or wrap the app from outside"
            )
        from .integration import install

        return Placement(install(app, **middleware.emitter.options))

    async def call(
        self, middleware: SignalMiddleware, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Pass one call of ``middleware`` on to the app; the call that found the
        placement (already inside the app's stack) is reported by the installation."""
        if self.first:
            self.first = False
            if scope["type"] in ("http", "websocket") and EMITTER_KEY not in scope:
                await self._in_flight(middleware, scope, receive, send)
                return
        await middleware.app(scope, receive, send)

    async def _in_flight(
        self, middleware: SignalMiddleware, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Report the call that found the placement (an app served without a lifespan):
        it passed the app's ``ServerErrorMiddleware`` before the installation, so it runs
        through a second one, sharing the first one's handler, around the rest of the
        stack. That one sends the 500 where the middleware sees it; the outer one then
        finds the response started and only re-raises (it still calls a custom 500
        handler a second time, for this one request)."""
        integration = self.integration
        inner = middleware.app
        outer = integration.server_error_middleware()
        from .middleware import with_hook

        hooked = inner if outer is None else with_hook(outer, inner)
        await integration.wrap(inner, hooked)(scope, receive, send)
