"""Starlette and FastAPI integration: Flask's signal set from a pure ASGI middleware.

One line per application:

```python
from asignal.adapters.starlette import install

app = Starlette(routes=...)        # or FastAPI()
install(app, timeout=2.0)
```

`Starlette(middleware=[Middleware(SignalMiddleware)])` and
`app.add_middleware(SignalMiddleware)` give the same: the middleware installs the app on
its first call (see `SignalMiddleware`).

`install` puts
`SignalMiddleware` *outside* Starlette's
`ServerErrorMiddleware`, so it sees every unhandled exception and the 500 response that
follows, and a hook just *inside* it, so that `got_request_exception` is sent before the
500 goes out (Flask's order). The lifespan is reported from the router's
`lifespan_context`, where the app's background runner also lives. Everything else comes
from the ASGI messages; no Starlette class is patched.

Where each signal comes from (`sender` is the application given to `install`; a request
that reaches a mounted sub-application is reported once, by the outermost installed
application that anyone listens to):

- `appcontext_pushed`: an `http`/`websocket` connection starts (`request=`)
- `request_started`: before the application is called (`request=`)
- `got_request_exception`: an exception escapes the application before the response body
  is complete: sent before the 500 (`exception=`)
- `request_finished`: `http.response.start`, before it is forwarded (`response=`: a
  `ResponseInfo`)
- `got_background_exception`: an exception escaped *after* the response body was sent
  completely (in Starlette only a `BackgroundTask` runs then); sent first of the
  teardown (`exception=`)
- `request_tearing_down`: the application call has ended: body and background tasks are
  done, or it raised (`exc=`); see **After the call** below
- `appcontext_tearing_down`: then (`exc=`); `appcontext_popped` last
- `websocket_started`: a `websocket` connection starts (`websocket=`); once the app's
  call has ended, `got_websocket_exception` for an exception that escaped
  (`WebSocketDisconnect` is not one), else `websocket_finished` (the app returned, or
  the client disconnected); then `websocket_tearing_down`, `appcontext_tearing_down`,
  `appcontext_popped`
- `serving_started`: the lifespan's start-up has run, before Starlette tells the server
- `serving_stopped`: the lifespan's shutdown has run and the background runner has
  drained, before Starlette tells the server
- `got_serving_exception`: the start-up or shutdown raised; the lifespan still fails
- `before_render_template`:
  `Jinja2Templates` responses, before
  rendering
- `template_rendered`: and after rendering, both before the response is sent
- `message_flashed`: `flash`

**Timing.** `timeout` is one budget per request: the total time awaited receivers may
hold up that request, across all its signals. What it cuts off is logged as one error
record per send, naming every receiver cut and the signal.

**After the call.** Once a connection's application call has ended, returning or
raising, the sends that follow it (`got_background_exception` or
`got_websocket_exception`, the `*_finished`/`*_tearing_down` of a websocket,
`request_tearing_down`, `appcontext_tearing_down`, `appcontext_popped`) go in their order
as one job on the app's background runner, still bounded by what the request's budget
left, and the ASGI call returns (or its exception leaves it) at once: a receiver never
changes what the server does next with the connection. Without a lifespan (no runner),
or while the runner cannot take the job (full, or shutting down), they are sent within
the call, after the response: never dropped. In tests, wait for them with
`asignal.testing.settle(handle.runner)` (`handle` is what `install` returned) or a
`Recorder`'s `wait_for("appcontext_popped")`; leaving the lifespan drains the runner.
Background receivers (`connect(..., background=True)`, `send_background`) run on that
runner too; an app served without a lifespan runs them after the response, within the
connection's call.

While nobody listens, a request costs a few attribute reads: no
`Request` is built, nothing is awaited, `send` is not
wrapped. Responses always pass through unchanged and unbuffered.

`install`, the middleware and `flash` need `starlette` only; `Jinja2Templates` and
`TemplateResponse` also need `jinja2` (both come with `pip install "asignal[starlette]"`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import starlette  # noqa: F401
except ImportError as _error:  # pragma: no cover - exercised in a venv without starlette
    raise ImportError(
        'asignal.adapters.starlette needs Starlette: pip install "asignal[starlette]"'
    ) from _error

from ._connection import ResponseInfo
from ._listening import EMITTER_KEY, Listening
from .flash import flash, get_flashed_messages
from .integration import StarletteIntegration, install
from .middleware import SignalMiddleware

if TYPE_CHECKING:
    from .templating import Jinja2Templates, TemplateResponse

__all__ = [
    "EMITTER_KEY",
    "Jinja2Templates",
    "Listening",
    "ResponseInfo",
    "SignalMiddleware",
    "StarletteIntegration",
    "TemplateResponse",
    "flash",
    "get_flashed_messages",
    "install",
]


def __getattr__(name: str) -> Any:
    # The templates are the only part that needs jinja2: imported on first use, so that
    # a FastAPI user without jinja2 can still install.
    if name in ("Jinja2Templates", "TemplateResponse"):
        from . import templating

        return getattr(templating, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
