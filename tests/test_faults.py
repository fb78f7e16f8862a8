"""Faults under load (issue 10, §4): real apps on real servers, faulty receivers, many
concurrent requests over reused keep-alive connections, some abandoned mid-stream.

FastAPI and Starlette on uvicorn, Quart on hypercorn (asyncio), and Starlette and
Quart-Trio on hypercorn's trio worker, each served by a process of its own
(tests/faults/server.py) with asignal installed and a per-request budget of ``BUDGET``
seconds. Each run is cached and read by several checks below; tests/faults/ has the
apps, receivers, server and load.
Nothing here asserts how long anything takes: the few time bounds are hang detectors
with a margin of a whole budget or more.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import cache
from typing import Any

import httpx
import pytest

from tests.faults.apps import APPS
from tests.faults.load import ERROR_ROUTES, Planned, compare, plan
from tests.faults.receivers import AFTER_RESPONSE, AFTER_RETURN, KINDS
from tests.faults.scenario import BUDGET, Run, control, execute

APP_NAMES = list(APPS)
STARLETTE_APPS = [name for name in APP_NAMES if APPS[name].framework == "starlette"]

REQUESTS = 60  # per identity run: six of each route mix entry
CONCURRENCY = 10
HANG_REQUESTS = 30  # every one of them holds a response for up to a budget
CHURN_BATCHES = 6
CHURN_REQUESTS = 120

# What main does not do yet, by the fix it waits for: such a check is marked
# xfail(strict=True) with its reason, so that it fails (XPASS) once the fix is merged,
# and the marker goes then. The engine's (self-cancelling receivers, cycles), the
# Starlette adapter's and the Quart adapter's fixes of issue 10 §4 are merged.
#: Sends after the response, by how the ASGI call ended; merged for both.
AFTER_RESPONSE_SENDS: dict[str, str] = {}


def _requests(app: str, count: int) -> list[Planned]:
    return plan(count, close_after_error=APPS[app].closes_after_error)


@cache
def baseline(app: str) -> Run:
    """The requests with asignal installed and nobody listening."""
    return execute(app, (), _requests(app, REQUESTS), concurrency=CONCURRENCY)


@cache
def faulty(app: str, kind: str) -> Run:
    if kind == "hang":
        return execute(app, (kind,), _requests(app, HANG_REQUESTS), concurrency=15)
    if kind == AFTER_RETURN:
        return execute(app, (kind,), _requests(app, 40), concurrency=20)
    return execute(app, (kind,), _requests(app, REQUESTS), concurrency=CONCURRENCY)


@cache
def churned(app: str, raising: bool) -> Run:
    """Weak receivers churning with the requests (tests/faults/server.py ``Churn``), the
    cyclic GC off, a full collection before, between and after the batches."""

    async def collect(client: httpx.AsyncClient, batch: int) -> None:
        await control(client, "collect")

    kinds = ("raise",) if raising else ()
    requests = plan(CHURN_REQUESTS, abandon=False, close_after_error=True)
    return execute(
        app,
        kinds,
        requests,
        concurrency=CONCURRENCY,
        churn=True,
        gc_off=True,
        batches=CHURN_BATCHES,
        between=collect,
    )


def _xfail(reason: str | None) -> list[pytest.MarkDecorator]:
    return [] if reason is None else [pytest.mark.xfail(strict=True, reason=reason)]


# --- responses ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("app", APP_NAMES)
def test_responses_identical_to_a_run_without_receivers(app: str, kind: str) -> None:
    base, run = baseline(app), faulty(app, kind)
    assert base.report["failure"] is None
    assert run.report["failure"] is None
    assert run.calls, "the faulty receivers were never called"
    comparison = compare(base.outcomes, run.outcomes, run.requests)
    assert comparison.clean, comparison.summary()
    # A response lost in the run without receivers cannot be compared; there should be
    # none, as the requests that end in a server-side close ask for Connection: close.
    assert len(comparison.unknown) <= len(run.requests) // 20, comparison.summary()
    # Every request reached the app once, keep-alive reuse and disconnects included.
    assert sorted(run.times) == [item.rid for item in run.requests]


@pytest.mark.parametrize(
    ("app", "calls"),
    [
        pytest.param(app, calls, marks=_xfail(AFTER_RESPONSE_SENDS.get(calls)))
        for app in STARLETTE_APPS
        for calls in ("failing", "succeeding")
    ],
)
def test_sends_after_the_response_do_not_hold_back_the_call(app: str, calls: str) -> None:
    # The receivers wait for their request's ASGI call to return: it returns first
    # unless the adapter awaits them inside the call, and then it is the budget that ends
    # them. "failing": calls that raise after their response (a 500, a failing background
    # task), which uvicorn answers by closing the connection, so receivers awaited
    # inside decide when a reused keep-alive connection is cut: the lost
    # responses. "succeeding": the other calls, which receivers then hold up to a budget.
    base, run = baseline(app), faulty(app, AFTER_RETURN)
    paths: dict[int | None, str] = {item.rid: item.path for item in run.requests}
    failing = calls == "failing"
    chosen = [call for call in run.calls if (paths.get(call.rid, "") in ERROR_ROUTES) == failing]
    assert chosen
    outcomes = Counter(call.outcome for call in chosen)
    assert set(outcomes) == {"ok"}, outcomes
    assert {call.signal for call in chosen} <= AFTER_RESPONSE
    comparison = compare(base.outcomes, run.outcomes, run.requests)
    assert comparison.clean, comparison.summary()


# --- hangs --------------------------------------------------------------------------------


@pytest.mark.parametrize("app", APP_NAMES)
def test_every_hang_is_cancelled_and_reported_as_a_timeout(app: str) -> None:
    run = faulty(app, "hang")
    calls = run.calls
    assert calls
    assert Counter(call.outcome for call in calls) == {"cancelled": len(calls)}
    timeouts = Counter(e.rid for e in run.logged if e.logger == "asignal" and e.kind == "hang")
    assert all(e.timeout for e in run.logged if e.kind == "hang")
    per_request = Counter(call.rid for call in calls)
    short = {rid: (n, timeouts[rid]) for rid, n in per_request.items() if timeouts[rid] < n}
    assert not short, f"hangs not reported as timeouts (calls, reported): {short}"


@pytest.mark.parametrize("app", APP_NAMES)
def test_hangs_hold_a_response_for_at_most_the_budget(app: str) -> None:
    # What the hanging receivers recorded: for how long each one held its request before
    # the response started. One budget per request bounds their sum; a margin of one
    # more budget absorbs the loop's lag. Without the budget, each signal gets its own.
    run = faulty(app, "hang")
    held: defaultdict[int, float] = defaultdict(float)
    for call in run.calls:
        if call.rid is None or call.ended is None:
            continue
        started = run.times[call.rid][1]
        if started is not None and call.ended <= started:
            held[call.rid] += call.ended - call.started
    assert held, "no hang held a response"
    over = {rid: round(seconds, 3) for rid, seconds in held.items() if seconds > 2 * BUDGET}
    assert not over, f"held longer than the budget {BUDGET} s (+{BUDGET} s lag): {over}"


# --- self-cancelling receivers --------------------------------------------------------------


@pytest.mark.parametrize("app", APP_NAMES)
def test_self_cancellation_is_logged_as_a_failure_not_a_timeout(app: str) -> None:
    run = faulty(app, "self-cancel")
    calls = run.calls
    assert calls
    logged = [e for e in run.logged if e.logger == "asignal" and e.kind == "self-cancel"]
    assert not [e for e in logged if e.timeout], "self-cancellation logged as a timeout"
    assert Counter(e.rid for e in logged) == Counter(call.rid for call in calls)


# --- tasks and shutdown -------------------------------------------------------------------


@pytest.mark.parametrize("app", APP_NAMES)
def test_no_task_left_alive_after_shutdown(app: str) -> None:
    runs = [baseline(app), *(faulty(app, kind) for kind in KINDS)]
    for run in runs:
        where = f"{app} with {run.kinds or 'no'} receivers"
        assert run.report["failure"] is None, where
        assert run.report["serving_stopped"], f"{where}: lifespan shutdown not reported"
        assert run.report["leftover"] == [], f"{where}: alive after shutdown"
        running = [call for call in run.calls if call.outcome == "running"]
        assert not running, f"{where}: receivers never ended: {running[:3]}"
        destroyed = [
            e.message
            for e in run.logged
            if e.logger == "asyncio"
            and ("destroyed" in e.message or "never retrieved" in e.message)
        ]
        assert not destroyed, f"{where}: {destroyed[:3]}"


# --- memory while weak receivers churn ------------------------------------------------------


def _after_warm_up(run: Run) -> list[dict[str, Any]]:
    # Snapshot 0 precedes the load, 1 follows the first batch (warm-up), the last the end.
    snapshots: list[dict[str, Any]] = run.report["snapshots"]
    assert len(snapshots) == CHURN_BATCHES + 1, run.report["failure"]
    return snapshots[1:]


@pytest.mark.parametrize("app", APP_NAMES)
def test_no_dropped_weak_receiver_stays_alive(app: str) -> None:
    # Between batches no send is under way and the cyclic GC is off: an owner dropped
    # and still alive is held by a reference cycle, so its receiver stays connected and
    # the next sends call it. Under load, a send that began once an owner was gone
    # (dropped, and the sends that held it over) must not call it: "dead calls".
    run = churned(app, raising=True)
    churn = run.report["churn"]
    assert churn["calls"] >= churn["created"] > 0, churn
    assert churn["dead_calls"] == 0, churn
    held = [snapshot["held_by_cycles"] for snapshot in run.report["snapshots"]]
    assert held == [0] * len(held), f"dropped owners alive per batch: {held}; {churn}"


@pytest.mark.parametrize("app", APP_NAMES)
def test_failing_receivers_leave_no_cyclic_garbage(app: str) -> None:
    # What full collections find after the warm-up, with raising receivers and without;
    # the difference is what the failing sends left to the cyclic GC (the issue measured
    # 19-45 objects per failing send, over 100 per request here). The servers' own
    # cyclic garbage is some 50 objects per request and varies from run to run by a few,
    # hence the allowance of 10 per request.
    requests = CHURN_REQUESTS * (CHURN_BATCHES - 1) // CHURN_BATCHES
    garbage = {
        raising: sum(s["garbage"] for s in _after_warm_up(churned(app, raising))[1:])
        for raising in (False, True)
    }
    extra = (garbage[True] - garbage[False]) / requests
    assert extra <= 10, f"{extra:.1f} cyclic objects per request ({garbage})"


@pytest.mark.parametrize("app", APP_NAMES)
def test_memory_is_flat_while_weak_receivers_churn(app: str) -> None:
    # After a full collection, from the end of the warm-up batch to the end: every owner
    # gone and the receivers back to the strong ones. And the objects the GC tracks: the
    # lowest count of the last three batches against the lowest of the three before
    # (connections winding down in the server only ever add to a count, a leak lifts
    # the floor); a request's worth of objects kept per request would be ~50.
    snapshots = _after_warm_up(churned(app, raising=True))
    first, last = snapshots[0], snapshots[-1]
    assert last["churn"]["alive"] == 0, last["churn"]
    assert last["receivers"] == first["receivers"]
    half = len(snapshots) // 2
    counts = [snapshot["objects"] for snapshot in snapshots]
    growth = min(counts[half:]) - min(counts[:half])
    requests = CHURN_REQUESTS * half // CHURN_BATCHES
    assert growth < 20 * requests, f"{growth} more objects tracked by the GC: {counts}"
