"""BackgroundRunner: bounded, supervised fire-and-forget (asyncio, trio): scheduling, the
bound on pending calls and what happens when it is reached, each call's outcome counted in
the stats, and arguments refused by name. Drain and shutdown are in
test_background_shutdown.py; context, worker threads and the current runner in
test_background_context.py.

No test sleeps to synchronise: events order everything, and
``anyio.wait_all_tasks_blocked`` shows that a task is waiting. No test asserts a duration;
the tiny ``timeout`` values are bounds that make tests end quickly.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from asignal import BackgroundRunner, BackgroundStats, Scheduled

pytestmark = pytest.mark.anyio


def stats_of(runner: BackgroundRunner) -> dict[str, int]:
    return runner.stats.as_dict()


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "asignal"]


async def test_schedule_nowait_runs_the_call_and_counts_it() -> None:
    done = anyio.Event()
    seen: list[Any] = []

    async def work(a: int, b: int) -> int:
        seen.append(a + b)
        done.set()
        return 42

    async with BackgroundRunner() as runner:
        scheduled = runner.schedule_nowait(work, 1, 2, name="app.work")
        assert isinstance(scheduled, Scheduled)
        assert scheduled.runner is runner
        assert scheduled.name == "app.work"
        assert "app.work" in repr(scheduled)
        assert seen == []  # not awaited by the caller
        await done.wait()
    assert seen == [3]
    assert stats_of(runner) == {
        "scheduled": 1,
        "completed": 1,
        "failed": 0,
        "timed_out": 0,
        "cancelled": 0,
        "dropped": 0,
    }
    assert isinstance(runner.stats, BackgroundStats)
    assert runner.pending == 0


async def test_async_schedule_waits_for_room() -> None:
    release = anyio.Event()
    order: list[str] = []

    async def blocker() -> None:
        await release.wait()
        order.append("blocker done")

    async def second() -> None:
        order.append("second ran")

    async with BackgroundRunner(max_pending=1) as runner:
        await runner.schedule(blocker, name="blocker")
        assert runner.pending == 1
        returned = anyio.Event()

        async def scheduler() -> None:
            await runner.schedule(second, name="second")
            order.append("schedule returned")
            returned.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(scheduler)
            await wait_all_tasks_blocked()
            # Full: the async caller is still waiting, nothing was dropped.
            assert not returned.is_set()
            assert order == []
            assert runner.stats.dropped == 0
            release.set()
            await returned.wait()
        await runner.wait_idle()
    assert order[0] == "blocker done"
    assert set(order[1:]) == {"schedule returned", "second ran"}
    assert runner.stats.scheduled == 2
    assert runner.stats.completed == 2
    assert runner.stats.dropped == 0


async def test_schedule_nowait_drops_counts_and_logs_when_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = anyio.Event()

    async def blocker() -> None:
        await release.wait()

    async with BackgroundRunner(max_pending=2) as runner:
        assert runner.schedule_nowait(blocker, name="first") is not None
        assert runner.schedule_nowait(blocker, name="second") is not None
        with caplog.at_level(logging.WARNING, logger="asignal"):
            assert runner.schedule_nowait(blocker, name="app.third") is None
            assert runner.schedule_nowait(blocker, name="app.fourth") is None
        assert runner.pending == 2
        release.set()
    assert runner.stats.dropped == 2
    assert runner.stats.scheduled == 2
    assert runner.stats.completed == 2
    logged = messages(caplog)
    assert any("app.third" in m and "dropped" in m and "full" in m for m in logged)
    assert any("app.fourth" in m for m in logged)


async def test_exceptions_are_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="asignal"):
        async with BackgroundRunner() as runner:
            await runner.schedule(fails, name="app.fails")
            await runner.wait_idle()
            # The body goes on after the failure: nothing was raised into it.
            assert runner.accepting
    assert runner.stats.failed == 1
    assert runner.stats.completed == 0
    [record] = [r for r in caplog.records if r.name == "asignal"]
    assert "app.fails" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


async def test_timeouts_cancel_and_count(caplog: pytest.LogCaptureFixture) -> None:
    async def hangs() -> None:
        await anyio.sleep_forever()

    async def quick() -> None:
        pass

    with caplog.at_level(logging.WARNING, logger="asignal"):
        async with BackgroundRunner(default_timeout=0) as runner:
            runner.schedule_nowait(hangs, name="app.by_default")
            runner.schedule_nowait(hangs, name="app.own", timeout=0.01)
            # An explicit None overrides the default; quick needs no time at all.
            runner.schedule_nowait(quick, name="app.unbounded", timeout=None)
            await runner.wait_idle()
    assert runner.stats.timed_out == 2
    assert runner.stats.completed == 1
    logged = messages(caplog)
    assert any("app.by_default" in m and "timed out" in m for m in logged)
    assert any("app.own" in m and "timed out" in m for m in logged)


async def test_cancelled_waiting_scheduler_leaves_no_trace() -> None:
    release = anyio.Event()

    async def blocker() -> None:
        await release.wait()

    async with BackgroundRunner(max_pending=1) as runner:
        runner.schedule_nowait(blocker, name="blocker")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await runner.schedule(blocker, name="never")
        release.set()
        await runner.wait_idle()
        # The slot the blocker freed is not held by the cancelled waiter.
        assert runner.pending == 0
        assert runner.schedule_nowait(blocker, name="again") is not None
    assert runner.stats.scheduled == 2


def test_invalid_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        BackgroundRunner(max_pending=0)
    with pytest.raises(TypeError, match="max_pending"):
        BackgroundRunner(max_pending=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="drain_timeout"):
        BackgroundRunner(drain_timeout=-1)
    with pytest.raises(ValueError, match="default_timeout"):
        BackgroundRunner(default_timeout=float("nan"))


async def test_invalid_timeout_names_the_call() -> None:
    async with BackgroundRunner() as runner:
        with pytest.raises(ValueError, match=r"app\.work"):
            runner.schedule_nowait(anyio.sleep, 0, name="app.work", timeout=-1)
        assert runner.pending == 0
    assert runner.stats.scheduled == 0
