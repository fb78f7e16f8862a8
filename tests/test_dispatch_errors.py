"""``send_async``'s error policies and cancellation, on asyncio and trio."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from asignal import Signal
from tests.dispatch_receivers import (
    DEADLOCK,
    Boom,
    Hanging,
    instant,
    quick,
)

pytestmark = pytest.mark.anyio


# --- errors ---------------------------------------------------------------------------------------


async def test_one_failure_cancels_the_others_and_is_raised_as_itself() -> None:
    sig = Signal()
    hanging = Hanging()
    error = Boom("receiver failed")

    async def failing(sender: Any) -> None:
        await hanging.started.wait()
        raise error

    sig.connect(hanging, weak=False)
    sig.connect(failing)
    with anyio.fail_after(DEADLOCK), pytest.raises(Boom) as caught:
        await sig.send_async()
    assert caught.value is error
    assert hanging.cancelled


async def test_failure_in_inline_phase_is_raised_as_itself_and_stops_the_rest() -> None:
    sig = Signal()
    ran: list[str] = []

    async def failing(sender: Any) -> None:
        raise Boom("first")

    async def later(sender: Any) -> None:
        ran.append("later")

    sig.connect(failing)
    sig.connect(later)
    with pytest.raises(Boom, match="first"):
        await sig.send_async()
    assert ran == []


async def test_sync_receiver_failure_is_raised_as_itself() -> None:
    sig = Signal()
    hanging = Hanging()

    def failing(sender: Any) -> None:
        raise Boom("sync")

    sig.connect(hanging, weak=False)
    sig.connect(failing)
    with anyio.fail_after(DEADLOCK), pytest.raises(Boom, match="sync"):
        await sig.send_async()
    assert hanging.cancelled


@pytest.mark.parametrize("options", [{}, {"_limit": 5}, {"_receiver_timeout": 30}])
async def test_several_failures_at_once_form_an_exception_group_in_dispatch_order(
    options: dict[str, Any],
) -> None:
    sig = Signal()
    all_started = anyio.Event()
    started = 0

    def make(i: int) -> Callable[..., Awaitable[None]]:
        async def failing(sender: Any) -> None:
            nonlocal started
            started += 1
            if started < 2:
                await all_started.wait()
            else:
                all_started.set()
            # No checkpoint between the barrier and the raise: both fail in one round,
            # the second-connected one first.
            raise Boom(f"failure {i}")

        return failing

    first, second = make(0), make(1)
    sig.connect(first)
    sig.connect(second)
    with anyio.fail_after(DEADLOCK), pytest.raises(ExceptionGroup) as caught:
        await sig.send_async(**options)
    assert [str(e) for e in caught.value.exceptions] == ["failure 0", "failure 1"]


async def test_collect_runs_everything_and_logs_with_the_qualified_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sig = Signal()
    error = Boom("collected")

    async def audit_failure(sender: Any) -> None:
        await anyio.lowlevel.checkpoint()
        raise error

    def sync_failure(sender: Any) -> None:
        raise KeyError("sync")

    sig.connect(audit_failure)
    sig.connect(quick)
    sig.connect(sync_failure)
    sig.connect(instant)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        results = await sig.send_async(_errors="collect")
    assert results[0] == (audit_failure, error)
    assert results[1] == (quick, "quick")
    assert isinstance(results[2][1], KeyError)
    assert results[3] == (instant, "instant")
    names = [record.getMessage() for record in caplog.records if record.name == "asignal"]
    assert any(
        "test_dispatch_errors.test_collect_runs_everything_and_logs_with_the_qualified_name"
        ".<locals>.audit_failure" in n
        for n in names
    )
    assert any("sync_failure" in n for n in names)
    assert all(r.exc_info for r in caplog.records if r.name == "asignal")


async def test_collect_never_swallows_base_exceptions() -> None:
    sig = Signal()

    class Fatal(BaseException):
        pass

    async def fatal(sender: Any) -> None:
        raise Fatal

    sig.connect(fatal)
    with pytest.raises(Fatal):
        await sig.send_async(_errors="collect")


# --- cancellation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"_timeout": 30}, {"_errors": "collect"}, {"_limit": 2}, {"_sequential": True}],
)
async def test_cancelling_the_sender_cancels_every_receiver(options: dict[str, Any]) -> None:
    sig = Signal()
    receivers = [Hanging() for _ in range(3)]
    for receiver in receivers:
        sig.connect(receiver, weak=False)
    returned = False

    async def sender() -> None:
        nonlocal returned
        await sig.send_async(**options)
        returned = True

    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            await receivers[0].started.wait()
            if not options.get("_sequential"):
                for receiver in receivers[1:2]:
                    await receiver.started.wait()
            tg.cancel_scope.cancel()
    assert not returned
    started = [r for r in receivers if r.started.is_set()]
    assert started
    assert all(r.cancelled for r in started)
