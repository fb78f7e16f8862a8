"""install(), uninstall() and the options of asignal.adapters.starlette."""

from __future__ import annotations

from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from asignal import signals
from asignal.adapters.starlette import SignalMiddleware, StarletteIntegration, install

from .starlette_apps import Boom, make_app
from .starlette_clients import (
    HTTP_ORDER,
    call,
    connected,
    http_scope,
    receive_nothing,
    recording,
    send_nowhere,
)

pytestmark = pytest.mark.anyio


async def test_install_twice_returns_the_same_installation() -> None:
    app = make_app()
    first = install(app, timeout=1)
    assert isinstance(first, StarletteIntegration)
    assert install(app, timeout=1.0) is first
    with recording(app) as rec:
        await call(app)
    assert rec.names() == HTTP_ORDER


def test_install_twice_with_other_options_is_refused() -> None:
    # The first options would silently stay; say so, naming what differs.
    app = make_app()
    install(app, timeout=1)
    with pytest.raises(ValueError, match=r"already installed.*timeout=1\.0 -> 2\.0"):
        install(app, timeout=2)
    with pytest.raises(ValueError, match=r"max_pending=1000 -> 5"):
        install(app, timeout=1, max_pending=5)


async def test_uninstall_stops_the_signals_and_twice_is_a_no_op() -> None:
    app = make_app()
    bare = await call(app)
    installation = install(app)
    with recording(app) as rec:
        assert await call(app) == bare
        assert rec.names() == HTTP_ORDER
        installation.uninstall()
        installation.uninstall()
        assert not installation.installed
        assert await call(app) == bare
        assert rec.names() == HTTP_ORDER
        assert install(app) is not installation
        await call(app)
        assert rec.names() == HTTP_ORDER * 2


async def test_install_before_first_request_and_uninstall_before_start() -> None:
    app = make_app()
    installation = install(app)
    installation.uninstall()
    with recording(app) as rec:
        await call(app)
    assert rec.names() == []


def test_install_rejects_what_is_not_a_starlette_app() -> None:
    with pytest.raises(TypeError, match="SignalMiddleware"):
        install(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": "1"}, TypeError, "timeout"),
        ({"errors": "ignore"}, ValueError, "errors"),
        ({"max_pending": 0}, ValueError, "max_pending"),
        ({"drain_timeout": None}, TypeError, "drain_timeout"),
        ({"background_timeout": -1}, ValueError, "background_timeout"),
    ],
)
def test_install_rejects_bad_options(options: dict[str, Any], error: type, named: str) -> None:
    with pytest.raises(error, match=named):
        install(make_app(), **options)


def test_a_timeout_too_large_for_a_float_means_no_bound() -> None:
    assert install(make_app(), timeout=10**400).timeout is None


async def test_two_apps_do_not_see_each_other() -> None:
    app_a, app_b = make_app(), make_app()
    install(app_a)
    install(app_b)
    with recording(app_a) as rec_a:
        await call(app_b)
        assert rec_a.names() == []
        await call(app_a)
    assert rec_a.names() == HTTP_ORDER


async def test_sync_receivers_work() -> None:
    app = make_app()
    install(app)
    seen: list[str] = []

    def started(sender: Any, *, request: Request, **extra: Any) -> None:
        seen.append(request.url.path)

    with connected(signals.request_started, started, app):
        await call(app)
    assert seen == ["/plain"]


async def test_nothing_is_wrapped_when_nobody_listens() -> None:
    given: list[tuple[Receive, Send]] = []

    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        given.append((receive, send))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        pass

    middleware = SignalMiddleware(raw_app)
    await middleware(http_scope("/"), receive_nothing, send)
    assert given == [(receive_nothing, send)]

    with recording(raw_app) as rec:
        await middleware(http_scope("/"), receive_nothing, send)
    assert given[1][1] is not send
    assert rec.names() == HTTP_ORDER


async def test_signal_middleware_on_a_plain_asgi_app_reports_escaping_errors() -> None:
    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Boom("raw")

    middleware = SignalMiddleware(raw_app, sender="my-app")
    with recording("my-app") as rec, pytest.raises(Boom):
        await middleware(http_scope("/"), receive_nothing, send_nowhere)
    assert rec.names() == [
        "appcontext_pushed",
        "request_started",
        "got_request_exception",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]


async def test_install_after_the_app_has_started() -> None:
    app = make_app()
    bare = await call(app)  # builds Starlette's middleware stack
    install(app)
    with recording(app) as rec:
        assert await call(app) == bare
        await call(app, "/nowhere")
    assert rec.names() == HTTP_ORDER * 2
    assert rec.seen[8].kwargs["response"].status_code == 404


async def test_nobody_listening_the_app_gets_the_servers_callables() -> None:
    app = make_app()
    install(app)
    bare = await call(app)
    middleware = app.middleware_stack
    # Nobody listens: the middleware only makes the app's runner current.
    assert isinstance(middleware, SignalMiddleware)
    own_stack = middleware.app
    given: list[tuple[Receive, Send]] = []

    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        given.append((receive, send))
        await own_stack(scope, receive, send)

    middleware.app = spy

    async def started(sender: Any, **extra: Any) -> None:
        pass

    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    await app(http_scope("/plain"), receive_nothing, send)
    assert given == [(receive_nothing, send)]
    with connected(signals.request_finished, started, app):
        # Reported: send is wrapped to see the response start.
        await app(http_scope("/plain"), receive_nothing, send)
        assert given[1][0] is receive_nothing
        assert given[1][1] is not send
        assert await call(app) == bare
    await app(http_scope("/plain"), receive_nothing, send)
    assert given[-1] == (receive_nothing, send)


async def test_a_sub_app_listened_to_alone_reports_its_own_requests() -> None:
    app = make_app()
    sub = app.state.sub
    install(app)
    install(sub)
    with recording(app) as rec, recording(sub) as sub_rec:
        rec.disconnect()  # the outer app installed, but nobody listens to it
        await call(app, "/sub/plain")
    assert rec.names() == []
    assert sub_rec.names() == HTTP_ORDER
    assert all(seen.sender is sub for seen in sub_rec.seen)


@pytest.mark.parametrize("key", [500, Exception])
async def test_a_server_error_handler_still_reports_first(key: Any) -> None:
    async def server_error(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("sorry", status_code=503)

    app = make_app()
    app.add_exception_handler(key, server_error)
    install(app)
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    with recording(app) as rec, pytest.raises(Boom):
        await app(http_scope("/boom"), receive_nothing, send)
    assert messages[0]["status"] == 503
    # Starlette's server-error handler answers, but the exception still reaches the server.
    assert rec.names() == [
        "appcontext_pushed",
        "request_started",
        "got_request_exception",
        "request_finished",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]


async def test_with_a_lifespan_the_middleware_is_in_the_path_only_while_someone_listens() -> None:
    app = make_app()
    install(app)
    bare = await call(app)  # builds the stack
    assert isinstance(app.middleware_stack, SignalMiddleware)  # no lifespan: it runs work
    own_stack = app.middleware_stack.app

    async def started(sender: Any, **extra: Any) -> None:
        pass

    async with LifespanManager(app):
        # Code in the app finds the lifespan's runner without the middleware.
        assert app.middleware_stack is own_stack
        with connected(signals.request_started, started, app):
            assert isinstance(app.middleware_stack, SignalMiddleware)
            assert await call(app) == bare
        assert app.middleware_stack is own_stack
        with connected(signals.template_rendered, started):
            # ANY counts, and template receivers need the app to mark the scope.
            assert isinstance(app.middleware_stack, SignalMiddleware)
        assert app.middleware_stack is own_stack
    assert isinstance(app.middleware_stack, SignalMiddleware)
