"""trio: receivers run in a real nursery on the sender's task, never as system tasks.

These run ``trio.run`` themselves (not anyio's plugin): Ctrl-C handling is trio.run's,
installed on the main thread.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from asignal import Signal

#: Iterations of the busy receiver; Ctrl-C comes at iteration K.
BOUND = 2_000_000
K = 1_000


@pytest.fixture
def default_sigint() -> Iterator[None]:
    # trio.run turns SIGINT into KeyboardInterrupt only while Python's default handler
    # is installed; an earlier test's server may have left its own.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("default_sigint")
@pytest.mark.parametrize("busy_first", [True, False], ids=["on-senders-task", "beside"])
def test_ctrl_c_reaches_a_busy_receiver(busy_first: bool) -> None:
    # A receiver that never reaches a checkpoint can only be interrupted where trio's
    # SIGINT handler raises KeyboardInterrupt directly: in code that is not
    # KI-protected. System tasks are; a nursery's children are not.
    sig = Signal()
    reached = 0

    async def suspending(sender: Any) -> None:
        await trio.sleep(0)  # makes the send concurrent: the next receiver is a child

    async def busy(sender: Any) -> None:
        nonlocal reached
        for n in range(BOUND):
            reached = n
            if n == K:
                signal.raise_signal(signal.SIGINT)

    for receiver in (busy, suspending) if busy_first else (suspending, busy):
        sig.connect(receiver, weak=False)

    async def main() -> None:
        await sig.send_async(None)

    with pytest.raises(KeyboardInterrupt):
        trio.run(main)
    # Python runs the signal handler within a few bytecodes of raise_signal.
    assert K <= reached < K + 100


@pytest.mark.parametrize("errors", ["raise", "collect"])
@pytest.mark.parametrize("timeout", [None, 5.0])
def test_receivers_belong_to_the_senders_task_tree(errors: str, timeout: float | None) -> None:
    sig = Signal()
    # Each receiver's ancestry: its task, then each parent nursery's task, up to the
    # sender's task (or to trio's <init> task, the parent of system tasks).
    chains: dict[str, list[Any]] = {}

    def make(name: str, suspend: bool) -> Any:
        async def receiver(sender: Any) -> str:
            if suspend:
                await trio.sleep(0)
            task = trio.lowlevel.current_task()
            chain = [task]
            while task is not sender and task.parent_nursery is not None:
                task = task.parent_nursery.parent_task
                chain.append(task)
            chains[name] = chain
            return name

        return receiver

    for name, suspend in (("first", True), ("second", False), ("third", True)):
        sig.connect(make(name, suspend), weak=False)

    async def main() -> tuple[Any, list[Any]]:
        me = trio.lowlevel.current_task()
        results = await sig.send_async(me, _errors=errors, _timeout=timeout)
        return me, [value for _, value in results]

    sender, values = trio.run(main)
    assert values == ["first", "second", "third"]
    # The first receiver runs on the sender's task; the others are children of the
    # nursery the sender's task opened.
    assert chains["first"] == [sender]
    for name in ("second", "third"):
        assert chains[name][-1] is sender, [t.name for t in chains[name]]
        assert len(chains[name]) == 2, [t.name for t in chains[name]]


def test_a_child_receiver_is_not_ki_protected() -> None:
    sig = Signal()
    protected: list[bool] = []

    async def suspending(sender: Any) -> None:
        await trio.sleep(0)

    async def child(sender: Any) -> None:
        protected.append(trio.lowlevel.currently_ki_protected())

    sig.connect(suspending, weak=False)
    sig.connect(child, weak=False)

    async def main() -> None:
        await sig.send_async(None)

    trio.run(main)
    assert protected == [False]
