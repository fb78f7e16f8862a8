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

Each signal's description below says when it is sent and what each keyword argument
holds. "Quart" means :mod:`asignal.adapters.quart`; "Starlette" means
:mod:`asignal.adapters.starlette`, which serves FastAPI apps too. Importing this module
imports neither Quart nor Starlette.
"""

from __future__ import annotations

from ._signal import NamedSignal, Namespace

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

namespace: Namespace = Namespace()
"""The namespace that holds asignal's framework signals. It is separate from
:data:`asignal.default_namespace`, so ``asignal.signal("request-started")`` is a
different, user-owned signal, as in Flask."""

# --- application context --------------------------------------------------------------

appcontext_pushed: NamedSignal = namespace.signal("appcontext-pushed")
"""Sent when an application context is pushed: on Quart when Quart pushes its app
context (for a request, a websocket, start-up, shutdown or background work), on Starlette
when an ``http`` or ``websocket`` connection starts, first of that connection's signals.
As Flask's ``appcontext_pushed``.

- sender: the application the adapter was installed on.
- ``request``: the connection's ``quart.Request`` / ``quart.Websocket`` on Quart, or
  ``None`` for a context that serves no connection (start-up, shutdown, background
  work); the ``starlette.requests.Request`` or ``starlette.websockets.WebSocket`` on
  Starlette.
"""

appcontext_tearing_down: NamedSignal = namespace.signal("appcontext-tearing-down")
"""Sent when the application context is torn down, after the request's (or websocket's)
teardown. As Flask's ``appcontext_tearing_down``.

- sender: the application the adapter was installed on.
- ``exc`` (``BaseException | None``): the exception that ended the connection unhandled,
  else ``None``.
"""

appcontext_popped: NamedSignal = namespace.signal("appcontext-popped")
"""Sent last, when the application context is popped (on Starlette: when the connection
ends). As Flask's ``appcontext_popped``.

- sender: the application the adapter was installed on.
- No keyword arguments.
"""

# --- HTTP requests --------------------------------------------------------------------

request_started: NamedSignal = namespace.signal("request-started")
"""Sent before the request is handled: on Quart before the ``before_request`` functions,
on Starlette before the app is called. As Flask's ``request_started``.

- sender: the application the adapter was installed on.
- ``request``: the request being handled: a ``quart.Request`` on Quart, a
  ``starlette.requests.Request`` on Starlette (its metadata; its body stays the app's).
"""

request_finished: NamedSignal = namespace.signal("request-finished")
"""Sent when the response is ready, before it is sent to the client: on Quart after
``process_response``, on Starlette at ``http.response.start`` (the body may still be
streaming). As Flask's ``request_finished``.

- sender: the application the adapter was installed on.
- ``request``: the request being handled: a ``quart.Request`` on Quart, a
  ``starlette.requests.Request`` on Starlette (its metadata; its body stays the app's).
- ``response``: a ``quart.Response`` on Quart; on Starlette an
  :class:`asignal.adapters.starlette.ResponseInfo` (``status_code``: ``int``,
  ``headers``: ``starlette.datastructures.Headers``). Both have ``status_code`` and
  ``headers``.
"""

got_request_exception: NamedSignal = namespace.signal("got-request-exception")
"""Sent when an exception escapes the request handler unhandled, before the 500 response.
Exceptions with a registered handler and HTTP exceptions are not reported. This is where
error reporters hook in. As Flask's ``got_request_exception``.

- sender: the application the adapter was installed on.
- ``request``: the request being handled: a ``quart.Request`` on Quart, a
  ``starlette.requests.Request`` on Starlette (its metadata; its body stays the app's).
- ``exception`` (``Exception``): the exception that escaped.
"""

request_tearing_down: NamedSignal = namespace.signal("request-tearing-down")
"""Sent when the request is torn down, after the teardown functions: on Quart (as on
Flask) before the response goes out, on Starlette after the response body and the
background tasks. As Flask's ``request_tearing_down``.

- sender: the application the adapter was installed on.
- ``request``: the request being handled: a ``quart.Request`` on Quart, a
  ``starlette.requests.Request`` on Starlette (its metadata; its body stays the app's).
- ``exc`` (``BaseException | None``): the exception that ended the request unhandled,
  else ``None``.
"""

# --- templates and flashing -----------------------------------------------------------

before_render_template: NamedSignal = namespace.signal("before-render-template")
"""Sent just before a template is rendered; receivers may still change ``context``. On
Quart from its template rendering, on Starlette from
:class:`asignal.adapters.starlette.Jinja2Templates`. As Flask's
``before_render_template``.

- sender: the application the adapter was installed on.
- ``template`` (``jinja2.Template``): the template about to be rendered.
- ``context`` (``dict[str, Any]``): the template context.
"""

template_rendered: NamedSignal = namespace.signal("template-rendered")
"""Sent after a template has been rendered (same sources as :data:`before_render_template`).
As Flask's ``template_rendered``; :func:`asignal.testing.capture` records it in tests.

- sender: the application the adapter was installed on.
- ``template`` (``jinja2.Template``): the template that was rendered.
- ``context`` (``dict[str, Any]``): the template context.
"""

message_flashed: NamedSignal = namespace.signal("message-flashed")
"""Sent when a message is flashed: by ``quart.flash`` on Quart, by
:func:`asignal.adapters.starlette.flash` on Starlette. As Flask's ``message_flashed``.

- sender: the application the adapter was installed on.
- ``message`` (``str``): the flashed message.
- ``category`` (``str``): its category (``"message"`` by default).
"""

# --- websockets (Quart's extras) ------------------------------------------------------

websocket_started: NamedSignal = namespace.signal("websocket-started")
"""Sent when a websocket connection starts being handled, before its handler runs. As
Quart's ``websocket_started``.

- sender: the application the adapter was installed on.
- ``websocket``: a ``quart.Websocket`` on Quart, a ``starlette.websockets.WebSocket``
  on Starlette (it cannot receive: the messages stay the app's).
"""

websocket_finished: NamedSignal = namespace.signal("websocket-finished")
"""Sent when the websocket handler has finished. As Quart's ``websocket_finished``.

- sender: the application the adapter was installed on.
- ``websocket``: a ``quart.Websocket`` on Quart, a ``starlette.websockets.WebSocket``
  on Starlette (it cannot receive: the messages stay the app's).
- ``response``: the handler's return value on Quart (a ``quart.Response`` or
  ``None``); always ``None`` on Starlette.
"""

websocket_tearing_down: NamedSignal = namespace.signal("websocket-tearing-down")
"""Sent when the websocket's context is torn down, after its handler. As Quart's
``websocket_tearing_down``.

- sender: the application the adapter was installed on.
- ``websocket``: a ``quart.Websocket`` on Quart, a ``starlette.websockets.WebSocket``
  on Starlette (it cannot receive: the messages stay the app's).
- ``exc`` (``BaseException | None``): the exception that ended the websocket unhandled,
  else ``None``.
"""

got_websocket_exception: NamedSignal = namespace.signal("got-websocket-exception")
"""Sent when an exception escapes a websocket handler (a client disconnect is not an
exception). As Quart's ``got_websocket_exception``.

- sender: the application the adapter was installed on.
- ``websocket``: a ``quart.Websocket`` on Quart, a ``starlette.websockets.WebSocket``
  on Starlette (it cannot receive: the messages stay the app's).
- ``exception`` (``Exception``): the exception that escaped.
"""

# --- background work and serving ------------------------------------------------------

got_background_exception: NamedSignal = namespace.signal("got-background-exception")
"""Sent when a background task raises: Quart's ``add_background_task``, Starlette's
``BackgroundTask`` of a response. As Quart's ``got_background_exception``.

- sender: the application the adapter was installed on.
- ``exception`` (``Exception``): the exception the task raised.
"""

got_serving_exception: NamedSignal = namespace.signal("got-serving-exception")
"""Sent when starting up or shutting down the application fails (Quart's
``before_serving``/``after_serving``, the ASGI lifespan on Starlette). The start-up or
shutdown still fails as the framework would. As Quart's ``got_serving_exception``.

- sender: the application the adapter was installed on.
- ``exception`` (``Exception``): the exception that made it fail.
"""

serving_started: NamedSignal = namespace.signal("serving-started")
"""Sent once the application has started up and is ready to serve: after Quart's
``before_serving`` functions, after the ASGI lifespan start-up completes on Starlette.

- sender: the application the adapter was installed on.
- No keyword arguments.
"""

serving_stopped: NamedSignal = namespace.signal("serving-stopped")
"""Sent once the application has shut down: after Quart's ``after_serving`` functions,
after the ASGI lifespan shutdown completes on Starlette.

- sender: the application the adapter was installed on.
- No keyword arguments.
"""
