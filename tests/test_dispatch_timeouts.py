"""``send_async``'s timeouts, on asyncio and trio: per receiver, per send, and on the
single-receiver path."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from asignal import ErrorPolicy, Signal
from tests.dispatch_receivers import (
    DEADLOCK,
    Boom,
    Hanging,
    instant,
    quick,
)

pytestmark = pytest.mark.anyio


# --- timeouts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["_receiver_timeout", "connect"])
async def test_receiver_timeout_cancels_the_slow_receiver_and_raises(how: str) -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(quick)
    sig.connect(hanging, weak=False, timeout=0.05 if how == "connect" else None)
    options = {"_receiver_timeout": 0.05} if how == "_receiver_timeout" else {}
    with anyio.fail_after(DEADLOCK), pytest.raises(TimeoutError, match="Hanging"):
        await sig.send_async(**options)
    assert hanging.cancelled


@pytest.mark.parametrize("how", ["_receiver_timeout", "connect"])
async def test_receiver_timeout_collects_timeout_error_and_keeps_the_others(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(quick)
    sig.connect(hanging, weak=False, timeout=0.05 if how == "connect" else None)
    sig.connect(instant)
    options: dict[str, Any] = {"_receiver_timeout": 0.05} if how == "_receiver_timeout" else {}
    with anyio.fail_after(DEADLOCK):
        results = await sig.send_async(_errors="collect", **options)
    assert results[0] == (quick, "quick")
    assert results[1][0] is hanging
    assert isinstance(results[1][1], TimeoutError)
    assert results[2] == (instant, "instant")
    assert hanging.cancelled
    assert "Hanging" in caplog.text


async def test_connect_timeout_wins_over_receiver_timeout() -> None:
    sig = Signal()

    async def patient(sender: Any) -> str:
        await anyio.sleep(0.05)
        return "patient"

    sig.connect(patient, timeout=5)
    with anyio.fail_after(DEADLOCK):
        assert await sig.send_async(_receiver_timeout=0.001) == [(patient, "patient")]


@pytest.mark.parametrize("first", [True, False])
async def test_send_timeout_bounds_the_whole_send(first: bool) -> None:
    sig = Signal()
    hanging = Hanging()
    if first:
        sig.connect(hanging, weak=False)
    sig.connect(quick)
    if not first:
        sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK), pytest.raises(TimeoutError, match=r"0\.05 s"):
        await sig.send_async(_timeout=0.05)
    assert hanging.cancelled


@pytest.mark.parametrize("first", [True, False])
async def test_send_timeout_collects(first: bool, caplog: pytest.LogCaptureFixture) -> None:
    sig = Signal()
    hanging = Hanging()
    if first:
        sig.connect(hanging, weak=False)
    sig.connect(quick)
    sig.connect(instant)
    if not first:
        sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK):
        results = await sig.send_async(_timeout=0.05, _errors="collect")
    values = {receiver: value for receiver, value in results}
    assert [receiver for receiver, _ in results] == (
        [hanging, quick, instant] if first else [quick, instant, hanging]
    )
    assert values[quick] == "quick"
    assert values[instant] == "instant"
    assert isinstance(values[hanging], TimeoutError)
    assert hanging.cancelled
    assert "Hanging" in caplog.text


async def test_send_timeout_cuts_off_later_priority_tiers(caplog: pytest.LogCaptureFixture) -> None:
    sig = Signal()
    hanging = Hanging()
    later: list[str] = []

    async def low(sender: Any) -> None:
        later.append("ran")

    sig.connect(hanging, weak=False, priority=1)
    sig.connect(low)
    with anyio.fail_after(DEADLOCK):
        results = await sig.send_async(_timeout=0.05, _errors="collect")
    assert [r for r, _ in results] == [hanging, low]
    assert all(isinstance(value, TimeoutError) for _, value in results)
    assert later == []


async def test_send_timeout_with_per_receiver_timeouts_collects() -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(hanging, weak=False, timeout=60)
    sig.connect(quick)
    with anyio.fail_after(DEADLOCK):
        results = await sig.send_async(_timeout=0.05, _errors="collect")
    assert isinstance(results[0][1], TimeoutError)
    assert results[1] == (quick, "quick")


async def test_receivers_that_finish_in_time_are_not_timed_out() -> None:
    sig = Signal()
    sig.connect(quick)
    sig.connect(instant)
    with anyio.fail_after(DEADLOCK):
        assert await sig.send_async(_timeout=5, _receiver_timeout=5) == [
            (quick, "quick"),
            (instant, "instant"),
        ]


# --- one coroutine receiver (its own path: no driver, no group) --------------------------------


async def test_single_receiver_timeout_raises_and_cancels_it() -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK), pytest.raises(TimeoutError, match=r"timed out after"):
        await sig.send_async(_timeout=0.05)
    assert hanging.cancelled


async def test_single_receiver_timeout_collects() -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK):
        [(receiver, value)] = await sig.send_async(_timeout=0.05, _errors="collect")
    assert receiver is hanging
    assert isinstance(value, TimeoutError)
    assert hanging.cancelled


async def test_single_receivers_own_timeout_error_is_not_the_sends() -> None:
    sig = Signal()
    own = TimeoutError("the receiver's own")

    async def gives_up(sender: Any) -> None:
        await anyio.lowlevel.checkpoint()
        raise own

    sig.connect(gives_up)
    with pytest.raises(TimeoutError) as caught:
        await sig.send_async(_timeout=30)
    assert caught.value is own
    assert await sig.send_async(_timeout=30, _errors="collect") == [(gives_up, own)]


@pytest.mark.parametrize("suspends", [True, False])
async def test_single_receiver_errors(suspends: bool) -> None:
    sig = Signal()
    error = Boom("single")

    async def failing(sender: Any, **kwargs: Any) -> None:
        if suspends:
            await anyio.lowlevel.checkpoint()
        raise error

    sig.connect(failing)
    with pytest.raises(Boom) as caught:
        await sig.send_async(x=1)
    assert caught.value is error
    assert await sig.send_async(_errors="collect", x=1) == [(failing, error)]


async def test_single_receiver_is_cancelled_with_its_sender() -> None:
    sig = Signal()
    hanging = Hanging()
    sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sig.send_async)
            await hanging.started.wait()
            tg.cancel_scope.cancel()
    assert hanging.cancelled


# --- a deadline already past: _timeout=0, an adapter's spent budget ------------------------


async def at_once(sender: Any, **kwargs: Any) -> str:
    return "at once"


@pytest.mark.parametrize("errors", ["collect", "raise"])
async def test_timeout_zero_runs_each_receiver_until_its_first_checkpoint(
    errors: ErrorPolicy,
) -> None:
    # As the body of anyio's and trio's fail_after(0): code runs until it checkpoints,
    # and is cancelled there; the same on both backends.
    sig = Signal()
    first, beside = Hanging(), Hanging()  # the second is started beside the first
    sig.connect(instant)
    sig.connect(at_once)
    sig.connect(first, weak=False)
    sig.connect(beside, weak=False)
    with anyio.fail_after(DEADLOCK):
        if errors == "raise":
            with pytest.raises(TimeoutError, match="timed out after 0 s"):
                await sig.send_async(_timeout=0)
        else:
            results = await sig.send_async(_timeout=0, _errors="collect")
            assert results[:2] == [(instant, "instant"), (at_once, "at once")]
            assert [r for r, _ in results[2:]] == [first, beside]
            assert all(isinstance(value, TimeoutError) for _, value in results[2:])
    for hanging in (first, beside):
        assert hanging.started.is_set()
        assert hanging.cancelled


@pytest.mark.parametrize("errors", ["collect", "raise"])
async def test_timeout_zero_with_a_single_receiver(errors: ErrorPolicy) -> None:
    sig = Signal()
    sig.connect(at_once)
    assert await sig.send_async(_timeout=0.0, _errors=errors) == [(at_once, "at once")]
    sig.disconnect(at_once)
    hanging = Hanging()
    sig.connect(hanging, weak=False)
    with anyio.fail_after(DEADLOCK):
        if errors == "raise":
            with pytest.raises(TimeoutError):
                await sig.send_async(_timeout=0.0)
        else:
            [(receiver, value)] = await sig.send_async(_timeout=0.0, _errors="collect")
            assert receiver is hanging
            assert isinstance(value, TimeoutError)
    assert hanging.started.is_set()
    assert hanging.cancelled


async def test_timeout_zero_runs_the_first_tier_and_expires_the_later_ones() -> None:
    # The send checks its deadline between tiers: a later tier that it passed before
    # the tier started is not started.
    sig = Signal()
    later: list[str] = []

    async def low(sender: Any) -> None:
        later.append("ran")

    sig.connect(at_once, priority=1)
    sig.connect(instant, priority=1)
    sig.connect(low)
    results = await sig.send_async(_timeout=0, _errors="collect")
    assert results[:2] == [(at_once, "at once"), (instant, "instant")]
    assert results[2][0] is low
    assert isinstance(results[2][1], TimeoutError)
    assert later == []
