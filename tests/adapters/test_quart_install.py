"""Installing the Quart adapter: install() and the extension shape (init_app), options
fixed once per app, uninstall, isolation between apps, and clear errors for bad input and
a missing extra."""

from __future__ import annotations

import gc
import inspect
import subprocess
import sys
import weakref
from typing import Any

import pytest
import quart
import quart.signals as quart_signals

from asignal import signals
from asignal.adapters.quart import QuartIntegration, install

from .quart_app import REQUEST_SIGNALS, TestClientTransport, make_app
from .recording import Recorder

pytestmark = pytest.mark.anyio


async def test_two_apps_never_mix() -> None:
    app_a, app_b = make_app("a"), make_app("b")
    install(app_a)
    install(app_b)
    recorder_a = Recorder(app_a, sync=True).connect()
    recorder_b = Recorder(app_b, sync=True).connect()
    try:
        reply = await TestClientTransport(app_b.test_client()).get("/")
    finally:
        recorder_a.disconnect()
        recorder_b.disconnect()

    assert reply.status == 200
    assert recorder_a.seen == []
    assert recorder_b.names() == REQUEST_SIGNALS
    assert all(seen.sender is app_b for seen in recorder_b.seen)


async def test_install_twice_with_the_same_options_is_a_no_op() -> None:
    app = make_app()
    handle = install(app, timeout=1)
    assert isinstance(handle, QuartIntegration)
    assert install(app, timeout=1.0) is handle
    assert app.extensions["asignal"] is handle
    recorder = Recorder(app, sync=True).connect()
    try:
        await TestClientTransport(app.test_client()).get("/")
    finally:
        recorder.disconnect()

    assert recorder.names() == REQUEST_SIGNALS  # each once


def test_install_twice_with_other_options_names_them() -> None:
    app = make_app()
    handle = install(app, timeout=1, max_pending=5)
    with pytest.raises(ValueError, match=r"timeout=1\.0.*timeout=5\.0") as raised:
        install(app, timeout=5, max_pending=5)
    assert "max_pending" not in str(raised.value)
    with pytest.raises(ValueError, match="errors"):
        QuartIntegration(errors="raise", timeout=1, max_pending=5).init_app(app)
    assert app.extensions["asignal"] is handle
    assert handle.options["timeout"] == 1.0  # the first options stay


async def test_uninstall_stops_forwarding_and_install_works_again() -> None:
    app = make_app()
    handle = install(app)
    recorder = Recorder(app, sync=True).connect()
    client = TestClientTransport(app.test_client())
    try:
        handle.uninstall()
        handle.uninstall()  # idempotent
        assert "asignal" not in app.extensions
        assert list(quart_signals.request_started.receivers_for(app)) == []
        assert (await client.get("/")).status == 200
        assert recorder.seen == []

        async with app.test_app():
            pass
        assert recorder.seen == []  # no serving_started/stopped either

        assert install(app) is not handle
        await client.get("/")
        assert recorder.names() == REQUEST_SIGNALS
    finally:
        recorder.disconnect()


async def test_a_dropped_app_is_freed_and_leaves_quarts_signals() -> None:
    app = make_app()
    install(app)
    seen: list[int] = []

    async def receiver(sender: Any, *, response: Any, **extra: Any) -> None:
        seen.append(response.status_code)

    signals.request_finished.connect(receiver, sender=app)
    assert (await app.test_client().get("/")).status_code == 200
    assert seen == [200]
    async with app.test_app():
        pass
    ref = weakref.ref(app)
    forwarders = list(quart_signals.request_started.receivers_for(app))
    assert len(forwarders) == 1
    del app
    gc.collect()

    assert ref() is None
    assert all(
        forwarder not in quart_signals.request_started.receivers.values()
        for forwarder in forwarders
    )


async def test_installing_does_not_change_quarts_own_signals() -> None:
    app = make_app()
    install(app)
    seen: list[str] = []

    async def quart_receiver(sender: Any, **extra: Any) -> None:
        seen.append("quart")

    quart_signals.request_started.connect(quart_receiver, sender=app)
    try:
        await TestClientTransport(app.test_client()).get("/")
    finally:
        quart_signals.request_started.disconnect(quart_receiver)
    assert seen == ["quart"]


# --- the extension shape ----------------------------------------------------------------


async def test_one_extension_object_for_an_app_factory() -> None:
    extension = QuartIntegration(timeout=1)
    assert extension.app is None
    assert not extension.installed

    def create_app(name: str) -> quart.Quart:
        app = make_app(name)
        extension.init_app(app)
        return app

    app_a, app_b = create_app("a"), create_app("b")
    assert extension.installed
    assert app_a.extensions["asignal"] is app_b.extensions["asignal"] is extension
    extension.init_app(app_a)  # again, same options: nothing changes
    recorder_a = Recorder(app_a, sync=True).connect()
    recorder_b = Recorder(app_b, sync=True).connect()
    try:
        await TestClientTransport(app_a.test_client()).get("/")
        assert recorder_a.names() == REQUEST_SIGNALS
        assert recorder_b.seen == []

        extension.uninstall(app_a)
        assert "asignal" not in app_a.extensions
        assert extension.installed  # app_b still is
        recorder_a.clear()
        await TestClientTransport(app_a.test_client()).get("/")
        await TestClientTransport(app_b.test_client()).get("/")
        assert recorder_a.seen == []
        assert recorder_b.names() == REQUEST_SIGNALS

        extension.uninstall()
        assert not extension.installed
        assert "asignal" not in app_b.extensions
    finally:
        recorder_a.disconnect()
        recorder_b.disconnect()


def test_the_public_signature_shows_options_not_plumbing() -> None:
    parameters = inspect.signature(QuartIntegration).parameters
    assert list(parameters) == [
        "app",
        "timeout",
        "errors",
        "max_pending",
        "drain_timeout",
        "background_timeout",
    ]
    assert parameters["app"].default is None
    assert "Emitter" not in str(inspect.signature(QuartIntegration))
    assert list(inspect.signature(install).parameters)[1:] == list(parameters)[1:]


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("app", [object(), None, "app", quart])
def test_install_on_something_else_than_a_quart_app(app: Any) -> None:
    with pytest.raises(TypeError, match=r"install\(\) needs a quart\.Quart application as app"):
        install(app)
    with pytest.raises(TypeError, match=r"init_app\(\) needs a quart\.Quart application"):
        QuartIntegration().init_app(app)


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("timeout", -1, ValueError),
        ("timeout", float("nan"), ValueError),
        ("timeout", "1", TypeError),
        ("errors", "ignore", ValueError),
        ("max_pending", 0, ValueError),
        ("drain_timeout", None, TypeError),
        ("background_timeout", -0.5, ValueError),
    ],
)
def test_bad_options_are_refused_naming_the_option(
    option: str, value: Any, error: type[Exception]
) -> None:
    app = make_app()
    with pytest.raises(error, match=option):
        install(app, **{option: value})
    with pytest.raises(error, match=option):
        QuartIntegration(**{option: value})
    assert "asignal" not in app.extensions  # nothing half-installed


async def test_a_timeout_beyond_any_clock_means_no_limit() -> None:
    # 10**400 seconds overflows a float; it is taken as what it means (no limit), the
    # same way on every adapter, instead of failing with a bare OverflowError.
    app = make_app()
    handle = install(app, timeout=10**400, drain_timeout=10**400)
    assert handle.options["timeout"] is None
    assert (await app.test_client().get("/")).status_code == 200
    async with app.test_app():
        pass


# --- a missing extra ---------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["quart", "blinker"])
def test_a_missing_extra_says_what_to_install(missing: str) -> None:
    # A real interpreter in which the module cannot be imported, as in an environment
    # installed without the extra.
    code = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        "try:\n"
        "    import asignal.adapters.quart\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.startswith("ImportError ")
    assert 'pip install "asignal[quart]"' in result.stdout
    assert repr(missing) in result.stdout
