"""Bad input gets a clear error naming the receiver or option at fault, before any
receiver runs."""

from __future__ import annotations

import math
from typing import Any

import pytest

from asignal import Signal

HUGE = 10**400  # an int no float can hold


def test_a_huge_connect_timeout_is_refused_by_name() -> None:
    sig = Signal()

    async def on_event(sender: Any) -> None: ...

    with pytest.raises(ValueError, match=r"timeout of receiver .*on_event is too large"):
        sig.connect(on_event, weak=False, timeout=HUGE)
    assert not sig.receivers


@pytest.mark.anyio
@pytest.mark.parametrize("option", ["_timeout", "_receiver_timeout"])
async def test_a_huge_send_timeout_is_refused_by_name(option: str) -> None:
    sig = Signal()
    calls: list[str] = []

    async def on_event(sender: Any) -> None:
        calls.append("called")

    sig.connect(on_event, weak=False)
    with pytest.raises(ValueError, match=f"{option} is too large"):
        await sig.send_async(None, **{option: HUGE})
    assert calls == []


@pytest.mark.anyio
async def test_a_float_timeout_beyond_any_clock_is_no_limit() -> None:
    sig = Signal()

    async def on_event(sender: Any) -> str:
        return "ok"

    sig.connect(on_event, weak=False)
    assert await sig.send_async(None, _timeout=float("inf")) == [(on_event, "ok")]
    assert await sig.send_async(None, _timeout=1e308) == [(on_event, "ok")]


@pytest.mark.anyio
async def test_a_sync_wrapper_that_is_not_callable_is_refused_by_name() -> None:
    sig = Signal()
    calls: list[str] = []

    def on_event(sender: Any) -> None:
        calls.append("called")

    sig.connect(on_event, weak=False)
    with pytest.raises(TypeError, match="_sync_wrapper must be a callable"):
        await sig.send_async(None, _sync_wrapper=42)  # type: ignore[arg-type]
    assert calls == []


def test_an_async_wrapper_that_is_not_callable_is_refused_by_name() -> None:
    sig = Signal()
    calls: list[str] = []

    def on_event(sender: Any) -> None:
        calls.append("called")

    sig.connect(on_event, weak=False)
    with pytest.raises(TypeError, match="_async_wrapper must be a callable"):
        sig.send(None, _async_wrapper=42)  # type: ignore[arg-type]
    assert calls == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("_timout", "_timeout"),
        ("_error", "_errors"),
        ("_sequentail", "_sequential"),
        ("_async_wrapper", "_sync_wrapper"),
        ("_reciever_timeout", "_receiver_timeout"),
    ],
)
async def test_a_misspelt_option_is_refused_with_the_right_name(typo: str, meant: str) -> None:
    sig = Signal()
    calls: list[dict[str, Any]] = []

    async def on_event(sender: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    sig.connect(on_event, weak=False)
    with pytest.raises(TypeError, match=f"unknown option '{typo}'; did you mean '{meant}'"):
        await sig.send_async(None, **{typo: 0.01})
    assert calls == []


def test_a_misspelt_async_wrapper_is_refused_by_send() -> None:
    sig = Signal()
    sig.connect(print, weak=False)
    with pytest.raises(TypeError, match="did you mean '_async_wrapper'"):
        sig.send(None, _asyc_wrapper=print)


@pytest.mark.anyio
async def test_other_underscored_keywords_stay_payload_as_in_blinker() -> None:
    sig = Signal()

    async def on_event(sender: Any, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    sig.connect(on_event, weak=False)
    payload = {"_id": 7, "_private": "x", "_": None, "request": 1}
    assert await sig.send_async(None, **payload) == [(on_event, payload)]

    def on_sync(sender: Any, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    other = Signal()
    other.connect(on_sync, weak=False)
    # send_async's options are payload to send, as they are to blinker's send.
    assert other.send(None, _timeout=3, _id=1) == [(on_sync, {"_timeout": 3, "_id": 1})]


# --- bad input ----------------------------------------------------------------------------------


def test_non_callable_receiver_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="'not a function' is not callable"):
        Signal().connect("not a function")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan])
def test_bad_connect_timeout_is_refused(bad: float) -> None:
    def on_x(s: Any) -> None: ...

    with pytest.raises(ValueError, match="on_x"):
        Signal().connect(on_x, timeout=bad)


def test_nan_priority_is_refused() -> None:
    with pytest.raises(ValueError, match="priority"):
        Signal().connect(lambda s: None, weak=False, priority=math.nan)


def test_extra_positional_arguments_are_refused() -> None:
    sig = Signal()
    with pytest.raises(TypeError):
        sig.send(1, 2)  # type: ignore[misc]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"_timeout": -1}, ValueError),
        ({"_timeout": math.nan}, ValueError),
        ({"_receiver_timeout": -0.1}, ValueError),
        ({"_receiver_timeout": math.nan}, ValueError),
        ({"_errors": "ignore"}, ValueError),
        ({"_limit": 0}, ValueError),
        ({"_limit": -3}, ValueError),
        ({"_timeout": "5"}, TypeError),
        ({"_limit": 1.5}, TypeError),
    ],
)
async def test_bad_send_async_options_raise_before_any_receiver_runs(
    options: dict[str, Any], error: type[Exception]
) -> None:
    sig = Signal()
    ran: list[str] = []

    async def receiver(s: Any) -> None:
        ran.append("ran")

    sig.connect(receiver)
    with pytest.raises(error, match=next(iter(options))):
        await sig.send_async(**options)
    assert ran == []


@pytest.mark.anyio
async def test_send_async_refuses_extra_positional_arguments() -> None:
    with pytest.raises(TypeError):
        await Signal().send_async(1, 2)  # type: ignore[misc]
