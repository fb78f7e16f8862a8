"""asignal.contrib.opentelemetry: receiver metrics, read by the SDK's InMemoryMetricReader."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from asignal import NamedSignal
from asignal._receivers import describe

from .conftest import Telemetry

pytestmark = pytest.mark.anyio


def by_receiver(points: list[Any]) -> dict[str, Any]:
    return {dict(p.attributes)["asignal.receiver"]: p for p in points}


async def test_durations_failures_and_timeouts(telemetry: Telemetry) -> None:
    sig = NamedSignal("measured")

    async def quick(sender: Any) -> None:
        await anyio.sleep(0)

    async def fails(sender: Any) -> None:
        raise LookupError("gone")

    async def hangs(sender: Any) -> None:
        await anyio.sleep_forever()

    sig.connect(quick)
    sig.connect(fails)
    sig.connect(hangs, timeout=0.02)
    for _ in range(3):
        await sig.send_async(None, _errors="collect")

    durations = by_receiver(telemetry.points("asignal.receiver.duration"))
    assert set(durations) == {describe(quick), describe(fails), describe(hangs)}
    for name, point in durations.items():
        assert point.count == 3, name
        assert dict(point.attributes)["asignal.signal"] == "measured"
    # The timed-out receiver ran at least its timeout each time.
    assert durations[describe(hangs)].min >= 0.02 - 0.001

    [failure] = telemetry.points("asignal.receiver.failures")
    assert failure.value == 3
    assert dict(failure.attributes) == {
        "asignal.signal": "measured",
        "asignal.receiver": describe(fails),
        "error.type": "LookupError",
    }
    [timeout] = telemetry.points("asignal.receiver.timeouts")
    assert timeout.value == 3
    assert dict(timeout.attributes)["asignal.receiver"] == describe(hangs)


def test_sync_receivers_are_measured_too(telemetry: Telemetry) -> None:
    sig = NamedSignal("sync-measured")

    def receiver(sender: Any) -> int:
        return 1

    with sig.connected_to(receiver):
        for _ in range(5):
            sig.send(None)
    [point] = telemetry.points("asignal.receiver.duration")
    assert point.count == 5
    assert point.sum >= 0
    assert telemetry.points("asignal.receiver.failures") == []
