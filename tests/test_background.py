"""BackgroundRunner: bounded, supervised fire-and-forget, drained on exit (asyncio, trio).

No test sleeps to synchronise: events order everything, and
``anyio.wait_all_tasks_blocked`` shows that a task is waiting. No test asserts a duration;
the tiny ``drain_timeout`` and ``timeout`` values are bounds that make tests end quickly.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from asignal import BackgroundRunner, BackgroundStats, Scheduled
from asignal._background import current_runner, require_runner

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


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


async def test_call_sees_the_callers_context_at_schedule_time() -> None:
    seen: list[str] = []

    async def work() -> None:
        seen.append(request_id.get())
        request_id.set("changed by work")

    async with BackgroundRunner() as runner:
        token = request_id.set("req-1")
        runner.schedule_nowait(work, name="nowait")
        await runner.schedule(work, name="async")
        request_id.set("req-2")  # after scheduling: not seen
        await runner.wait_idle()
        # What the call set does not leak back into the caller.
        assert request_id.get() == "req-2"
        explicit = contextvars.copy_context()
        explicit.run(request_id.set, "explicit")
        runner.schedule_nowait(work, name="explicit", context=explicit)
        await runner.wait_idle()
        assert explicit[request_id] == "explicit"
        request_id.reset(token)
    assert seen == ["req-1", "req-1", "explicit"]


async def test_schedule_nowait_from_a_worker_thread() -> None:
    done = anyio.Event()
    seen: list[str] = []
    release = anyio.Event()

    async def work() -> None:
        seen.append(request_id.get())
        done.set()

    async def blocker() -> None:
        await release.wait()

    def sync_endpoint() -> Scheduled | None:
        # What a FastAPI sync endpoint does: it runs in an anyio worker thread.
        request_id.set("from the thread")
        runner = current_runner()
        assert runner is not None
        return runner.schedule_nowait(work, name="from_thread")

    async with BackgroundRunner(max_pending=1) as runner:
        scheduled = await anyio.to_thread.run_sync(sync_endpoint)
        assert scheduled is not None
        assert scheduled.runner is runner
        await done.wait()
        await runner.wait_idle()
        runner.schedule_nowait(blocker, name="blocker")
        dropped = await anyio.to_thread.run_sync(
            lambda: runner.schedule_nowait(work, name="too_many")
        )
        assert dropped is None
        release.set()
    assert seen == ["from the thread"]
    assert runner.stats.dropped == 1
    assert runner.stats.completed == 2


async def test_current_runner_rules() -> None:
    assert current_runner() is None
    async with BackgroundRunner() as outer:
        assert current_runner() is outer
        inner = BackgroundRunner()
        with inner.activate():
            # Activated but not entered: current here, yet it accepts nothing.
            assert current_runner() is inner
            assert inner.schedule_nowait(anyio.sleep, 0, name="x") is None
        assert current_runner() is outer
        # A task whose context never saw the runner (a server's request task) still
        # finds the runner open on its event loop, and so does a worker thread.
        assert contextvars.Context().run(current_runner) is outer
        found = await anyio.to_thread.run_sync(contextvars.Context().run, current_runner)
        assert found is outer
    assert current_runner() is None
    assert contextvars.Context().run(current_runner) is None


async def test_require_runner_names_what_needs_it() -> None:
    with pytest.raises(RuntimeError) as info:
        require_runner("background receiver app.on_login of signal 'login'")
    message = str(info.value)
    assert "background receiver app.on_login of signal 'login'" in message
    assert "async with asignal.BackgroundRunner()" in message
    assert "adapter" in message
    async with BackgroundRunner() as runner:
        assert require_runner("x") is runner


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


async def test_worker_thread_calls_can_use_anyio_and_timeouts() -> None:
    # A worker thread's context has no async library set; the call must still run anyio
    # code, including the cancel scope of its timeout.
    async def work() -> None:
        await anyio.sleep(0)
        with anyio.move_on_after(5):
            await anyio.sleep(0)

    async with BackgroundRunner(default_timeout=5) as runner:
        await anyio.to_thread.run_sync(lambda: runner.schedule_nowait(work, name="w"))
        await runner.wait_idle()
    assert runner.stats.completed == 1
    assert runner.stats.failed == 0
