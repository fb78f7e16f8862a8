"""``send()`` when coroutine receivers are connected: blinker's ``_async_wrapper`` rule;
and when background receivers are: scheduled, without waiting for room.

The all-sync case never comes here: ``Signal.send`` calls its receivers itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._receivers import describe
from ._background_send import merge, schedule_nowait
from ._common import Plan, Result, label

if TYPE_CHECKING:
    from .._signal import Signal

__all__ = ["send_wrapped"]


def send_wrapped(
    signal: Signal,
    plan: Plan,
    sender: Any,
    wrapper: Callable[[Callable[..., Awaitable[Any]]], Callable[..., Any]] | None,
    kwargs: dict[str, Any],
) -> list[Result]:
    """Call ``plan``'s receivers one after another, each coroutine receiver through
    ``wrapper``. Without a wrapper a coroutine receiver is a ``RuntimeError`` naming it,
    raised before any receiver is called (as blinker's). Background receivers are
    scheduled on the current runner (none: ``RuntimeError``, before any receiver runs);
    a coroutine one needs no wrapper."""
    entries = plan.entries if plan.foreground is None else plan.foreground.entries
    live = [(get(), is_async) for get, is_async, _ in entries]
    if wrapper is None:
        for receiver, is_async in live:
            if is_async and receiver is not None:
                raise RuntimeError(
                    f"cannot send signal {label(signal)} to coroutine receiver "
                    f"{describe(receiver)} with send(); use 'await send_async()' or "
                    "pass _async_wrapper"
                )
    slots = schedule_nowait(signal, plan, sender, kwargs) if plan.background else None
    results = []
    for receiver, is_async in live:
        if receiver is None:
            continue
        fn = wrapper(receiver) if is_async and wrapper is not None else receiver
        results.append((receiver, fn(sender, **kwargs)))
    return results if slots is None else merge(plan, results, slots)
