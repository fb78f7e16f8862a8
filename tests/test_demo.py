"""The demo's core path, without its sleeps, so ``make demo`` cannot rot.

:func:`examples.demo.run_demo` serves the three example apps over real HTTP on
127.0.0.1 (uvicorn and hypercorn, in-process), drives them with httpx and websockets,
and checks every expected signal, receiver outcome, response and audit row, and that the
receivers of one signal ran concurrently (by the order of their starts and ends, not by
the clock). These tests run it with ``fast=True`` (10 ms instead of 200 ms receivers; the
hanging receiver is still cut off, by a shorter timeout) and assert on what it saw. No
wall-clock assertions.
"""

from __future__ import annotations

import copy
import os
import socket
from functools import partial
from pathlib import Path

import pytest

from examples import demo, demo_report, nats_demo, serving
from examples.serving import ServingError, listening_socket
from examples.timeline import CUT_OFF

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    # uvicorn and hypercorn's asyncio server, Quart and aiosqlite all need asyncio.
    return "asyncio"


async def test_demo_sees_every_expected_signal(tmp_path: Path) -> None:
    lines: list[str] = []
    report = await demo.run_demo(fast=True, db_path=tmp_path / "audit.sqlite3", out=lines.append)

    assert report.problems == []
    assert set(report.apps) == {"starlette", "fastapi", "quart"}
    for name, app in report.apps.items():
        page = report.exchanges[name, "page"]
        assert page.status == 200
        assert "Welcome back!" in page.body
        names = page.names()
        for signal in [*demo_report.HTTP_ORDER, "message_flashed", "template_rendered"]:
            assert signal in names, (name, signal, names)
        assert names[0] == "appcontext_pushed"
        assert names[-1] == "appcontext_popped"
        assert all(f.sender is app for f in page.fired)
        assert [s.outcome for s in page.spans_of("hanging_receiver")] == [CUT_OFF]
        assert [s.outcome for s in page.spans_of("slow_receiver")] == ["ok"]

        fail = report.exchanges[name, "fail"]
        assert fail.status == 500
        [error] = fail.fired_of("got_request_exception")
        assert error.sender is app
        assert isinstance(error.kwargs["exception"], RuntimeError)
        assert [s.outcome for s in fail.spans_of("report_error")] == ["ok"]

        ws = report.exchanges[name, "websocket"]
        assert ws.body == "hello"
        assert [
            n for n in ws.names() if n.startswith("websocket_")
        ] == demo_report.WEBSOCKET_SIGNALS

        [login] = report.exchanges[name, "login"].fired_of("user_logged_in")
        assert login.sender is app
        assert login.kwargs["user"] == demo.APPS[name][2]

        for lifespan in ("serving_started", "serving_stopped"):
            assert [f.sender for f in report.serving.fired_of(lifespan)].count(app) == 1

    assert [(row.app, row.user) for row in report.logins] == [
        ("Starlette", "alice"),
        ("FastAPI", "bob"),
        ("Quart", "carol"),
    ]
    assert (tmp_path / "audit.sqlite3").exists()
    # The same logins, forwarded over NATS and written by the audit worker's process.
    remote = report.remote
    assert [(r["app"], r["user"]) for r in remote.rows] == [
        ("Starlette", "alice"),
        ("FastAPI", "bob"),
        ("Quart", "carol"),
    ]
    assert {r["pid"] for r in remote.rows} == {remote.worker.pid}
    assert remote.worker.pid != os.getpid()
    assert remote.worker_status == 0  # drained on SIGTERM
    comparison = report.comparison
    assert comparison is not None
    assert comparison.asignal_values == [0, 1, 2]  # connection order, always
    assert sorted(comparison.blinker_values) == [0, 1, 2]  # blinker's order is a set's

    output = "\n".join(lines)
    assert "[quart] WEBSOCKET" in output
    assert "blinker send_async" in output
    assert "every expected signal" in output

    # The checks themselves must be able to fail: take a signal away, break a response.
    broken = copy.copy(report)
    broken.exchanges = dict(report.exchanges)
    fail = copy.copy(report.exchanges["quart", "fail"])
    fail.fired = [f for f in fail.fired if f.signal != "got_request_exception"]
    broken.exchanges["quart", "fail"] = fail
    page = copy.copy(report.exchanges["fastapi", "page"])
    page.status = 502
    broken.exchanges["fastapi", "page"] = page
    login = copy.copy(report.exchanges["starlette", "login"])
    [slow] = login.spans_of("slow_receiver")
    [hanging] = login.spans_of("hanging_receiver")
    sequential = copy.copy(hanging)
    assert slow.end is not None
    sequential.start = slow.end  # as if request_finished's receivers ran one by one
    login.spans = [sequential if s is hanging else s for s in login.spans]
    broken.exchanges["starlette", "login"] = login
    problems = demo.check(broken, cut_off=CUT_OFF)
    assert any("quart" in p and "got_request_exception" in p for p in problems), problems
    assert any("fastapi" in p and "502" in p for p in problems), problems
    assert any("starlette" in p and "not concurrently" in p for p in problems), problems
    assert len(problems) == 3, problems


def test_cli_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--fast", "--db", str(tmp_path / "audit.sqlite3")]) == 0
    assert "every expected signal" in capsys.readouterr().out


def test_cli_names_a_missing_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    apps = dict(demo.APPS, flask=("examples.no_such_app", "uvicorn", "dave"))
    monkeypatch.setattr(demo, "APPS", apps)
    assert demo.main(["--fast", "--db", str(tmp_path / "audit.sqlite3")]) == 2
    assert "cannot import 'examples.no_such_app'" in capsys.readouterr().err


def test_a_port_that_cannot_be_bound_is_a_clear_error() -> None:
    # A port that another socket on loopback is already listening on.
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ServingError, match=rf"cannot listen on 127\.0\.0\.1:{port}"):
            listening_socket(port=port)


def test_sockets_are_tcp_without_nagle() -> None:
    # asyncio turns Nagle off only on sockets whose protocol is IPPROTO_TCP; with it on,
    # a response written as headers then body waits for the client's delayed ACK.
    with listening_socket() as sock:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_cli_names_a_port_it_cannot_bind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with listening_socket() as taken:
        port = taken.getsockname()[1]

        def unbindable(host: str = serving.HOST, _port: int = 0) -> socket.socket:
            return listening_socket(host, port)

        monkeypatch.setattr(serving, "listening_socket", unbindable)
        assert demo.main(["--fast", "--db", str(tmp_path / "audit.sqlite3")]) == 3
    assert f"demo failed: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_cli_names_a_nats_server_that_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        # A real nats-server, on a port another socket holds: it cannot listen.
        monkeypatch.setattr(nats_demo, "NatsServer", partial(nats_demo.NatsServer, port=port))
        assert demo.main(["--fast", "--db", str(tmp_path / "audit.sqlite3")]) == 3
    assert "demo failed: cannot start nats-server" in capsys.readouterr().err


async def test_tracing_demo_shows_one_requests_span_tree() -> None:
    from examples import tracing_demo

    traced = await tracing_demo.trace_one_request(fast=True)
    assert tracing_demo.check(traced) == []
    tree = tracing_demo.span_tree(traced.spans)
    assert tree[0].split()[:2] == ["GET", "/fail"]
    hanging = [line for line in tree if "hanging_receiver" in line]
    assert len(hanging) == 1
    assert "asignal.timeout" in hanging[0]
    assert hanging[0].index("asignal.receiver") > tree[0].index("GET") + 2  # nested
    assert dict(traced.metrics["asignal.receiver.timeouts"]) == {
        "examples.receivers.hanging_receiver": 1
    }
