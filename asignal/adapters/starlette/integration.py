"""``install()``: one line puts the middleware, the lifespan signals and the background
runner in a Starlette or FastAPI application."""

from __future__ import annotations

import threading
from typing import Any, Final

from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp

from ..._background import BackgroundRunner
from ..._dispatch import ErrorPolicy
from .._common import Emitter
from ._listening import Changes, watch_signals
from .lifespan import Lifespan, RunnerSlot, reporting_lifespan
from .middleware import SignalMiddleware, with_hook

__all__ = ["StarletteIntegration", "install"]

_INSTALLATION_ATTR: Final = "_asignal_installation"


class StarletteIntegration:
    """The handle :func:`install` returns; :meth:`uninstall` undoes the installation.

    :class:`SignalMiddleware` is put outside the app's ``ServerErrorMiddleware``, so it
    sees every unhandled exception and the 500 response that follows, with a hook just
    inside it, so that ``got_request_exception`` comes before the 500 goes out (Flask's
    order). While nobody listens to the app, the middleware only makes the background
    runner current and calls the app's own stack with the ASGI callables untouched. The
    lifespan is reported from the router's ``lifespan_context``, where the app's
    :class:`~asignal.BackgroundRunner` also lives (:attr:`runner`).
    """

    def __init__(self, app: Starlette, **options: Any) -> None:
        """Made by :func:`install`, which takes the same ``options`` (and checks them)."""
        #: The Starlette application installed.
        self.app: Starlette = app
        self._emitter = emitter = Emitter(app, **options)
        #: Holds the background runner of the app's lifespan while it runs.
        self.slot: RunnerSlot = RunnerSlot()
        self._build_original = app.build_middleware_stack
        self._lifespan_original: Lifespan = app.router.lifespan_context
        self._lifespan = reporting_lifespan(
            self._lifespan_original, emitter, self.slot, lambda: self.installed, self._refresh
        )
        #: The middleware in front of the app's stack, once the stack is built.
        self.middleware: SignalMiddleware | None = None
        # Re-entrant: building the stack runs the app's code, which may connect receivers.
        self._lock = threading.RLock()

    @property
    def timeout(self) -> float | None:
        """The per-request budget of awaited receivers, in seconds (``None``: no bound)."""
        return self._emitter.timeout

    @property
    def errors(self) -> ErrorPolicy:
        """The ``_errors`` policy of every send."""
        return self._emitter.errors

    @property
    def options(self) -> dict[str, Any]:
        """The options this app was installed with, by name (``timeout``, ``errors``,
        ``max_pending``, ``drain_timeout``, ``background_timeout``), as validated."""
        return self._emitter.options

    @property
    def runner(self) -> BackgroundRunner | None:
        """The app's background runner while its lifespan runs, else ``None``."""
        return self.slot.runner

    @property
    def installed(self) -> bool:
        """Whether this installation is still in place."""
        return getattr(self.app, _INSTALLATION_ATTR, None) is self

    def _attach(self) -> None:
        app = self.app
        setattr(app, _INSTALLATION_ATTR, self)
        # Starlette builds its stack on the first call (FastAPI overrides
        # ``build_middleware_stack``; both are wrapped alike): wrap what it builds, or the
        # stack already built if the app has started.
        app.build_middleware_stack = self._build  # type: ignore[method-assign]
        app.router.lifespan_context = self._lifespan
        Changes.installations.add(self)
        with self._lock:
            if app.middleware_stack is not None:
                app.middleware_stack = self.wrap(app.middleware_stack)

    def _refresh(self) -> None:
        """Take the middleware out of the app's path while the lifespan's runner is up
        and nobody listens (code in the app then finds that runner as the one open on
        its event loop), and put it back otherwise; told of every connect, disconnect,
        and lifespan start and end. A request reads the app's stack once, when it
        starts, so one in flight finishes on the stack it started with."""
        with self._lock:
            middleware = self.middleware
            if middleware is None or not self.installed:
                return
            app = self.app
            current = app.middleware_stack
            if current is not middleware and current is not middleware.app:
                return  # someone else replaced the stack: leave it alone
            app.middleware_stack = middleware.app if self._idle(middleware) else middleware

    def wrap(self, stack: ASGIApp, hooked: ASGIApp | None = None) -> SignalMiddleware:
        """A :class:`SignalMiddleware` reporting for the app in front of ``stack``, with
        the app's options and runner; it calls ``hooked`` (default: ``stack`` with the
        hook inside its ``ServerErrorMiddleware``) while a request is reported."""
        middleware = SignalMiddleware(stack, sender=self.app, **self.options)
        middleware.emitter = self._emitter
        middleware.slot = self.slot
        middleware._reporting_app = with_hook(stack) if hooked is None else hooked
        middleware._reports_lifespan = False
        middleware._placement = None
        if hooked is None:
            self.middleware = middleware
        return middleware

    def server_error_middleware(self) -> ServerErrorMiddleware | None:
        """The app's own ``ServerErrorMiddleware``, if its stack is built."""
        stack: Any = self.app.middleware_stack
        for _ in range(64):
            if stack is None or type(stack) is ServerErrorMiddleware:
                return stack
            stack = getattr(stack, "app", None)
        return None

    def _build(self) -> ASGIApp:
        with self._lock:
            # Starlette stores what this returns, then calls it.
            middleware = self.wrap(self._build_original())
            return middleware.app if self._idle(middleware) else middleware

    def _idle(self, middleware: SignalMiddleware) -> bool:
        return self.slot.runner is not None and not middleware.listening().any

    def uninstall(self) -> None:
        """Take asignal out of the app; calling it again does nothing."""
        with self._lock:
            if not self.installed:
                return
            app = self.app
            delattr(app, _INSTALLATION_ATTR)
            Changes.installations.discard(self)
            if vars(app).get("build_middleware_stack") == self._build:
                del app.build_middleware_stack
            if app.router.lifespan_context is self._lifespan:
                app.router.lifespan_context = self._lifespan_original
            middleware = self.middleware
            if middleware is not None:
                middleware.enabled = False
                if app.middleware_stack is middleware:
                    app.middleware_stack = middleware.app


def install(
    app: Starlette,
    *,
    timeout: float | None = None,
    errors: ErrorPolicy = "collect",
    max_pending: int = 1000,
    drain_timeout: float = 10.0,
    background_timeout: float | None = None,
) -> StarletteIntegration:
    """Send :mod:`asignal.signals` for ``app``, a Starlette or FastAPI application, and
    run a background runner for its lifespan.

    :param timeout: seconds, or ``None`` for no bound: the per-request budget, i.e. the
        total time awaited receivers may hold up one request, across all of its signals
        (each send gets what the earlier ones left). The receivers it cuts off are
        logged as one error record per send, naming each of them and the signal.
    :param errors: ``"collect"`` (default) logs a receiver's exception on the ``asignal``
        logger instead of letting it reach the request; ``"raise"`` lets it through.
    :param max_pending: at most this many background calls scheduled or running (int).
    :param drain_timeout: seconds the lifespan shutdown waits for background work before
        cancelling it; ``serving_stopped`` is sent after that drain.
    :param background_timeout: seconds bounding each background call that has no
        ``timeout`` of its own, or ``None``.
    :returns: the :class:`StarletteIntegration`. Installing an installed app again with
        the same options returns the existing one.
    :raises TypeError: if ``app`` is not a :class:`~starlette.applications.Starlette`
        (wrap other ASGI apps in :class:`SignalMiddleware`), or for an option of the
        wrong type.
    :raises ValueError: for a bad option value (negative, NaN, unknown policy), or if
        the app is already installed with different options (which the first install
        would otherwise silently keep).

    Works before or after the app has started. A duration too large for a float (such
    as ``10**400``) means no bound, as ``inf`` does.
    """
    if not isinstance(app, Starlette):
        raise TypeError(
            f"install() takes a Starlette or FastAPI application, not {type(app).__name__}; "
            "wrap other ASGI applications in SignalMiddleware"
        )
    options: dict[str, Any] = {
        "timeout": timeout,
        "errors": errors,
        "max_pending": max_pending,
        "drain_timeout": drain_timeout,
        "background_timeout": background_timeout,
    }
    checked = Emitter(app, **options)  # raises for a bad option before anything changes
    existing: StarletteIntegration | None = getattr(app, _INSTALLATION_ATTR, None)
    if existing is not None:
        old, new = existing.options, checked.options
        if old != new:
            changed = ", ".join(
                f"{key}={old[key]!r} -> {new[key]!r}" for key in old if old[key] != new[key]
            )
            raise ValueError(
                f"{type(app).__name__} app is already installed with other options "
                f"({changed}); uninstall() the first installation to change them"
            )
        return existing
    installation = StarletteIntegration(app, **options)
    watch_signals()
    installation._attach()
    return installation
