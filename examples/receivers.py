"""Receivers written once, for every framework.

Each receiver takes the sender (the application) and keyword arguments with Flask's
names, and accepts ``**extra`` so that a framework which sends more keywords never breaks
it. Nothing here imports Quart, Starlette or FastAPI: the adapters give all three the same
signals, senders and keywords.

:func:`wiring` says which receiver listens to which signal; :func:`connect` connects a
wiring and returns a function that disconnects it again.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from asignal import Signal, signals

from .signals import user_logged_in

log = logging.getLogger("examples")

#: How long the slow receiver takes, in seconds.
SLOW_SECONDS = 0.2
#: Seconds after which the hanging receiver, a background receiver, is cancelled.
HANGING_TIMEOUT = 0.3

Receiver = Callable[..., Any]
#: ``(signal, receiver, connect options)``: one line of :func:`wiring`.
Wire = tuple[Signal, Receiver, dict[str, Any]]


def describe_app(app: Any) -> str:
    """A short label for a sender: the application's class name (Starlette, FastAPI,
    Quart), which is enough to tell the three example apps apart."""
    return type(app).__name__


def request_path(request: Any) -> str:
    """The path of a Quart or a Starlette request (Quart has ``.path``, Starlette
    ``.url.path``)."""
    path = getattr(request, "path", None)
    return path if isinstance(path, str) else str(request.url.path)


async def log_request(app: Any, *, request: Any, response: Any, **extra: Any) -> str:
    """Request logger, on ``request_finished``: one line per response."""
    line = f"{describe_app(app)} {request.method} {request_path(request)} -> {response.status_code}"
    log.info("%s", line)
    return line


async def report_error(app: Any, *, exception: BaseException, **extra: Any) -> str:
    """Error reporter, on ``got_request_exception`` and ``got_websocket_exception``: where
    an error tracker would hook in. The request is answered with a 500 regardless."""
    line = f"{describe_app(app)}: unhandled {type(exception).__name__}: {exception}"
    log.error("%s", line, exc_info=exception)
    return line


async def slow_receiver(app: Any, *, seconds: float = SLOW_SECONDS, **extra: Any) -> str:
    """A receiver that takes ``seconds`` (an API call, say). The demo connects it as a
    background receiver: no response waits for it; it finishes later, on the app's
    background runner."""
    await anyio.sleep(seconds)
    return f"done after {seconds * 1000:.0f} ms"


async def hanging_receiver(app: Any, **extra: Any) -> None:
    """A receiver that never returns. The demo connects it as a background receiver
    with a ``timeout``: no response waits for it, and the runner cancels it after that
    timeout and logs it on the ``asignal`` logger."""
    await anyio.sleep_forever()


@dataclass(frozen=True)
class Login:
    """One row of the audit table."""

    at: str
    app: str
    user: str
    ip: str


class AuditLog:
    """Stores each ``user_logged_in`` in a SQLite file, through aiosqlite.

    ``path`` is the database file (created if missing). Each instance stamps its rows with
    its own ``run`` id, so :meth:`logins` can return one run's rows from a file that
    earlier runs have written to. aiosqlite needs asyncio.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.run = uuid.uuid4().hex

    async def create(self) -> None:
        """Create the table if it does not exist."""
        async with aiosqlite.connect(self.path) as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS logins "
                "(id INTEGER PRIMARY KEY, run TEXT, at TEXT, app TEXT, user TEXT, ip TEXT)"
            )
            await db.commit()

    async def record(self, app: Any, *, user: str, ip: str, **extra: Any) -> int:
        """Audit receiver, on ``user_logged_in``: insert one row; return its id."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        async with aiosqlite.connect(self.path) as db:
            cursor = await db.execute(
                "INSERT INTO logins (run, at, app, user, ip) VALUES (?, ?, ?, ?, ?)",
                (self.run, at, describe_app(app), user, ip),
            )
            await db.commit()
            row_id = cursor.lastrowid
        assert row_id is not None
        return row_id

    async def logins(self) -> list[Login]:
        """This run's rows, oldest first."""
        async with aiosqlite.connect(self.path) as db:
            db.row_factory = sqlite3.Row
            cursor = await db.execute(
                "SELECT at, app, user, ip FROM logins WHERE run = ? ORDER BY id", (self.run,)
            )
            rows = await cursor.fetchall()
        return [Login(row["at"], row["app"], row["user"], row["ip"]) for row in rows]


def wiring(
    audit: AuditLog,
    *,
    slow_seconds: float = SLOW_SECONDS,
    hanging_timeout: float = HANGING_TIMEOUT,
) -> list[Wire]:
    """Which receiver listens to which signal, for every app (``sender=ANY``), and how
    it is connected. The slow and the hanging receivers are background receivers: the
    response never waits for them."""
    slow = partial(slow_receiver, seconds=slow_seconds)
    return [
        (signals.request_finished, log_request, {}),
        (signals.request_finished, slow, {"background": True}),
        (
            signals.request_finished,
            hanging_receiver,
            {"background": True, "timeout": hanging_timeout},
        ),
        (signals.got_request_exception, report_error, {}),
        (signals.got_websocket_exception, report_error, {}),
        (user_logged_in, audit.record, {}),
    ]


def connect(
    wires: Iterable[Wire | tuple[Signal, Receiver]],
    *,
    wrap: Callable[[Signal, Receiver], Receiver] | None = None,
) -> Callable[[], None]:
    """Connect each ``(signal, receiver, options)`` of ``wires`` (or ``(signal,
    receiver)``: no options), for any sender, with ``options`` as keyword arguments of
    ``connect``; return a function that disconnects them all.

    ``wrap(signal, receiver)``, if given, returns the callable to connect instead (the
    demo wraps receivers to time them). Receivers are held strongly (``weak=False``), as
    wrappers and partials would otherwise be collected at once.
    """
    connected: list[tuple[Signal, Receiver]] = []
    for wire in wires:
        signal, receiver = wire[0], wire[1]
        options: dict[str, Any] = wire[2] if len(wire) == 3 else {}
        target = wrap(signal, receiver) if wrap is not None else receiver
        signal.connect(target, weak=False, **options)
        connected.append((signal, target))

    def disconnect() -> None:
        for signal, target in connected:
            signal.disconnect(target)

    return disconnect
