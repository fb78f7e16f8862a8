"""The background receivers of one send run as one batch (asignal/_background_run.py):
one task for the send, plus one per receiver that suspends; each receiver keeps its own
record, slot, timeout, context copy, count and log line. On asyncio and trio.

Events order everything; tiny timeouts only bound receivers that hang on purpose, and
``fail_after`` only turns a regression into a failure instead of a hang.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import anyio
import pytest

from asignal import BackgroundRunner, Scheduled, Signal, signal
from asignal.testing import settle

pytestmark = pytest.mark.anyio

tag: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="-")


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "asignal"]


async def test_receivers_that_never_suspend_share_one_task_not_the_senders() -> None:
    sig = Signal()
    tasks: list[int] = []

    def make(n: int) -> Any:
        async def quick(sender: Any) -> None:
            tasks.append(anyio.get_current_task().id)

        quick.__qualname__ = f"quick{n}"
        return quick

    receivers = [make(n) for n in range(3)]
    for receiver in receivers:
        sig.connect(receiver, background=True)
    async with BackgroundRunner() as runner:
        results = await sig.send_async(None)
        assert [r for r, _ in results] == receivers
        records = [value for _, value in results]
        assert all(isinstance(v, Scheduled) for v in records)
        assert len({v.name for v in records}) == 3
        assert runner.pending == 3  # a slot each
        await settle(runner)
    assert len(tasks) == 3
    assert len(set(tasks)) == 1
    assert tasks[0] != anyio.get_current_task().id
    assert runner.stats.as_dict() == {
        "scheduled": 3,
        "completed": 3,
        "failed": 0,
        "timed_out": 0,
        "cancelled": 0,
        "dropped": 0,
    }


@pytest.mark.parametrize("how", ["send", "send_async"])
async def test_receivers_of_one_send_run_concurrently_each_in_its_own_copy(how: str) -> None:
    # The first receiver waits for the last: run one after another they would hang.
    sig = Signal()
    last_ran = anyio.Event()
    seen: dict[str, str] = {}

    async def first(sender: Any) -> None:
        tag.set("first's")
        await last_ran.wait()
        seen["first"] = tag.get()

    async def middle(sender: Any) -> None:
        seen["middle"] = tag.get()
        tag.set("middle's")

    async def last(sender: Any) -> None:
        seen["last"] = tag.get()
        last_ran.set()

    for receiver in (first, middle, last):
        sig.connect(receiver, background=True)
    token = tag.set("sender's")
    try:
        with anyio.fail_after(5):
            async with BackgroundRunner() as runner:
                if how == "send":
                    sig.send(None)
                else:
                    await sig.send_async(None)
                tag.set("changed after the send")
                await settle(runner)
    finally:
        tag.reset(token)
    assert seen == {"first": "first's", "middle": "sender's", "last": "sender's"}
    assert runner.stats.completed == 3


async def test_each_receiver_of_a_batch_keeps_its_own_timeout_failure_and_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sig = signal("bg-batch-outcomes")
    never = anyio.Event()
    ran: list[str] = []

    async def broken(sender: Any) -> None:
        raise ValueError("boom")

    async def hangs(sender: Any) -> None:
        await never.wait()

    async def fine(sender: Any) -> None:
        await anyio.lowlevel.checkpoint()
        ran.append("fine")

    caplog.set_level(logging.WARNING, logger="asignal")
    with (
        sig.connected_to(broken, background=True),
        sig.connected_to(hangs, background=True, timeout=0.01),
        sig.connected_to(fine, background=True),
    ):
        async with BackgroundRunner() as runner:
            await sig.send_async(None)
            await settle(runner)
    assert ran == ["fine"]
    stats = runner.stats
    assert (stats.scheduled, stats.completed, stats.failed, stats.timed_out) == (3, 1, 1, 1)
    logged = messages(caplog)
    assert any("broken" in m and "raised" in m and "'bg-batch-outcomes'" in m for m in logged)
    assert any("hangs" in m and "timed out after 0.01 s" in m for m in logged)


async def test_the_drain_cancels_and_logs_every_receiver_of_a_batch_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sig = signal("bg-batch-drain")
    never = anyio.Event()

    def make(n: int) -> Any:
        async def stuck(sender: Any) -> None:
            await never.wait()

        stuck.__qualname__ = f"stuck{n}"
        return stuck

    receivers = [make(n) for n in range(3)]
    caplog.set_level(logging.WARNING, logger="asignal")
    for receiver in receivers:
        sig.connect(receiver, background=True)
    try:
        async with BackgroundRunner(drain_timeout=0) as runner:
            # Exit before any of them took a step: all three wait in one batch's task.
            sig.send(None)
        assert runner.stats.cancelled == 3
        assert runner.stats.scheduled == 3
        logged = [m for m in messages(caplog) if "cancelled" in m]
        assert [n for n in range(3) if any(f"stuck{n} " in m for m in logged)] == [0, 1, 2]
    finally:
        for receiver in receivers:
            sig.disconnect(receiver)


async def test_a_batch_short_of_room_schedules_what_fits_one_by_one() -> None:
    sig = Signal()
    release = anyio.Event()
    ran: list[str] = []

    def make(n: int) -> Any:
        async def work(sender: Any) -> None:
            await release.wait()
            ran.append(f"{sender}{n}")

        return work

    receivers = [make(n) for n in range(3)]
    for receiver in receivers:
        sig.connect(receiver, background=True)
    async with BackgroundRunner(max_pending=2) as runner:
        values = [value for _, value in sig.send("a")]
        assert [v is not None for v in values] == [True, True, False]
        assert runner.stats.dropped == 1
        release.set()
        await settle(runner)
    assert sorted(ran) == ["a0", "a1"]
    assert runner.stats.completed == 2


async def test_the_drain_takes_what_its_own_calls_schedule_and_refuses_the_rest() -> None:
    # send_background's send runs during the drain and schedules the signal's background
    # receiver: that is work the drain waits for. A caller outside the runner's calls is
    # refused as soon as the drain has begun.
    sig = signal("bg-drain-nested")
    ran: list[str] = []

    async def on_send(sender: Any) -> None:
        await anyio.lowlevel.checkpoint()
        ran.append(sender)

    async def outside() -> None:
        ran.append("outside")

    refused: list[Scheduled | None] = []
    with sig.connected_to(on_send, background=True):
        async with (
            anyio.create_task_group() as tg,
            BackgroundRunner(drain_timeout=None) as runner,
        ):
            sig.send_background("nested")

            async def late() -> None:
                await anyio.wait_all_tasks_blocked()
                refused.append(runner.schedule_nowait(outside, name="outside"))

            tg.start_soon(late)
    assert ran == ["nested"]
    assert refused == [None]
    stats = runner.stats
    assert (stats.scheduled, stats.completed, stats.dropped) == (2, 2, 1)


async def test_calls_scheduled_during_the_drain_are_cancelled_at_its_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sig = signal("bg-drain-deadline")
    never = anyio.Event()

    async def stuck(sender: Any) -> None:
        await never.wait()

    caplog.set_level(logging.WARNING, logger="asignal")
    with sig.connected_to(stuck, background=True):
        async with BackgroundRunner(drain_timeout=0.01) as runner:
            sig.send_background(None)
    assert runner.stats.cancelled == 1
    assert runner.stats.completed == 1  # the send itself
    assert any("stuck" in m and "cancelled" in m for m in messages(caplog))
