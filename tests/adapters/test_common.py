"""The adapters' shared part: option validation and the per-request budget."""

from __future__ import annotations

import logging
import math
from typing import Any

import anyio
import pytest

from asignal import NamedSignal, Signal
from asignal.adapters._common import UNBOUNDED, Budget, Emitter

pytestmark = pytest.mark.anyio


def make(**options: Any) -> Emitter:
    options.setdefault("timeout", None)
    options.setdefault("errors", "collect")
    return Emitter(object(), **options)


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("timeout", -1, ValueError),
        ("timeout", math.nan, ValueError),
        ("timeout", "1", TypeError),
        ("timeout", True, TypeError),
        ("errors", "ignore", ValueError),
        ("max_pending", 0, ValueError),
        ("max_pending", 1.5, TypeError),
        ("max_pending", True, TypeError),
        ("drain_timeout", None, TypeError),
        ("drain_timeout", -0.5, ValueError),
        ("background_timeout", -2, ValueError),
        ("background_timeout", [], TypeError),
    ],
)
def test_bad_options_are_refused_naming_the_option(option: str, value: Any, error: type) -> None:
    with pytest.raises(error, match=option):
        make(**{option: value})


def test_huge_and_infinite_durations_mean_no_bound() -> None:
    emitter = make(timeout=10**400, drain_timeout=10**400, background_timeout=math.inf)
    assert emitter.timeout is None
    assert emitter.drain_timeout == math.inf
    assert emitter.background_timeout is None
    assert make(timeout=2).timeout == 2.0


def test_runner_options_follow_the_install_options() -> None:
    emitter = make(max_pending=5, drain_timeout=1, background_timeout=0.5)
    assert emitter.runner_options == {
        "max_pending": 5,
        "drain_timeout": 1.0,
        "default_timeout": 0.5,
    }
    assert emitter.options["max_pending"] == 5
    assert make().runner_options == {
        "max_pending": 1000,
        "drain_timeout": 10.0,
        "default_timeout": None,
    }


async def test_without_a_timeout_the_budget_is_the_shared_unbounded_one() -> None:
    emitter = make()
    assert emitter.budget() is UNBOUNDED
    assert UNBOUNDED.remaining() is None


async def test_the_budget_runs_only_inside_its_sends() -> None:
    budget = make(timeout=60).budget()
    assert budget.remaining() == 60
    # Outside sends (a slow view) the clock is paused: nothing is spent.
    await anyio.sleep(0.01)
    assert budget.remaining() == 60
    first = budget.start()
    assert first is not None
    assert 0 < first <= 60
    inner = budget.start()  # a send made from inside the first: counted once
    await anyio.sleep(0.01)
    budget.stop()
    assert budget.depth == 1
    budget.stop()
    left = budget.remaining()
    assert left is not None
    assert left < 60
    assert inner is not None
    assert left <= inner
    assert Budget(0).remaining() == 0.0


async def test_a_slow_view_leaves_the_receivers_their_budget() -> None:
    sig = Signal()
    emitter = make(timeout=60)

    async def quick(sender: object, **kwargs: object) -> str:
        await anyio.lowlevel.checkpoint()
        return "done"

    sig.connect(quick, weak=False)
    budget = Budget(0.001)
    await anyio.sleep(0.01)  # the view takes ten times the budget
    assert await emitter.send(sig, budget) == [(quick, "done")]


async def test_each_send_gets_what_the_budget_has_left() -> None:
    sig = Signal()
    emitter = make(timeout=0.05)
    seen: list[str] = []
    release = anyio.Event()

    async def hangs(sender: object, **kwargs: object) -> None:
        seen.append(kwargs["name"])  # type: ignore[arg-type]
        await release.wait()

    sig.connect(hangs, weak=False)
    budget = emitter.budget()
    values = []
    for name in ("first", "second", "third"):
        [(_, value)] = await emitter.send(sig, budget, name=name)
        values.append(value)
    # The first send spent the whole budget; the later ones get none of it (whether a
    # receiver starts at all with nothing left is the backend's business).
    assert seen[0] == "first"
    assert all(isinstance(value, TimeoutError) for value in values)
    assert budget.remaining() == 0.0


async def test_a_send_without_a_budget_gets_the_whole_timeout() -> None:
    sig = Signal()
    emitter = make(timeout=60)
    spent = Budget(0)

    async def quick(sender: object, **kwargs: object) -> str:
        await anyio.lowlevel.checkpoint()
        return "done"

    sig.connect(quick, weak=False)
    assert await emitter.send(sig) == [(quick, "done")]
    [(_, value)] = await emitter.send(sig, spent)
    assert isinstance(value, TimeoutError)


async def test_each_send_of_a_budget_logs_its_own_cut_receivers_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The sends of one budget one after the other, and one made from inside a receiver
    # of another (as a template rendered by a receiver is): each send's record names its
    # own cut receivers, once.
    outer, inner = NamedSignal("outer"), NamedSignal("inner")
    emitter = make(timeout=0.05)
    budget = emitter.budget()

    async def quick(sender: object, **kwargs: object) -> None:
        await anyio.lowlevel.checkpoint()

    async def sends_inner(sender: object, **kwargs: object) -> None:
        await emitter.send(inner, budget)
        await anyio.sleep_forever()

    outer.connect(sends_inner, weak=False)
    inner.connect(quick, weak=False)
    with caplog.at_level(logging.ERROR, logger="asignal"):
        await emitter.send(outer, budget)  # spends the budget
        await emitter.send(outer, budget)
        await emitter.send(inner, budget)

    messages = [record.getMessage() for record in caplog.records if record.name == "asignal"]
    where = "tests.adapters.test_common.test_each_send_of_a_budget_logs_its_own_cut_"
    where += "receivers_once.<locals>"
    assert [m.split(" cut off: ")[0] for m in messages] == [
        f"receiver {where}.sends_inner of signal 'outer'",
        f"receiver {where}.sends_inner of signal 'outer'",
        f"receiver {where}.quick of signal 'inner'",
    ]
    assert "within the 0.05 s left" in messages[0]
    assert all("being spent before this send" in m for m in messages[1:])
