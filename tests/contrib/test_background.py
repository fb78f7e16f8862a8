"""asignal.contrib.opentelemetry: background calls (BackgroundRunner) get a trace of their
own, linked to the span that scheduled them; drops and drain cancellations are counted."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from asignal import BackgroundRunner, NamedSignal

from .conftest import Telemetry

pytestmark = pytest.mark.anyio


def events(span: ReadableSpan) -> list[str]:
    return [e.name for e in span.events]


async def test_background_call_from_a_receiver_is_linked_to_its_span(
    telemetry: Telemetry,
) -> None:
    sig = NamedSignal("order-paid")
    done = anyio.Event()
    tracer = telemetry.tracer_provider.get_tracer("test")

    async def send_receipt(order: int) -> None:
        with tracer.start_as_current_span("smtp"):
            await anyio.sleep(0)
        done.set()

    async def on_paid(sender: Any, **kwargs: Any) -> None:
        runner = kwargs["runner"]
        runner.schedule_nowait(send_receipt, sender, name="shop.send_receipt")

    async with BackgroundRunner() as runner:
        with sig.connected_to(on_paid):
            await sig.send_async(7, runner=runner)
        with anyio.fail_after(5):
            await done.wait()

    background = telemetry.span("asignal.background shop.send_receipt")
    receiver = telemetry.span(f"asignal.receiver {on_paid.__module__}.{on_paid.__qualname__}")
    assert background.parent is None  # a trace of its own
    assert background.context is not None
    assert receiver.context is not None
    assert background.context.trace_id != receiver.context.trace_id
    [link] = background.links
    assert link.context.span_id == receiver.context.span_id
    assert dict(background.attributes or {}) == {"asignal.receiver": "shop.send_receipt"}
    # The background span is current inside the call.
    assert telemetry.children(background) == [telemetry.span("smtp")]
    assert background.status.status_code is StatusCode.UNSET


async def test_failing_and_timed_out_background_calls(telemetry: Telemetry) -> None:
    async def fails() -> None:
        raise ValueError("no")

    async def hangs() -> None:
        await anyio.sleep_forever()

    async with BackgroundRunner() as runner:
        runner.schedule_nowait(fails, name="jobs.fails")
        runner.schedule_nowait(hangs, name="jobs.hangs", timeout=0.02)
        with anyio.fail_after(5):
            await runner.wait_idle()

    failed = telemetry.span("asignal.background jobs.fails")
    assert failed.status.status_code is StatusCode.ERROR
    assert events(failed) == ["exception"]
    assert failed.links == ()  # nothing was current where it was scheduled
    timed_out = telemetry.span("asignal.background jobs.hangs")
    assert events(timed_out) == ["asignal.timeout"]
    assert timed_out.status.status_code is StatusCode.ERROR
    [timeout] = telemetry.points("asignal.receiver.timeouts")
    assert dict(timeout.attributes) == {"asignal.receiver": "jobs.hangs"}


async def test_dropped_and_drain_cancelled_calls_are_counted(telemetry: Telemetry) -> None:
    started = anyio.Event()

    async def hangs() -> None:
        started.set()
        await anyio.sleep_forever()

    async with BackgroundRunner(max_pending=1, drain_timeout=0.01) as runner:
        assert runner.schedule_nowait(hangs, name="jobs.first") is not None
        assert runner.schedule_nowait(hangs, name="jobs.second") is None  # full: dropped
        with anyio.fail_after(5):
            await started.wait()

    [dropped] = telemetry.points("asignal.background.dropped")
    assert (dropped.value, dict(dropped.attributes)) == (1, {"asignal.receiver": "jobs.second"})
    [cancelled] = telemetry.points("asignal.background.cancelled")
    assert (cancelled.value, dict(cancelled.attributes)) == (1, {"asignal.receiver": "jobs.first"})
    span = telemetry.span("asignal.background jobs.first")
    assert events(span) == ["asignal.cancelled"]
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("how", ["send", "send_async"])
async def test_a_sends_background_receivers_are_traced_from_sync_and_async_sends(
    telemetry: Telemetry, how: str
) -> None:
    sig = NamedSignal("user-logged-in")
    audited = anyio.Event()

    def log_login(sender: Any, **kwargs: Any) -> str:
        return "logged"

    async def audit_login(sender: Any, **kwargs: Any) -> None:
        audited.set()

    sig.connect(log_login)
    sig.connect(audit_login, background=True)
    async with BackgroundRunner():
        if how == "send":
            results = sig.send("alice")
        else:
            results = await sig.send_async("alice")
        with anyio.fail_after(5):
            await audited.wait()
    assert [r for r, _ in results] == [log_login, audit_login]

    # The same spans from either send: the send's, each receiver's, and the background
    # call's (a send() with a background receiver used to report nothing at all).
    telemetry.span("asignal.send user-logged-in")
    local = audit_login.__qualname__.rpartition(".")[0]
    local = f"{__name__}.{local}"
    assert sorted(s.name for s in telemetry.spans()) == [
        f"asignal.background receiver {local}.audit_login of signal 'user-logged-in'",
        f"asignal.receiver {local}.audit_login",
        f"asignal.receiver {local}.log_login",
        "asignal.send user-logged-in",
    ]
