"""What one ``make demo`` run saw (:class:`Report`), and every expectation it must meet.

:func:`check` reads a :class:`Report` filled by :func:`examples.demo.run_demo` and
returns what failed, one line per unmet expectation: a signal missing or out of Flask's
documented order, a sender other than the app, a wrong response, a receiver outcome not
seen, receivers of one signal that ran one after another, an audit row missing. It only
reads: it imports no server, framework or signal library, so it judges any report (the
tests break one on purpose to see it fail).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from examples.blinker_comparison import Comparison

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


@dataclass
class Report:
    """What one run saw. ``problems`` is empty when everything expected happened."""

    apps: dict[str, Any] = field(default_factory=dict)
    #: The user each app's login sends, by app name.
    users: dict[str, str] = field(default_factory=dict)
    exchanges: dict[tuple[str, str], Any] = field(default_factory=dict)
    serving: Any = None
    logins: list[Any] = field(default_factory=list)
    comparison: Comparison | None = None
    problems: list[str] = field(default_factory=list)
    db_path: Path | None = None
    #: The audit worker in its own process, over NATS (:class:`examples.nats_demo.Remote`).
    remote: Any = None


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
                [f.kwargs.get("user") for f in logins] == [report.users.get(name)],
                f"login: user_logged_in(user={report.users.get(name)!r}) not sent once",
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

    expected_rows = [(type(app).__name__, report.users.get(n)) for n, app in report.apps.items()]
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
