"""BackgroundRunner on exit (asyncio, trio): pending calls drained, hanging ones cancelled
at the drain timeout, late and waiting schedulers refused, the body's own exception
propagated, a cancelled shutdown, and exactly one outcome for every call.

No test sleeps to synchronise: events order everything, and
``anyio.wait_all_tasks_blocked`` shows that a task is waiting. No test asserts a duration;
the tiny ``drain_timeout`` and ``timeout`` values are bounds that make tests end quickly.
"""

from __future__ import annotations

import logging

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from asignal import BackgroundRunner

pytestmark = pytest.mark.anyio


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "asignal"]


async def test_drain_completes_pending_calls_before_exit() -> None:
    gate = anyio.Event()
    order: list[str] = []
    runner = BackgroundRunner(drain_timeout=None)

    async def pending_work() -> None:
        await gate.wait()
        order.append("work done")

    async def app() -> None:
        async with runner:
            runner.schedule_nowait(pending_work, name="pending_work")
            order.append("body ends")
        order.append("runner exited")

    async with anyio.create_task_group() as tg:
        tg.start_soon(app)
        await wait_all_tasks_blocked()
        # The body has ended and the runner is draining: it does not accept, it waits.
        assert order == ["body ends"]
        assert not runner.accepting
        assert runner.schedule_nowait(pending_work, name="late") is None
        gate.set()
    assert order == ["body ends", "work done", "runner exited"]
    assert runner.stats.completed == 1
    assert runner.stats.cancelled == 0
    assert runner.stats.dropped == 1


async def test_hanging_call_is_cancelled_at_drain_timeout_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished = anyio.Event()
    cancelled: list[bool] = []

    async def quick() -> None:
        finished.set()

    async def hangs() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    with caplog.at_level(logging.WARNING, logger="asignal"):
        async with BackgroundRunner(drain_timeout=0.05) as runner:
            runner.schedule_nowait(quick, name="app.quick")
            runner.schedule_nowait(hangs, name="app.hangs")
            await finished.wait()
    assert cancelled == [True]
    assert runner.stats.completed == 1
    assert runner.stats.cancelled == 1
    assert runner.stats.scheduled == 2
    assert any("app.hangs" in m and "cancelled" in m for m in messages(caplog))
    assert not any("app.quick" in m for m in messages(caplog))


async def test_closed_or_unentered_runner_refuses(caplog: pytest.LogCaptureFixture) -> None:
    async def work() -> None:
        pass

    runner = BackgroundRunner()
    with caplog.at_level(logging.WARNING, logger="asignal"):
        assert runner.schedule_nowait(work, name="app.early") is None
        with pytest.raises(RuntimeError, match=r"app\.early_async.*not running"):
            await runner.schedule(work, name="app.early_async")
        async with runner:
            pass
        assert runner.schedule_nowait(work, name="app.late") is None
        with pytest.raises(RuntimeError, match="shut"):
            await runner.schedule(work, name="app.late_async")
    assert runner.stats.dropped == 4
    assert runner.stats.scheduled == 0
    assert any("app.late" in m and "dropped" in m for m in messages(caplog))
    with pytest.raises(RuntimeError, match="entered before"):
        async with runner:
            pass


async def open_after_blocked(gate: anyio.Event) -> None:
    await wait_all_tasks_blocked()
    gate.set()


async def test_waiting_schedulers_are_refused_when_the_runner_exits() -> None:
    release = anyio.Event()
    errors: list[str] = []

    async def blocker() -> None:
        await release.wait()

    async def work() -> None:
        pass

    runner = BackgroundRunner(max_pending=1, drain_timeout=None)

    async def waiting_scheduler() -> None:
        try:
            await runner.schedule(work, name="app.waiting")
        except RuntimeError as error:
            errors.append(str(error))

    async with anyio.create_task_group() as tg, runner:
        runner.schedule_nowait(blocker, name="blocker")
        tg.start_soon(waiting_scheduler)
        await wait_all_tasks_blocked()
        assert errors == []
        tg.start_soon(open_after_blocked, release)
    assert len(errors) == 1
    assert "app.waiting" in errors[0]
    assert runner.stats.dropped == 1
    assert runner.stats.completed == 1


async def test_body_exception_propagates_as_itself_after_the_drain() -> None:
    gate = anyio.Event()
    done: list[str] = []
    caught: list[BaseException] = []
    runner = BackgroundRunner(drain_timeout=None)

    async def work() -> None:
        await gate.wait()
        done.append("work")

    async def app() -> None:
        try:
            async with runner:
                runner.schedule_nowait(work, name="work")
                raise LookupError("body failed")
        except LookupError as error:
            caught.append(error)
            done.append("body error seen")

    async with anyio.create_task_group() as tg:
        tg.start_soon(app)
        tg.start_soon(open_after_blocked, gate)
    assert done == ["work", "body error seen"]
    assert str(caught[0]) == "body failed"
    assert runner.stats.completed == 1


async def test_cancelled_while_draining_cancels_the_rest_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def hangs() -> None:
        await anyio.sleep_forever()

    runner = BackgroundRunner(drain_timeout=None)
    with caplog.at_level(logging.WARNING, logger="asignal"), anyio.CancelScope() as scope:
        async with runner:
            runner.schedule_nowait(hangs, name="app.hangs")
            # Shutdown itself is cancelled: the drain cannot wait for anything.
            scope.cancel()
    assert scope.cancelled_caught
    assert runner.stats.cancelled == 1
    assert runner.pending == 0
    assert any("app.hangs" in m and "cancelled" in m for m in messages(caplog))


async def test_every_call_has_exactly_one_outcome(caplog: pytest.LogCaptureFixture) -> None:
    async def hangs() -> None:
        await anyio.sleep_forever()

    async def fails() -> None:
        raise RuntimeError("x")

    async def quick() -> None:
        pass

    with caplog.at_level(logging.WARNING, logger="asignal"):
        # drain_timeout=0: whatever is pending at exit is cancelled, even calls that
        # have not taken their first step yet.
        async with BackgroundRunner(drain_timeout=0) as runner:
            for i in range(3):
                runner.schedule_nowait(hangs, name=f"app.hangs{i}")
            runner.schedule_nowait(fails, name="app.fails")
            runner.schedule_nowait(quick, name="app.quick", timeout=5)
    s = runner.stats
    assert s.scheduled == 5
    assert s.scheduled == s.completed + s.failed + s.timed_out + s.cancelled
    assert s.cancelled >= 3
    logged = messages(caplog)
    for i in range(3):
        assert any(f"app.hangs{i}" in m and "cancelled" in m for m in logged)
