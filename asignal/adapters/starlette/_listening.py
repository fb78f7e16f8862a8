"""Who listens, cheaply: the scope keys the adapter shares between its parts, and the
signals' connect/disconnect counter that lets a request skip every lookup."""

from __future__ import annotations

import threading
import weakref
from typing import Any, ClassVar, Final

from ... import signals

#: Scope key holding the :class:`~asignal.adapters._common.Emitter` of the outermost
#: installed application. Its presence tells a mounted, also-installed sub-application
#: that the connection is already being reported; templates and flash find their sender
#: through it.
EMITTER_KEY: Final = "asignal.emitter"
#: Scope key holding the per-connection state while a request is reported.
CONNECTION_KEY: Final = "asignal.connection"
#: Scope key caching the flashed messages popped from the session for this request.
FLASHES_KEY: Final = "asignal.flashes"

HTTP_SIGNALS: Final = (
    signals.appcontext_pushed,
    signals.request_started,
    signals.got_request_exception,
    signals.request_finished,
    signals.request_tearing_down,
    signals.appcontext_tearing_down,
    signals.appcontext_popped,
    signals.got_background_exception,
)
WEBSOCKET_SIGNALS: Final = (
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
REQUEST_SCOPED_SIGNALS: Final = (
    signals.before_render_template,
    signals.template_rendered,
    signals.message_flashed,
)


class Changes:
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
    #: Installations told of every change (``_refresh()``); weak, so that an app and its
    #: installation, which reference each other, can be collected together.
    installations: ClassVar[weakref.WeakSet[Any]] = weakref.WeakSet()


def _signals_changed(signal: Any, **kwargs: Any) -> None:
    with Changes.lock:
        Changes.version += 1
    for installation in list(Changes.installations):
        installation._refresh()


def watch_signals() -> None:
    """Start counting changes (once per process)."""
    with Changes.lock:
        if Changes.watching:
            return
        Changes.watching = True
    for sig in {*HTTP_SIGNALS, *WEBSOCKET_SIGNALS, *REQUEST_SCOPED_SIGNALS}:
        sig.receiver_connected.connect(_signals_changed, weak=False)
        sig.receiver_disconnected.connect(_signals_changed, weak=False)


class Listening:
    """Which of the middleware's signals have receivers for one sender, at one moment.

    Each attribute named after a signal is ``True`` while that signal has a receiver for
    the sender (directly or through ``ANY``). ``http``, ``websocket`` and ``any`` say
    whether anything of an HTTP connection, a websocket connection, or either (templates
    and flash included) is listened to. ``SignalMiddleware.listening()`` returns one.
    """

    __slots__ = (
        "any",
        "appcontext_popped",
        "appcontext_pushed",
        "appcontext_tearing_down",
        "got_background_exception",
        "got_request_exception",
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

    def __init__(self, sender: Any) -> None:
        """Look up who listens to each signal for ``sender`` now."""

        def wants(sig: Any) -> bool:
            return bool(sig.has_receivers_for(sender))

        #: ``appcontext_pushed`` has a receiver for the sender.
        self.appcontext_pushed: bool = wants(signals.appcontext_pushed)
        #: ``appcontext_tearing_down`` has a receiver for the sender.
        self.appcontext_tearing_down: bool = wants(signals.appcontext_tearing_down)
        #: ``appcontext_popped`` has a receiver for the sender.
        self.appcontext_popped: bool = wants(signals.appcontext_popped)
        #: ``request_started`` has a receiver for the sender.
        self.request_started: bool = wants(signals.request_started)
        #: ``request_finished`` has a receiver for the sender.
        self.request_finished: bool = wants(signals.request_finished)
        #: ``got_request_exception`` has a receiver for the sender.
        self.got_request_exception: bool = wants(signals.got_request_exception)
        #: ``got_background_exception`` has a receiver for the sender.
        self.got_background_exception: bool = wants(signals.got_background_exception)
        #: ``request_tearing_down`` has a receiver for the sender.
        self.request_tearing_down: bool = wants(signals.request_tearing_down)
        #: ``websocket_started`` has a receiver for the sender.
        self.websocket_started: bool = wants(signals.websocket_started)
        #: ``websocket_finished`` has a receiver for the sender.
        self.websocket_finished: bool = wants(signals.websocket_finished)
        #: ``got_websocket_exception`` has a receiver for the sender.
        self.got_websocket_exception: bool = wants(signals.got_websocket_exception)
        #: ``websocket_tearing_down`` has a receiver for the sender.
        self.websocket_tearing_down: bool = wants(signals.websocket_tearing_down)
        #: An HTTP request's outgoing messages are watched: for the response, and to
        #: tell request errors from background ones.
        self.http_messages: bool = (
            self.request_finished or self.got_request_exception or self.got_background_exception
        )
        #: Anything to send once the application call has ended.
        self.http_teardown: bool = (
            self.request_tearing_down or self.appcontext_tearing_down or self.appcontext_popped
        )
        #: Anything of an HTTP connection is listened to.
        self.http: bool = any(wants(sig) for sig in HTTP_SIGNALS)
        #: Anything of a websocket connection is listened to.
        self.websocket: bool = any(wants(sig) for sig in WEBSOCKET_SIGNALS)
        #: Anything at all is listened to (templates and flash included).
        self.any: bool = (
            self.http or self.websocket or any(wants(sig) for sig in REQUEST_SCOPED_SIGNALS)
        )
