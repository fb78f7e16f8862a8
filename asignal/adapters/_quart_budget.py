"""The Quart adapter's per-request budget: the installed ``timeout``, shared by all the
sends of one request, kept in the context of the task that runs the request."""

from __future__ import annotations

import asyncio
import sys
from contextvars import ContextVar

from ._common import Budget

__all__ = ["RequestBudget", "current_task", "request_budget"]


class RequestBudget:
    """One request's (or websocket's) share of the installed ``timeout``: its
    :class:`Budget` (whose clock runs only inside sends), and ``owner``, the task that
    runs the request. A task started from it (a Quart background task, a user's
    ``create_task``) inherits the context variable holding this object but not the
    budget, since it holds up no response.
    """

    __slots__ = ("budget", "owner")

    def __init__(self, budget: Budget, owner: object) -> None:
        self.budget = budget
        self.owner = owner


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
