"""BackgroundRunner and where a call runs from (asyncio, trio): the caller's context
variables at schedule time, scheduling from a worker thread, and which runner
``current_runner`` and ``require_runner`` find.

No test sleeps to synchronise: events order everything. No test asserts a duration.
"""

from __future__ import annotations

import contextvars

import anyio
import pytest

from asignal import BackgroundRunner, Scheduled
from asignal._background import current_runner, require_runner

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


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
