"""Connecting: asyncio only, bounded in time, and an error that says what went wrong."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any, Literal

import nats
import nats.errors
import sniffio
from nats.aio.client import Client

log = logging.getLogger("asignal.bridges.nats")


class NatsConnectError(ConnectionError):
    """The bridge could not connect. ``reason`` says why: ``"unreachable"`` (nothing
    answered at the URLs within the time allowed) or ``"credentials"`` (the server
    refused the credentials)."""

    def __init__(self, message: str, reason: Literal["unreachable", "credentials"]) -> None:
        super().__init__(message)
        #: Why: ``"unreachable"`` or ``"credentials"``.
        self.reason: Literal["unreachable", "credentials"] = reason


def require_asyncio() -> None:
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = "no event loop"
    if library != "asyncio":
        raise RuntimeError(
            f"asignal.bridges.nats needs asyncio, not {library}: nats-py is asyncio-only. "
            "Run this part of the program under asyncio (anyio.run(..., backend='asyncio'))."
        )


def _is_auth_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, nats.errors.AuthorizationError) or any(
        word in text for word in ("authorization", "authentication", "user credentials")
    )


async def connect_client(
    servers: str | list[str], seconds: float, options: dict[str, Any]
) -> Client:
    errors: list[Exception] = []
    connected = False
    refused = asyncio.Event()
    user_error_cb = options.pop("error_cb", None)

    async def error_cb(exc: Exception) -> None:
        if connected:
            # Once connected, errors are the client's own reports (a lost connection,
            # a slow consumer, a failing callback): log them, as nats-py would.
            log.warning("NATS client: %r", exc)
        else:
            errors.append(exc)
            # nats-py retries a refused login like a lost connection; stop at the first.
            if _is_auth_error(exc):
                refused.set()
        if user_error_cb is not None:
            await user_error_cb(exc)

    where = servers if isinstance(servers, str) else ", ".join(servers)
    options.setdefault("connect_timeout", seconds)
    connecting = asyncio.ensure_future(nats.connect(servers, error_cb=error_cb, **options))
    waiting = asyncio.ensure_future(refused.wait())
    try:
        await asyncio.wait({connecting, waiting}, timeout=seconds, return_when="FIRST_COMPLETED")
    finally:
        waiting.cancel()
    if connecting.done() and connecting.exception() is None:
        client: Client = connecting.result()
        connected = True
        return client
    if not connecting.done():
        connecting.cancel()
        with suppress(BaseException):
            await connecting
        error: BaseException | None = errors[-1] if errors else None
    else:
        error = connecting.exception()
    refusal = next((e for e in [*errors, error] if e is not None and _is_auth_error(e)), None)
    if refusal is not None:
        raise NatsConnectError(
            f"the NATS server at {where} refused the credentials ({refusal})",
            reason="credentials",
        )
    last = f" (last error: {error!r})" if error is not None else ""
    raise NatsConnectError(
        f"cannot reach a NATS server at {where} within {seconds} s{last}: is it running, "
        "and is the address right?",
        reason="unreachable",
    )
