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
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio

from examples.blinker_comparison import compare_with_blinker
from examples.demo_report import Report, check

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

#: Loggers whose warnings and errors are shown in the timeline, and those silenced because
#: the timeline already says the same (the receivers' values, Quart's traceback).
SHOWN_LOGGERS = ["asignal", "uvicorn.error", "hypercorn.error"]
HIDDEN_LOGGERS = ["examples", "examples.quart_app", "quart.app", "uvicorn.access"]


class DemoError(Exception):
    """The demo cannot run at all; ``code`` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


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
    for name, (module, server, user) in APPS.items():
        apps[name] = (modules[module].create_app(timeout=timeout), server)
        report.apps[name] = apps[name][0]
        report.users[name] = user
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
    out("")
    for line in report.comparison.render():
        out(line)

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
