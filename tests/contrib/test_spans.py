"""asignal.contrib.opentelemetry: the spans of sends and receivers, on asyncio and trio,
recorded by the real SDK's in-memory exporter."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from asignal import NamedSignal, Signal
from asignal._receivers import describe

from .conftest import Telemetry

pytestmark = pytest.mark.anyio


def receiver_span(t: Telemetry, receiver: Any) -> ReadableSpan:
    return t.span(f"asignal.receiver {describe(receiver)}")


def events(span: ReadableSpan) -> list[str]:
    return [e.name for e in span.events]


async def test_send_async_span_is_a_child_of_the_senders_span(telemetry: Telemetry) -> None:
    sig = NamedSignal("order-placed")
    tracer = telemetry.tracer_provider.get_tracer("test")

    async def on_order(sender: Any, **kwargs: Any) -> str:
        with tracer.start_as_current_span("inside"):
            await anyio.sleep(0)
        return "ok"

    with sig.connected_to(on_order), tracer.start_as_current_span("request"):
        result = await sig.send_async(42, item="book", _timeout=5)

    assert result == [(on_order, "ok")]
    request = telemetry.span("request")
    send = telemetry.span("asignal.send order-placed")
    assert send.parent is not None
    assert request.context is not None
    assert send.parent.span_id == request.context.span_id
    assert dict(send.attributes or {}) == {
        "asignal.signal": "order-placed",
        "asignal.sender_type": "int",
        "asignal.receiver_count": 1,
        "asignal.mode": "concurrent",
        "asignal.errors": "raise",
        "asignal.timeout": 5.0,
    }
    assert send.status.status_code is StatusCode.UNSET
    receiver = receiver_span(telemetry, on_order)
    assert telemetry.children(send) == [receiver]
    assert dict(receiver.attributes or {}) == {
        "asignal.signal": "order-placed",
        "asignal.receiver": describe(on_order),
    }
    # The receiver's span is current inside it: what it starts nests under it.
    assert telemetry.children(receiver) == [telemetry.span("inside")]


async def test_concurrent_receivers_are_siblings(telemetry: Telemetry) -> None:
    sig = NamedSignal("fan-out")
    both = anyio.Event()
    started: list[str] = []

    async def first(sender: Any) -> None:
        started.append("first")
        if len(started) == 2:
            both.set()
        await both.wait()

    async def second(sender: Any) -> None:
        started.append("second")
        if len(started) == 2:
            both.set()
        await both.wait()

    def third(sender: Any) -> int:
        return 3

    with sig.connected_to(first), sig.connected_to(second), sig.connected_to(third):
        with anyio.fail_after(5):
            await sig.send_async(None)

    send = telemetry.span("asignal.send fan-out")
    spans = [receiver_span(telemetry, r) for r in (first, second, third)]
    assert sorted(s.name for s in telemetry.children(send)) == sorted(s.name for s in spans)
    # first and second waited for each other: their spans overlap.
    a, b = spans[0], spans[1]
    assert a.start_time is not None
    assert b.start_time is not None
    assert a.end_time is not None
    assert b.end_time is not None
    assert a.start_time < b.end_time
    assert b.start_time < a.end_time
    assert dict(send.attributes or {})["asignal.receiver_count"] == 3


@pytest.mark.parametrize(("option", "mode"), [("_sequential", "sequential"), ("_limit", "limited")])
async def test_modes_are_recorded(telemetry: Telemetry, option: str, mode: str) -> None:
    sig = NamedSignal("modes")

    async def one(sender: Any) -> None:
        await anyio.sleep(0)

    async def two(sender: Any) -> None:
        await anyio.sleep(0)

    value: Any = True if option == "_sequential" else 1
    with sig.connected_to(one), sig.connected_to(two):
        await sig.send_async(None, **{option: value})
    send = telemetry.span("asignal.send modes")
    assert dict(send.attributes or {})["asignal.mode"] == mode
    assert len(telemetry.children(send)) == 2


async def test_collected_exception_is_recorded_with_error_status(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    sig = NamedSignal("collecting")

    async def fails(sender: Any) -> None:
        raise ValueError("bad input")

    async def works(sender: Any) -> str:
        return "fine"

    with sig.connected_to(fails), sig.connected_to(works):
        result = await sig.send_async(None, _errors="collect")

    assert isinstance(result[0][1], ValueError)
    # The engine's log line names the receiver itself, not the wrapper that reports it.
    assert f"receiver {describe(fails)} of signal 'collecting' raised ValueError" in caplog.text
    send = telemetry.span("asignal.send collecting")
    assert send.status.status_code is StatusCode.UNSET  # the send itself succeeded
    assert dict(send.attributes or {})["asignal.errors"] == "collect"
    failed = receiver_span(telemetry, fails)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "ValueError: bad input"
    assert events(failed) == ["exception"]
    assert dict(failed.events[0].attributes or {})["exception.type"] == "ValueError"
    assert dict(failed.attributes or {})["asignal.outcome"] == "error"
    assert receiver_span(telemetry, works).status.status_code is StatusCode.UNSET


async def test_raised_exception_fails_the_send_and_cancels_the_rest(
    telemetry: Telemetry,
) -> None:
    sig = NamedSignal("raising")
    waiting = anyio.Event()

    async def slow(sender: Any) -> None:
        waiting.set()
        await anyio.sleep_forever()

    async def fails(sender: Any) -> None:
        await waiting.wait()
        raise KeyError("missing")

    with sig.connected_to(slow), sig.connected_to(fails), pytest.raises(KeyError):
        with anyio.fail_after(5):
            await sig.send_async(None)

    send = telemetry.span("asignal.send raising")
    assert send.status.status_code is StatusCode.ERROR
    assert events(send) == ["exception"]
    failed = receiver_span(telemetry, fails)
    assert failed.status.status_code is StatusCode.ERROR
    assert events(failed) == ["exception"]
    cancelled = receiver_span(telemetry, slow)
    assert events(cancelled) == ["asignal.cancelled"]
    assert cancelled.status.status_code is StatusCode.UNSET
    assert dict(cancelled.attributes or {})["asignal.outcome"] == "cancelled"


@pytest.mark.parametrize("errors", ["collect", "raise"])
async def test_receiver_timeout_is_an_event_and_an_error(telemetry: Telemetry, errors: str) -> None:
    sig = NamedSignal("slow")

    async def hangs(sender: Any) -> None:
        await anyio.sleep_forever()

    sig.connect(hangs, timeout=0.05)
    if errors == "raise":
        with pytest.raises(TimeoutError):
            await sig.send_async(None, _errors="raise")
    else:
        [(receiver, value)] = await sig.send_async(None, _errors="collect")
        assert receiver is hangs
        assert isinstance(value, TimeoutError)
        assert str(value).startswith(f"receiver {describe(hangs)} of signal 'slow'")

    span = receiver_span(telemetry, hangs)
    assert events(span) == ["asignal.timeout"]
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["asignal.outcome"] == "timeout"


async def test_send_timeout_times_out_its_receivers(telemetry: Telemetry) -> None:
    sig = NamedSignal("deadline")

    async def hangs(sender: Any) -> None:
        await anyio.sleep_forever()

    async def quick(sender: Any) -> None:
        await anyio.sleep(0)

    with sig.connected_to(hangs), sig.connected_to(quick), pytest.raises(TimeoutError):
        await sig.send_async(None, _timeout=0.05)

    send = telemetry.span("asignal.send deadline")
    assert send.status.status_code is StatusCode.ERROR
    assert events(send) == ["asignal.timeout"]
    assert events(receiver_span(telemetry, hangs)) == ["asignal.timeout"]
    assert receiver_span(telemetry, quick).status.status_code is StatusCode.UNSET


async def test_cancelling_the_sender_is_recorded_as_cancellation(telemetry: Telemetry) -> None:
    sig = NamedSignal("abandoned")
    running = anyio.Event()

    async def hangs(sender: Any) -> None:
        running.set()
        await anyio.sleep_forever()

    with sig.connected_to(hangs):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sig.send_async, None)
            await running.wait()
            tg.cancel_scope.cancel()

    send = telemetry.span("asignal.send abandoned")
    assert events(send) == ["asignal.cancelled"]
    assert send.status.status_code is StatusCode.UNSET
    span = receiver_span(telemetry, hangs)
    assert events(span) == ["asignal.cancelled"]
    assert dict(span.attributes or {})["asignal.outcome"] == "cancelled"


async def test_anonymous_signal_and_sync_receivers_with_a_wrapper(telemetry: Telemetry) -> None:
    sig = Signal()
    ran: list[str] = []

    def sync_receiver(sender: Any) -> str:
        ran.append("sync")
        return "s"

    def wrapper(fn: Any) -> Any:
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return wrapped

    with sig.connected_to(sync_receiver):
        result = await sig.send_async("sender", _sync_wrapper=wrapper)
    assert result == [(sync_receiver, "s")]
    send = telemetry.span("asignal.send anonymous")
    assert dict(send.attributes or {})["asignal.sender_type"] == "str"
    assert telemetry.children(send) == [receiver_span(telemetry, sync_receiver)]


def test_sync_send(telemetry: Telemetry) -> None:
    sig = NamedSignal("sync-send")

    def first(sender: Any, **kwargs: Any) -> int:
        return int(kwargs["n"])

    def boom(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("no")

    with sig.connected_to(first):
        assert sig.send(None, n=1) == [(first, 1)]
    send = telemetry.span("asignal.send sync-send")
    assert dict(send.attributes or {})["asignal.mode"] == "sync"
    assert telemetry.children(send) == [receiver_span(telemetry, first)]

    telemetry.exporter.clear()
    with sig.connected_to(first), sig.connected_to(boom), pytest.raises(RuntimeError):
        sig.send(None, n=1)
    assert telemetry.span("asignal.send sync-send").status.status_code is StatusCode.ERROR
    assert receiver_span(telemetry, boom).status.status_code is StatusCode.ERROR


def test_sync_send_of_a_coroutine_receiver_through_async_wrapper(telemetry: Telemetry) -> None:
    sig = NamedSignal("wrapped")

    async def coro(sender: Any) -> str:
        return "from coroutine"

    def run_it(fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            return anyio.run(fn, *args)

        return call

    with sig.connected_to(coro):
        with pytest.raises(RuntimeError, match="coroutine receiver"):
            sig.send(None)
        assert telemetry.spans() == []  # refused before anything ran
        assert sig.send(None, _async_wrapper=run_it) == [(coro, "from coroutine")]
    assert receiver_span(telemetry, coro).parent is not None


def test_nothing_connected_makes_no_span(telemetry: Telemetry) -> None:
    sig = NamedSignal("quiet")
    assert sig.send(None) == []
    with sig.muted():
        sig.connect(print)
        assert sig.send(None) == []
    assert telemetry.spans() == []
