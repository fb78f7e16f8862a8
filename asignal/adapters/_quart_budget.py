"""The Quart adapter's per-request budget: the installed ``timeout``, shared by all the
sends of one request, kept in the context of the task that runs the request."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import cast

import anyio

from ._common import Budget

__all__ = ["RequestBudget", "current_task", "request_budget"]


class RequestBudget:
    """One request's (or websocket's) share of the installed ``timeout``.

    Only the time spent inside its sends counts: the clock of the :class:`Budget` is
    paused between them, so a slow view never eats what the receivers that follow it
    were promised. ``owner`` is the task that runs the request; a task started from it
    (a Quart background task, a user's ``create_task``) inherits the context variable
    holding this object but not the budget, since it holds up no response.
    """

    __slots__ = ("budget", "clock", "depth", "owner", "paused_at")

    def __init__(self, budget: Budget, owner: object) -> None:
        self.budget = budget
        self.owner = owner
        #: The clock of ``anyio.current_time()`` (the event loop's), looked up once: the
        #: lookup through anyio costs about a microsecond a call, each send makes two.
        self.clock = _loop_clock()
        # Paused from the start: the clock runs only inside sends.
        self.paused_at = self.clock()
        # Sends in progress: a receiver that renders a template sends template_rendered
        # from inside request_finished's send, and the clock must not count twice.
        self.depth = 0

    def resume(self) -> Budget:
        """Start (or go on) counting; the budget to give the send about to start."""
        deadline = self.budget.deadline
        if self.depth == 0 and deadline is not None:
            self.budget.deadline = deadline + (self.clock() - self.paused_at)
        self.depth += 1
        return self.budget

    def pause(self) -> None:
        """A send has ended; stop counting once no send of this request is running."""
        self.depth -= 1
        if self.depth == 0:
            self.paused_at = self.clock()


#: The budget of the request the current task runs, once its app context is pushed.
request_budget: ContextVar[RequestBudget | None] = ContextVar(
    "asignal_quart_request_budget", default=None
)


def current_task() -> object:
    """The task running now: asyncio's (Quart), or trio's (Quart on trio, quart-trio)."""
    try:
        return asyncio.current_task()
    except RuntimeError:  # no asyncio loop running in this thread
        trio = sys.modules.get("trio")
        return None if trio is None else trio.lowlevel.current_task()


def _loop_clock() -> Callable[[], float]:
    """What ``anyio.current_time`` reads, without anyio's per-call backend lookup."""
    try:
        return asyncio.get_running_loop().time
    except RuntimeError:  # not asyncio: trio, the one other backend anyio runs on
        trio = sys.modules.get("trio")
        return anyio.current_time if trio is None else cast(Callable[[], float], trio.current_time)
