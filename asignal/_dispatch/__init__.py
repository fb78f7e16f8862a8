"""The concurrent engine behind ``send_async``: ordering, timeouts, error policy, limits.

Each file reads on its own:

- ``_common.py``: the plan (receivers resolved per sender), option checks, how failures
  are logged, collected and raised;
- ``_inline.py``: the inline fast path, receivers awaited in the sender's task until one
  suspends (``Signal.send_async`` runs it itself, for one tier);
- ``_tier.py``: the hand-off of a tier's remaining receivers once one has suspended,
  backend-neutral;
- ``_asyncio.py`` / ``_trio.py``: each backend's part of the hand-off (a task group
  entered at the hand-off; a nursery opened before the tier starts);
- ``_plain.py``: ``_sequential``, ``_limit``, per-receiver timeouts and
  ``_sync_wrapper``, on anyio;
- ``_sync.py``: ``send()`` with coroutine receivers (``_async_wrapper``) or background
  ones;
- ``_background_send.py``: background receivers scheduled on the current runner, and
  ``Signal.send_background``.

Nothing here imports asyncio, trio, anyio or logging at import time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._receivers import check_timeout
from . import _asyncio, _background_send, _trio
from ._asyncio import resume, resume_single
from ._common import (
    ErrorPolicy,
    Plan,
    Result,
    check_errors,
    check_limit,
    collected,
    collectible,
    get_logger,
    label,
    on_trio,
    own_cancellation,
)
from ._inline import inline
from ._plain import Plain
from ._sync import send_wrapped
from ._tier import Send
from ._trio import single_on_trio

if TYPE_CHECKING:
    from .._signal import Signal

__all__ = [
    "ErrorPolicy",
    "Plan",
    "check_errors",
    "check_limit",
    "check_timeout",
    "collectible",
    "collected",
    "dispatch",
    "get_logger",
    "inline",
    "label",
    "on_trio",
    "own_cancellation",
    "resume",
    "resume_single",
    "send_wrapped",
    "single_on_trio",
]


def __getattr__(name: str) -> Any:
    # ``logger`` was a module attribute; it stays one without importing logging early.
    if name == "logger":
        return get_logger()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def dispatch(
    signal: Signal,
    plan: Plan,
    sender: Any,
    kwargs: dict[str, Any],
    *,
    sync_wrapper: Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]] | None,
    sequential: bool,
    send_timeout: float | None,
    receiver_timeout: float | None,
    limit: int | None,
    collect: bool,
) -> list[Result]:
    """Run ``plan``'s receivers for one ``send_async`` that ``Signal.send_async`` did not
    finish on its fast paths; see :meth:`Signal.send_async`."""
    foreground = plan.foreground
    if foreground is not None:
        # Scheduled first, before any receiver runs: no runner raises before any does.
        slots = await _background_send.schedule_async(signal, plan, sender, kwargs)
        results = (
            await dispatch(
                signal,
                foreground,
                sender,
                kwargs,
                sync_wrapper=sync_wrapper,
                sequential=sequential,
                send_timeout=send_timeout,
                receiver_timeout=receiver_timeout,
                limit=limit,
                collect=collect,
            )
            if foreground.entries
            else []
        )
        return _background_send.merge(plan, results, slots)
    if (
        sequential
        or limit is not None
        or receiver_timeout is not None
        or plan.timed
        or (sync_wrapper is not None and plan.has_sync)
    ):
        plain = Plain(
            signal,
            sender,
            kwargs,
            collect=collect,
            sequential=sequential,
            limit=limit,
            receiver_timeout=receiver_timeout,
            sync_wrapper=sync_wrapper,
        )
        return await plain.run(plan, send_timeout)
    send = Send(signal, sender, kwargs, collect)
    if not plan.has_async:
        return await send.run_inline(plan)
    if on_trio():
        return await _trio.run(send, plan, send_timeout)
    return await _asyncio.run(send, plan, send_timeout)
