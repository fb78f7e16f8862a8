"""``make demo``: asignal on a Starlette, a FastAPI and a Quart app, over real HTTP.

The three example apps are served in this process (uvicorn, uvicorn, hypercorn) on free
ports of 127.0.0.1; httpx and websockets send them a page request, a failing request, a
websocket exchange and a login. The receivers of :mod:`examples.receivers` (a request
logger, an error reporter, a slow receiver, a hanging one, and an audit receiver that
writes each login to SQLite) are written once and connected to :mod:`asignal.signals`;
the demo prints, per request, which signal fired for which app and when each receiver
started and ended. The slow and the hanging receivers are background receivers: each
response leaves at once, and the timeline shows them finishing (or being cut off by their
timeout) after it; the demo measures, in the same run, a page's latency with such
receivers awaited and in the background. Then it compares asignal's ``send_async`` with
blinker's on the same three 200 ms receivers, and reads the audit rows back.

Exit status: 0 when everything expected was seen; 1 when an expected signal, receiver
outcome or response is missing (each one is listed); 2 when an import is missing; 3 when
a server cannot listen or stops on its own; 4 when the demo overruns its deadline.

:func:`run_demo` is the whole path as a function; ``fast=True`` drops the long sleeps (and
shortens the timeout that cuts the hanging receiver off), which is how
``tests/test_demo.py`` runs it. It needs asyncio: uvicorn, hypercorn's asyncio server,
Quart and aiosqlite all do.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio

#: Seconds that bound how long the apps' awaited receivers hold up one response (the
#: adapter's per-request budget), and the timeout of the hanging background receiver.
TIMEOUT = 0.3
#: The hanging background receiver's timeout in fast mode: short enough for tests. The
#: budget stays :data:`TIMEOUT`: the awaited receivers (the audit's SQLite write) need
#: room on a loaded machine, and nothing awaited hangs any more.
FAST_TIMEOUT = 0.05
#: The slow receiver's and the comparison receivers' duration, seconds.
SLOW_SECONDS = 0.2
#: The slow receiver's duration in fast mode: not zero, so that it really suspends and
#: the concurrency check below has something to observe.
FAST_SLOW_SECONDS = 0.01
#: How long to wait for a request's last signal (``appcontext_popped``), seconds; once
#: an app has missed it, :data:`SETTLE_AFTER_MISS_SECONDS`, so a missing signal is
#: reported instead of overrunning the deadline.
SETTLE_SECONDS = 3.0
SETTLE_AFTER_MISS_SECONDS = 0.5
DEADLINE_SECONDS = 25.0
DEFAULT_DB = Path(__file__).parent / "audit.sqlite3"

#: Which server serves which example app, and the user each app's login sends.
APPS = {
    "starlette": ("examples.starlette_app", "uvicorn", "alice"),
    "fastapi": ("examples.fastapi_app", "uvicorn", "bob"),
    "quart": ("examples.quart_app", "hypercorn", "carol"),
}

#: The requests the demo sends each app.
APPS_REQUESTS = ("page", "fail", "websocket", "login")
#: Signals every request must fire, in Flask's documented order.
HTTP_ORDER = [
    "appcontext_pushed",
    "request_started",
    "request_finished",
    "request_tearing_down",
    "appcontext_tearing_down",
    "appcontext_popped",
]
WEBSOCKET_SIGNALS = ["websocket_started", "websocket_finished", "websocket_tearing_down"]
#: Loggers whose warnings and errors are shown in the timeline, and those silenced because
#: the timeline already says the same (the receivers' values, Quart's traceback).
SHOWN_LOGGERS = ["asignal", "uvicorn.error", "hypercorn.error"]
HIDDEN_LOGGERS = ["examples", "examples.quart_app", "quart.app", "uvicorn.access"]


class DemoError(Exception):
    """The demo cannot run at all; ``code`` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Comparison:
    """The same three receivers of ``seconds`` each, sent by asignal and by blinker."""

    seconds: float
    asignal_seconds: float
    blinker_seconds: float
    asignal_values: list[Any]
    blinker_values: list[Any]


@dataclass
class Report:
    """What one run saw. ``problems`` is empty when everything expected happened."""

    apps: dict[str, Any] = field(default_factory=dict)
    exchanges: dict[tuple[str, str], Any] = field(default_factory=dict)
    serving: Any = None
    logins: list[Any] = field(default_factory=list)
    comparison: Comparison | None = None
    problems: list[str] = field(default_factory=list)
    db_path: Path | None = None
    #: The audit worker in its own process, over NATS (:class:`examples.nats_demo.Remote`).
    remote: Any = None


def _load() -> dict[str, ModuleType]:
    """Import everything the demo needs, turning a missing import into a clear error."""
    names = [
        "httpx",
        "websockets.asyncio.client",
        "blinker",
        "aiosqlite",
        "uvicorn",
        "hypercorn",
        "asignal",
        "asignal.signals",
        "asignal.adapters.starlette",
        "asignal.adapters.quart",
        "examples.receivers",
        "examples.timeline",
        "examples.serving",
        "examples.nats_demo",
        *(module for module, _, _ in APPS.values()),
    ]
    modules = {}
    for name in names:
        try:
            modules[name] = importlib.import_module(name)
        except ImportError as exc:
            raise DemoError(
                f"cannot import {name!r} ({exc}). `make demo` installs what the demo needs "
                "into .venv; if you run it by hand, `pip install -e '.[dev]'` first.",
                code=2,
            ) from exc
    return modules


async def compare_with_blinker(seconds: float) -> Comparison:
    """Send one signal to three async receivers of ``seconds`` each, once with asignal's
    ``send_async`` (concurrent) and once with blinker's (one after another)."""
    import blinker

    import asignal

    def make(i: int) -> Callable[..., Awaitable[int]]:
        async def receiver(sender: Any, **extra: Any) -> int:
            await anyio.sleep(seconds)
            return i

        receiver.__name__ = receiver.__qualname__ = f"receiver_{i}"
        return receiver

    receivers = [make(i) for i in range(3)]
    ours = asignal.Signal("three receivers")
    theirs = blinker.Signal("three receivers")
    for receiver in receivers:
        ours.connect(receiver, weak=False)
        theirs.connect(receiver, weak=False)

    start = time.perf_counter()
    ours_result = await ours.send_async("demo")
    middle = time.perf_counter()
    theirs_result = await theirs.send_async("demo")
    end = time.perf_counter()
    return Comparison(
        seconds,
        middle - start,
        end - middle,
        [value for _, value in ours_result],
        [value for _, value in theirs_result],
    )


async def run_demo(
    *,
    fast: bool = False,
    db_path: str | Path | None = None,
    out: Callable[[str], None] = print,
) -> Report:
    """Serve the three example apps, drive them, and check what the receivers saw.

    ``fast`` drops the long sleeps: the slow receivers take :data:`FAST_SLOW_SECONDS`
    instead of :data:`SLOW_SECONDS`, the comparison's receivers 0 s, and the hanging
    background receiver's timeout is :data:`FAST_TIMEOUT` instead of :data:`TIMEOUT` (it
    is still cut off, sooner). ``db_path`` is the audit database (default :data:`DEFAULT_DB`).
    ``out`` receives each printed line.

    Returns a :class:`Report`; its ``problems`` list every expectation that failed.
    Raises :class:`DemoError` when an import is missing or a port cannot be bound.
    """
    modules = _load()
    signals = modules["asignal.signals"]
    receivers = modules["examples.receivers"]
    serving = modules["examples.serving"]
    httpx = modules["httpx"]
    ws_connect = modules["websockets.asyncio.client"].connect
    from examples.background_demo import measure_and_print
    from examples.signals import user_logged_in
    from examples.timeline import CUT_OFF, Timeline, receiver_name, signal_name

    timeout = TIMEOUT
    hanging_timeout = FAST_TIMEOUT if fast else TIMEOUT
    slow = FAST_SLOW_SECONDS if fast else SLOW_SECONDS
    report = Report(db_path=Path(db_path) if db_path is not None else DEFAULT_DB)

    audit = receivers.AuditLog(report.db_path)
    await audit.create()
    timeline = Timeline()
    report.serving = timeline.serving

    apps = {}
    for name, (module, server, _user) in APPS.items():
        apps[name] = (modules[module].create_app(timeout=timeout), server)
        report.apps[name] = apps[name][0]
        # Quart creates its logger lazily; create it now so the demo can silence it.
        getattr(apps[name][0], "logger", None)

    every_signal = [getattr(signals, n) for n in signals.__all__ if n != "namespace"]
    unwatch = timeline.watch([*every_signal, user_logged_in])
    wires = receivers.wiring(audit, slow_seconds=slow, hanging_timeout=hanging_timeout)
    disconnect = receivers.connect(wires, wrap=timeline.trace)
    out(
        f"asignal demo: 3 apps, signal timeout {timeout * 1000:.0f} ms, slow receiver "
        f"{slow * 1000:.0f} ms and hanging receiver (cut off after "
        f"{hanging_timeout * 1000:.0f} ms) in the background, audit database {report.db_path}"
    )
    out("receivers, written once and connected for every app:")
    by_signal: dict[str, list[str]] = {}
    for signal, receiver, options in wires:
        how = " (background)" if options.get("background") else ""
        by_signal.setdefault(signal_name(signal), []).append(receiver_name(receiver) + how)
    for name, connected in by_signal.items():
        out(f"  {name:<24} -> {', '.join(connected)}")
    nats_demo = modules["examples.nats_demo"]
    try:
        try:
            report.remote = await nats_demo.start(report.db_path, out)
        except nats_demo.RemoteError as exc:
            raise DemoError(str(exc), code=exc.code) from exc
        with timeline.capture_logs(SHOWN_LOGGERS, HIDDEN_LOGGERS):
            try:
                async with serving.serve(apps) as running:
                    await _drive(timeline, running, report, httpx, ws_connect, out)
                    with timeline.begin("latency: awaited vs background"):  # not shown
                        await measure_and_print(running, seconds=slow, fast=fast, out=out)
            except serving.ServingError as exc:
                raise DemoError(str(exc), code=3) from exc
            # The servers have shut down (lifespan included) when `serve` returns.
            for name, served in running.items():
                if served.failure:
                    raise DemoError(f"{name} server: {served.failure}", code=3)
        await report.remote.read_rows(len(apps))
    finally:
        disconnect()
        unwatch()
        if report.remote is not None:
            await report.remote.close()

    hung = [
        (ex, span)
        for ex in timeline.exchanges
        for span in ex.spans_of("hanging_receiver")
        if span.outcome == CUT_OFF and ex.answered_at is not None  # the demo's requests
    ]
    if hung:
        slowest = max((ex.answered_at or ex.t0) - ex.t0 for ex, _ in hung)
        before = sum(
            1
            for ex, span in hung
            if ex.answered_at is not None and span.end is not None and ex.answered_at < span.end
        )
        out("")
        out(
            f"the hanging background receiver was cut off {len(hung)} times by its "
            f"{hanging_timeout * 1000:.0f} ms timeout; no response waited for it (the slowest "
            f"answered after {slowest * 1000:.0f} ms; {before} of {len(hung)} had left "
            "before it was cut off)"
        )

    out("")
    for line in timeline.serving.render():
        out(line)

    report.logins = await audit.logins()
    out("")
    out(f"audit rows written by this run, read back from {report.db_path}:")
    for login in report.logins:
        out(f"  {login.at}  {login.app:<9} user={login.user!r:<8} ip={login.ip}")

    report.comparison = await compare_with_blinker(0.0 if fast else SLOW_SECONDS)
    c = report.comparison
    out("")
    out(f"the same three async receivers of {c.seconds * 1000:.0f} ms each, in this run:")
    out(f"  asignal send_async  {c.asignal_seconds * 1000:6.0f} ms  (concurrent)")
    out(f"  blinker send_async  {c.blinker_seconds * 1000:6.0f} ms  (one after another)")

    from examples import tracing_demo  # one request's spans and metrics (docs/tracing.md)

    traced = await tracing_demo.run(fast=fast, out=out)
    report.problems = [*check(report, cut_off=CUT_OFF), *traced]
    out("")
    if report.problems:
        out(f"{len(report.problems)} expectation(s) not met:")
        for problem in report.problems:
            out(f"  - {problem}")
    else:
        out("every expected signal, receiver outcome, response and audit row was seen.")
    return report


async def _drive(
    timeline: Any,
    running: dict[str, Any],
    report: Report,
    httpx: Any,
    ws_connect: Any,
    out: Callable[[str], None],
) -> None:
    """Send each app its four requests, one at a time, printing each timeline."""

    def started() -> bool:
        senders = [f.sender for f in timeline.serving.fired_of("serving_started")]
        return all(any(s is served.app for s in senders) for served in running.values())

    # A listening socket queues early connections, so requests would work without this;
    # waiting makes the timeline's "serving" part complete before the first request.
    await timeline.wait_for(started, SETTLE_SECONDS)
    ports = ", ".join(f"{n} ({s.server}) {s.url}" for n, s in running.items())
    out(f"serving {ports}")
    out(
        "each request below: the signals it fired, in order, with their sender; under a "
        "signal, each receiver's start → end, in ms from the moment the request was sent"
    )

    async with httpx.AsyncClient(timeout=10.0) as client:
        for name, served in running.items():
            user = APPS[name][2]
            settle = SETTLE_SECONDS

            async def page(ex: Any, served: Any = served) -> str:
                response = await client.get(f"{served.url}/")
                ex.status, ex.body = response.status_code, response.text
                flashed = "Welcome back!" in response.text
                return f"-> {response.status_code}, flashed message in page: {flashed}"

            async def fail(ex: Any, served: Any = served) -> str:
                response = await client.get(f"{served.url}/fail")
                ex.status, ex.body = response.status_code, response.text
                return f"-> {response.status_code}"

            async def echo(ex: Any, served: Any = served) -> str:
                async with ws_connect(f"{served.ws_url}/ws") as ws:
                    await ws.send("hello")
                    ex.body = str(await ws.recv())
                return f"sent 'hello', got {ex.body!r}"

            async def login(ex: Any, served: Any = served, user: str = user) -> str:
                response = await client.post(f"{served.url}/login", json={"user": user})
                ex.status, ex.body = response.status_code, response.text
                return f"-> {response.status_code} {response.text}"

            for what, label, send in [
                ("page", f"GET {served.url}/", page),
                ("fail", f"GET {served.url}/fail", fail),
                ("websocket", f"WEBSOCKET {served.ws_url}/ws", echo),
                ("login", f"POST {served.url}/login", login),
            ]:
                with timeline.begin(f"[{name}] {label}") as ex:
                    try:
                        ex.result = await send(ex)
                    except Exception as exc:  # reported as a problem, not a crash
                        ex.result = f"request failed: {exc!r}"
                    ex.answered_at = timeline.clock()
                    # The request's last signal fires after the client has its answer;
                    # the background receivers end later still: the exchange stays open
                    # until they have, so that their spans and logs land in it.
                    settled = await timeline.wait_for(
                        lambda ex=ex: (
                            "appcontext_popped" in ex.names()
                            and all(span.end is not None for span in ex.spans)
                        ),
                        settle,
                    )
                    if not settled:
                        settle = SETTLE_AFTER_MISS_SECONDS
                report.exchanges[name, what] = ex
                out("")
                for line in ex.render():
                    out(line)


def _order_problems(where: str, names: list[str], expected: list[str]) -> list[str]:
    problems = [f"{where}: signal {s} missing" for s in expected if s not in names]
    present = [s for s in expected if s in names]
    firsts = [names.index(s) for s in present]
    if firsts != sorted(firsts):
        problems.append(f"{where}: signals out of order: {names}")
    return problems


def check(report: Report, *, cut_off: str) -> list[str]:
    """Every expectation of a run, as a list of what failed (empty: all good)."""
    problems: list[str] = []

    def spans(ex: Any, receiver: str) -> list[str]:
        return [s.outcome for s in ex.spans_of(receiver)]

    for name, app in report.apps.items():

        def need(ok: bool, what: str, name: str = name) -> None:
            if not ok:
                problems.append(f"{name}: {what}")

        got = {what: report.exchanges.get((name, what)) for what in APPS_REQUESTS}
        for what, ex in got.items():
            if ex is None:
                problems.append(f"{name}: the {what} request was not made")
                continue
            others = {type(f.sender).__name__ for f in ex.fired if f.sender is not app}
            need(not others, f"{what}: a signal had another sender than the app: {others}")

        if (ex := got["page"]) is not None:
            problems.extend(_order_problems(f"{name}: page", ex.names(), HTTP_ORDER))
            need(ex.status == 200, f"page answered {ex.status}, not 200")
            need("Welcome back!" in ex.body, "page does not show the flashed message")
            for s in ("before_render_template", "template_rendered", "message_flashed"):
                need(s in ex.names(), f"page: signal {s} missing")
            flashed = ex.fired_of("message_flashed")
            need(
                any(f.kwargs.get("message") == "Welcome back!" for f in flashed),
                "page: message_flashed did not carry message='Welcome back!'",
            )
            need(spans(ex, "log_request") == ["ok"], "page: request logger did not run once")
            need(spans(ex, "slow_receiver") == ["ok"], "page: slow receiver did not finish")
        for what in ("page", "fail", "login"):
            if (ex := got[what]) is None:
                continue
            # Concurrency, by causality rather than by the clock: receivers of one signal
            # run together, so the hanging receiver starts while the slow one still runs.
            slow = ex.spans_of("slow_receiver")
            hanging = ex.spans_of("hanging_receiver")
            if slow and hanging and slow[0].end is not None:
                need(
                    hanging[0].start < slow[0].end,
                    f"{what}: request_finished receivers ran one after another, not "
                    "concurrently (the hanging receiver started after the slow one ended)",
                )
            need(
                spans(ex, "hanging_receiver") == [cut_off],
                f"page: hanging receiver not cut off: {spans(ex, 'hanging_receiver')}",
            )

        if (ex := got["fail"]) is not None:
            problems.extend(_order_problems(f"{name}: fail", ex.names(), HTTP_ORDER))
            need(ex.status == 500, f"failing request answered {ex.status}, not 500")
            errors = ex.fired_of("got_request_exception")
            need(
                len(errors) == 1 and isinstance(errors[0].kwargs.get("exception"), RuntimeError),
                f"fail: got_request_exception(exception=RuntimeError) not sent once: {errors}",
            )
            statuses = [
                getattr(f.kwargs.get("response"), "status_code", None)
                for f in ex.fired_of("request_finished")
            ]
            need(statuses == [500], f"fail: request_finished statuses {statuses}, not [500]")
            names = ex.names()
            if errors and "request_finished" in names:
                need(
                    names.index("got_request_exception") < names.index("request_finished"),
                    "fail: got_request_exception came after request_finished",
                )
            need(spans(ex, "report_error") == ["ok"], "fail: error reporter did not run once")

        if (ex := got["websocket"]) is not None:
            need(ex.body == "hello", f"websocket echoed {ex.body!r}, not 'hello'")
            problems.extend(
                _order_problems(
                    f"{name}: websocket",
                    ex.names(),
                    [
                        "appcontext_pushed",
                        *WEBSOCKET_SIGNALS,
                        "appcontext_tearing_down",
                        "appcontext_popped",
                    ],
                )
            )
            need("got_websocket_exception" not in ex.names(), "websocket: reported an error")

        if (ex := got["login"]) is not None:
            problems.extend(_order_problems(f"{name}: login", ex.names(), HTTP_ORDER))
            need(ex.status == 200, f"login answered {ex.status}, not 200")
            logins = ex.fired_of("user_logged_in")
            need(
                [f.kwargs.get("user") for f in logins] == [APPS[name][2]],
                f"login: user_logged_in(user={APPS[name][2]!r}) not sent once",
            )
            need(
                all(f.kwargs.get("ip") == "127.0.0.1" for f in logins),
                "login: user_logged_in did not carry ip='127.0.0.1'",
            )
            need(spans(ex, "AuditLog.record") == ["ok"], "login: audit receiver did not run")

        if report.serving is not None:
            for s in ("serving_started", "serving_stopped"):
                need(
                    any(f.sender is app for f in report.serving.fired_of(s)),
                    f"{s} missing",
                )

    expected_rows = [(type(app).__name__, APPS[n][2]) for n, app in report.apps.items()]
    rows = [(login.app, login.user) for login in report.logins]
    if rows != expected_rows:
        problems.append(f"audit rows {rows}, expected {expected_rows}")
    if report.remote is not None:
        problems += report.remote.problems([type(app).__name__ for app in report.apps.values()])
    c = report.comparison
    # blinker keeps receivers in a set, so its result order is not defined; asignal's is
    # connection order.
    if c is None or c.asignal_values != [0, 1, 2] or sorted(c.blinker_values) != [0, 1, 2]:
        problems.append(f"asignal/blinker comparison returned unexpected results: {c}")
    return problems


def _print(line: str) -> None:
    try:
        print(line)
    except BrokenPipeError:
        # The reader went away (`... | head`): finish quietly, so the servers still shut
        # down cleanly, and let nothing else write to the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


async def _main_async(fast: bool, db_path: Path, deadline: float) -> Report:
    try:
        with anyio.fail_after(deadline):
            return await run_demo(fast=fast, db_path=db_path, out=_print)
    except TimeoutError as exc:
        raise DemoError(f"the demo did not finish within {deadline:.0f} s", code=4) from exc


def _demo_error(exc: BaseException) -> DemoError | None:
    """The DemoError in ``exc``, also when a task group wrapped it."""
    if isinstance(exc, DemoError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _demo_error(inner)) is not None:
                return found
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__)
    parser.add_argument("--fast", action="store_true", help="no sleeps (what the test runs)")
    parser.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help=f"audit database (default {DEFAULT_DB})"
    )
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS, help="seconds")
    args = parser.parse_args(argv)
    try:
        report = anyio.run(_main_async, args.fast, args.db, args.deadline, backend="asyncio")
    except BaseException as exc:
        error = _demo_error(exc)
        if error is None:
            raise
        print(f"\ndemo failed: {error}", file=sys.stderr)
        return error.code
    if report.problems:
        print(
            f"\ndemo failed: {len(report.problems)} expectation(s) not met (listed above)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
