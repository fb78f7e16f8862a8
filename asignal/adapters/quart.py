"""Quart integration: Quart's own lifecycle, re-sent on :mod:`asignal.signals`.

One line per application::

    from asignal.adapters.quart import install

    install(app)                 # or install(app, timeout=0.5)

or the usual extension shape, for application factories::

    from asignal.adapters.quart import QuartIntegration

    asignal_ext = QuartIntegration(timeout=0.5)

    def create_app() -> Quart:
        app = Quart(__name__)
        asignal_ext.init_app(app)
        return app

From then on every signal of :mod:`asignal.signals` fires once per event, with the Quart
application as sender and the keyword arguments documented there (``request=`` /
``websocket=`` included), and its receivers run concurrently under the error policy and
time budget chosen here. Background receivers (``connect(..., background=True)``) run on
a :class:`~asignal.BackgroundRunner` that the adapter runs for as long as the app is
served, and drains at shutdown. ``docs/quart.md`` maps each signal to the Quart hook it
comes from.

How it is wired: one forwarding coroutine per Quart signal (:mod:`quart.signals`),
connected for this app only, and a thin wrapper of ``app.asgi_app`` (the hook Quart
documents for middleware) for the serving runner and ``serving_started`` /
``serving_stopped``. Quart runs on asyncio; the adapter also runs on trio, for apps
made with ``quart_trio.QuartTrio`` (the Quart extension for trio).
"""

from __future__ import annotations

import weakref
from typing import Any, Final

try:
    import quart

    from ._quart_asgi import make_asgi_wrapper
    from ._quart_forward import Wiring
except ModuleNotFoundError as _missing:  # pragma: no cover - exercised in a subprocess
    if (_missing.name or "").partition(".")[0] == "asignal":
        raise
    raise ImportError(
        f"asignal.adapters.quart needs Quart and its dependencies (module {_missing.name!r} "
        'is missing): pip install "asignal[quart]"',
        name=_missing.name,
    ) from _missing

from .._dispatch import ErrorPolicy
from ._common import Emitter

__all__ = ["EXTENSION_KEY", "QuartIntegration", "install"]

#: Key of ``app.extensions`` under which the app's :class:`QuartIntegration` is stored.
EXTENSION_KEY: Final = "asignal"

_MISSING: Final = object()


def _check_app(app: object, what: str) -> quart.Quart:
    if not isinstance(app, quart.Quart):
        raise TypeError(f"{what} needs a quart.Quart application as app, got {app!r}")
    return app


class QuartIntegration:
    """The asignal extension for Quart: wires applications to :mod:`asignal.signals`.

    The integration is stored in ``app.extensions["asignal"]``; :meth:`uninstall` undoes
    everything. Options are fixed once per app.

    :param app: an application to wire at once (as :meth:`init_app` does), or ``None``
        to wire applications later with :meth:`init_app` (application factories).
    :param timeout: seconds, or ``None`` for no limit (the default): the per-request
        budget, i.e. the total time that awaited receivers may hold up one response (or
        one websocket), across all the signals of that request. Only time spent inside
        the sends counts; each send gets what the earlier ones left, and a receiver still
        running when the budget is spent is cancelled and logged: one error record per
        send, naming every receiver it cut off and the signal.
    :param errors: the ``_errors`` policy of every send. ``"collect"`` (default) logs a
        receiver's exception on the ``asignal`` logger and never lets it reach Quart, the
        response is exactly what it would have been without that receiver; ``"raise"``
        lets it propagate into Quart as if Quart's own receiver had raised.
    :param max_pending: how many background receiver calls may be scheduled or running
        at once on the app's :class:`~asignal.BackgroundRunner` (default 1000).
    :param drain_timeout: seconds the runner waits at shutdown for pending background
        calls before cancelling them (default 10); ``serving_stopped`` follows the drain.
    :param background_timeout: seconds bounding each background call whose receiver has
        no ``timeout`` of its own, or ``None`` (default) for no bound.
    :raises TypeError: ``app`` is not a ``quart.Quart``, or an option has the wrong type
        (the message names it).
    :raises ValueError: an option is out of range (negative or NaN seconds, an unknown
        ``errors``, ``max_pending`` < 1), or ``app`` already has asignal installed with
        different options.
    """

    __slots__ = ("_options", "_wirings", "app")

    def __init__(
        self,
        app: quart.Quart | None = None,
        *,
        timeout: float | None = None,
        errors: ErrorPolicy = "collect",
        max_pending: int = 1000,
        drain_timeout: float = 10.0,
        background_timeout: float | None = None,
    ) -> None:
        # Validated now, naming the option at fault, so a bad value fails at import or
        # start-up time, not on a request.
        self._options: dict[str, Any] = Emitter(
            None,
            timeout=timeout,
            errors=errors,
            max_pending=max_pending,
            drain_timeout=drain_timeout,
            background_timeout=background_timeout,
        ).options
        #: The application given to the constructor, or ``None``.
        self.app: quart.Quart | None = app
        self._wirings: weakref.WeakSet[Wiring] = weakref.WeakSet()
        if app is not None:
            self.init_app(app)

    @property
    def options(self) -> dict[str, Any]:
        """The options, validated, by name (``timeout``, ``errors``, ``max_pending``,
        ``drain_timeout``, ``background_timeout``); a fresh dict."""
        return dict(self._options)

    @property
    def installed(self) -> bool:
        """Whether this integration is wired to at least one live application."""
        return any(wiring.connected for wiring in self._wirings)

    def init_app(self, app: quart.Quart) -> None:
        """Wire ``app``: connect the forwarders to Quart's signals for this app only, wrap
        ``app.asgi_app``, and store this integration in ``app.extensions["asignal"]``.

        Wiring an app that is already wired with the same options is a no-op. Raises
        ``TypeError`` if ``app`` is not a ``quart.Quart`` and ``ValueError``, naming the
        options that differ, if it is already wired with other options.
        """
        _check_app(app, "QuartIntegration.init_app()")
        existing = _installed_on(app)
        if existing is not None:
            existing._check_same_options(app, self._options, "init_app()")
            return
        wiring = Wiring(app, Emitter(app, **self._options))
        wiring.connect()
        wiring.previous_asgi = app.__dict__.get("asgi_app", _MISSING)
        wiring.wrapper = make_asgi_wrapper(wiring, app.asgi_app)
        # An instance attribute shadows Quart.asgi_app, as `app.asgi_app = middleware(...)`
        # in Quart's docs does; uninstall() deletes it again. It also keeps the wiring
        # alive for as long as the app lives.
        app.__dict__["asgi_app"] = wiring.wrapper
        app.extensions[EXTENSION_KEY] = self
        self._wirings.add(wiring)

    def uninstall(self, app: quart.Quart | None = None) -> None:
        """Undo :meth:`init_app` for ``app`` (default: every app this integration wired):
        disconnect the forwarders from Quart's signals, unwrap ``app.asgi_app`` and remove
        ``app.extensions["asignal"]``. Idempotent.

        If another middleware wrapped ``app.asgi_app`` after this integration, its wrapper
        stays in that chain but passes every message through untouched.
        """
        for wiring in list(self._wirings):
            if app is not None and wiring.app is not app:
                continue
            self._wirings.discard(wiring)
            wiring.disconnect()
            target = wiring.app
            if target.__dict__.get("asgi_app") is wiring.wrapper:
                if wiring.previous_asgi is _MISSING:
                    del target.__dict__["asgi_app"]
                else:
                    target.__dict__["asgi_app"] = wiring.previous_asgi
            if target.extensions.get(EXTENSION_KEY) is self:
                del target.extensions[EXTENSION_KEY]

    def _wiring_for(self, app: quart.Quart) -> Wiring | None:
        for wiring in self._wirings:
            if wiring.app is app and wiring.connected:
                return wiring
        return None

    def _check_same_options(self, app: quart.Quart, options: dict[str, Any], what: str) -> None:
        differing = [name for name, value in options.items() if self._options[name] != value]
        if differing:
            installed = ", ".join(f"{name}={self._options[name]!r}" for name in differing)
            asked = ", ".join(f"{name}={options[name]!r}" for name in differing)
            raise ValueError(
                f"asignal is already installed on {app!r} with {installed}; {what} asked "
                f"for {asked}. Options are fixed once per app: call uninstall() first to "
                "change them."
            )

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in self._options.items())
        return f"<QuartIntegration {options}>"


def _installed_on(app: quart.Quart) -> QuartIntegration | None:
    existing = app.extensions.get(EXTENSION_KEY)
    if isinstance(existing, QuartIntegration) and existing._wiring_for(app) is not None:
        return existing
    return None


def install(
    app: quart.Quart,
    *,
    timeout: float | None = None,
    errors: ErrorPolicy = "collect",
    max_pending: int = 1000,
    drain_timeout: float = 10.0,
    background_timeout: float | None = None,
) -> QuartIntegration:
    """Wire ``app`` to :mod:`asignal.signals` and return its :class:`QuartIntegration`
    (whose docstring describes each option: ``timeout`` is one budget per request, in
    seconds; ``errors``; the background runner's ``max_pending``, ``drain_timeout`` and
    ``background_timeout``).

    Installing again on an app that is installed with the same options returns the
    installed integration unchanged; with different options it raises ``ValueError``
    naming them. Raises ``TypeError`` if ``app`` is not a ``quart.Quart`` application,
    and ``TypeError`` / ``ValueError`` naming the option for a bad option value.
    """
    _check_app(app, "install()")
    options = Emitter(
        None,
        timeout=timeout,
        errors=errors,
        max_pending=max_pending,
        drain_timeout=drain_timeout,
        background_timeout=background_timeout,
    ).options
    existing = _installed_on(app)
    if existing is not None:
        existing._check_same_options(app, options, "install()")
        return existing
    return QuartIntegration(app, **options)
