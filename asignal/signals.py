"""The Flask core signal set, plus Quart's extras and the ASGI lifespan pair.

Every signal here lives in one :class:`~asignal.Namespace`, :data:`namespace`, and is
sent by the framework adapters (:mod:`asignal.adapters.quart`,
:mod:`asignal.adapters.starlette`) with ``sender`` set to the application object that
the adapter was installed on. Keyword arguments keep Flask's names; every request- or
websocket-scoped signal also carries ``request=`` (or ``websocket=``), because Starlette
has no global request proxy. Write receivers to accept ``**extra`` so that new keyword
arguments never break them::

    from asignal.signals import request_finished

    @request_finished.connect
    async def log_response(app, *, request, response, **extra):
        log.info("%s %s -> %s", request.method, request.url, response.status_code)

Importing this module imports neither Quart nor Starlette.
"""

from __future__ import annotations

from ._signal import Namespace

__all__ = [
    "appcontext_popped",
    "appcontext_pushed",
    "appcontext_tearing_down",
    "before_render_template",
    "got_background_exception",
    "got_request_exception",
    "got_serving_exception",
    "got_websocket_exception",
    "message_flashed",
    "namespace",
    "request_finished",
    "request_started",
    "request_tearing_down",
    "serving_started",
    "serving_stopped",
    "template_rendered",
    "websocket_finished",
    "websocket_started",
    "websocket_tearing_down",
]

#: The namespace that holds asignal's framework signals. It is separate from
#: :data:`asignal.default_namespace`, so ``asignal.signal("request_started")`` is a
#: different, user-owned signal, as in Flask.
namespace = Namespace()

# --- application context ---------------------------------------------------------------

appcontext_pushed = namespace.signal(
    "appcontext-pushed",
    doc="""Sent when an application context is pushed: on Quart when Quart pushes its app
    context, on Starlette when an ``http`` or ``websocket`` connection starts.

    sender: the application. kwargs: ``request`` (the Quart ``Request``/``Websocket`` or
    the Starlette ``Request``/``WebSocket`` of the connection). As Flask's
    ``appcontext_pushed``.""",
)
appcontext_tearing_down = namespace.signal(
    "appcontext-tearing-down",
    doc="""Sent when the application context is torn down, after the request's teardown.

    sender: the application. kwargs: ``exc`` (``BaseException | None``: the exception that
    ended the request unhandled, else ``None``). As Flask's ``appcontext_tearing_down``.""",
)
appcontext_popped = namespace.signal(
    "appcontext-popped",
    doc="""Sent last, when the application context is popped.

    sender: the application. No kwargs. As Flask's ``appcontext_popped``.""",
)

# --- HTTP requests -----------------------------------------------------------------------

request_started = namespace.signal(
    "request-started",
    doc="""Sent before the request is handled (before Quart's ``before_request`` functions;
    on Starlette before the app is called).

    sender: the application. kwargs: ``request`` (the framework's request object). As
    Flask's ``request_started``.""",
)
request_finished = namespace.signal(
    "request-finished",
    doc="""Sent when the response is ready, before it is sent to the client.

    sender: the application. kwargs: ``request``; ``response``, which has at least
    ``status_code`` (int) and ``headers``. On Starlette the body may still be streaming.
    As Flask's ``request_finished``.""",
)
got_request_exception = namespace.signal(
    "got-request-exception",
    doc="""Sent when an exception escapes the request handler unhandled (exceptions with a
    registered handler and HTTP exceptions are not reported), before the 500 response.

    sender: the application. kwargs: ``request``; ``exception`` (the ``Exception``). As
    Flask's ``got_request_exception``; this is where error reporters hook in.""",
)
request_tearing_down = namespace.signal(
    "request-tearing-down",
    doc="""Sent when the request is torn down, after the teardown functions: on Quart
    (as on Flask) before the response goes out, on Starlette after the response body and
    the background tasks.

    sender: the application. kwargs: ``request``; ``exc`` (``BaseException | None``). As
    Flask's ``request_tearing_down``.""",
)

# --- templates and flashing --------------------------------------------------------------

before_render_template = namespace.signal(
    "before-render-template",
    doc="""Sent just before a template is rendered; receivers may still change ``context``.

    sender: the application. kwargs: ``template`` (the ``jinja2.Template``); ``context``
    (``dict[str, Any]``, the template context). As Flask's ``before_render_template``.""",
)
template_rendered = namespace.signal(
    "template-rendered",
    doc="""Sent after a template has been rendered.

    sender: the application. kwargs: ``template`` (the ``jinja2.Template``); ``context``
    (``dict[str, Any]``). As Flask's ``template_rendered``; the
    :func:`asignal.testing.capture` helper records it in tests.""",
)
message_flashed = namespace.signal(
    "message-flashed",
    doc="""Sent when a message is flashed.

    sender: the application. kwargs: ``message`` (``str``); ``category`` (``str``). As
    Flask's ``message_flashed``.""",
)

# --- websockets (Quart's extras) -----------------------------------------------------------

websocket_started = namespace.signal(
    "websocket-started",
    doc="""Sent when a websocket connection starts being handled.

    sender: the application. kwargs: ``websocket``. As Quart's ``websocket_started``.""",
)
websocket_finished = namespace.signal(
    "websocket-finished",
    doc="""Sent when the websocket handler has finished.

    sender: the application. kwargs: ``websocket``; ``response`` (the handler's response,
    or ``None``). As Quart's ``websocket_finished``.""",
)
websocket_tearing_down = namespace.signal(
    "websocket-tearing-down",
    doc="""Sent when the websocket's context is torn down.

    sender: the application. kwargs: ``websocket``; ``exc`` (``BaseException | None``).
    As Quart's ``websocket_tearing_down``.""",
)
got_websocket_exception = namespace.signal(
    "got-websocket-exception",
    doc="""Sent when an exception escapes a websocket handler (a client disconnect is not
    an exception).

    sender: the application. kwargs: ``websocket``; ``exception``. As Quart's
    ``got_websocket_exception``.""",
)

# --- background work and serving ----------------------------------------------------------

got_background_exception = namespace.signal(
    "got-background-exception",
    doc="""Sent when a background task raises (Quart's ``add_background_task``,
    Starlette's ``BackgroundTask``).

    sender: the application. kwargs: ``exception``. As Quart's
    ``got_background_exception``.""",
)
got_serving_exception = namespace.signal(
    "got-serving-exception",
    doc="""Sent when starting up or shutting down the application fails (Quart's
    ``before_serving``/``after_serving``, the ASGI lifespan on Starlette). The lifespan
    still fails as the framework would.

    sender: the application. kwargs: ``exception``. As Quart's
    ``got_serving_exception``.""",
)
serving_started = namespace.signal(
    "serving-started",
    doc="""Sent once the application has started up and is ready to serve (after Quart's
    ``before_serving`` functions; after the ASGI lifespan startup completes).

    sender: the application. No kwargs.""",
)
serving_stopped = namespace.signal(
    "serving-stopped",
    doc="""Sent once the application has shut down (after Quart's ``after_serving``
    functions; after the ASGI lifespan shutdown completes).

    sender: the application. No kwargs.""",
)
