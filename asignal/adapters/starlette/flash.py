"""Flask's message flashing on Starlette's session: :func:`flash` sends
``message_flashed``; :func:`get_flashed_messages` reads and clears the messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

from starlette.requests import HTTPConnection, Request

from ... import signals
from .._common import Budget, Emitter
from ._listening import CONNECTION_KEY, EMITTER_KEY, FLASHES_KEY

__all__ = ["flash", "get_flashed_messages"]


def emitter_of(request: HTTPConnection) -> tuple[Emitter | None, Budget | None]:
    """The emitter of the installed app reporting ``request`` (``None`` if none does),
    and the request's budget (``None`` outside a reported HTTP request)."""
    scope = request.scope
    emitter: Emitter | None = scope.get(EMITTER_KEY)
    connection: Any = scope.get(CONNECTION_KEY)
    return emitter, None if connection is None else connection.budget


async def flash(request: Request, message: str, category: str = "message") -> None:
    """Flash ``message`` for the next request, as Flask's ``flash``.

    It is appended to ``request.session["_flashes"]`` as a ``[category, message]`` pair
    (Flask's layout, kept JSON-serialisable for Starlette's cookie session), then
    ``message_flashed(message=, category=)`` is sent from the installed app, within the
    request's budget. Raises ``AssertionError`` (Starlette's) if ``SessionMiddleware``
    is not installed.
    """
    flashes = list(request.session.get("_flashes", ()))
    flashes.append([category, message])
    # Reassigned, not appended in place, so the session knows it changed.
    request.session["_flashes"] = flashes
    emitter, budget = emitter_of(request)
    if emitter is not None and emitter.wants(signals.message_flashed):
        await emitter.send(signals.message_flashed, budget, message=message, category=category)


@overload
def get_flashed_messages(
    request: Request,
    with_categories: Literal[False] = False,
    category_filter: Sequence[str] = (),
) -> list[str]: ...


@overload
def get_flashed_messages(
    request: Request,
    with_categories: Literal[True],
    category_filter: Sequence[str] = (),
) -> list[tuple[str, str]]: ...


@overload
def get_flashed_messages(
    request: Request, with_categories: bool, category_filter: Sequence[str] = ()
) -> list[str] | list[tuple[str, str]]: ...


def get_flashed_messages(
    request: Request, with_categories: bool = False, category_filter: Sequence[str] = ()
) -> list[str] | list[tuple[str, str]]:
    """The messages flashed so far, removed from the session, as Flask's.

    The first call of a request pops them from the session; later calls in the same
    request return the same messages. ``category_filter`` keeps only those categories.
    Returns the messages (``list[str]``), or ``(category, message)`` pairs
    (``list[tuple[str, str]]``) with ``with_categories=True``.
    """
    flashes: list[tuple[str, str]] | None = request.scope.get(FLASHES_KEY)
    if flashes is None:
        stored = request.session.pop("_flashes") if "_flashes" in request.session else []
        flashes = [(category, message) for category, message in stored]
        request.scope[FLASHES_KEY] = flashes
    if category_filter:
        flashes = [flash for flash in flashes if flash[0] in category_filter]
    if with_categories:
        return flashes
    return [message for _, message in flashes]
