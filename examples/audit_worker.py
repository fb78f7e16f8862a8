"""The audit worker: a MODULE for ``python -m asignal.bridges.nats``.

``python -m asignal.bridges.nats --servers nats://127.0.0.1:4222 --group audit
examples.audit_worker`` consumes ``user_logged_in`` (sent and forwarded by the example
apps, in other processes) as a member of the work-queue group "audit", and writes one
SQLite row per login to ``$ASIGNAL_AUDIT_DB`` (default ``examples/audit-worker.sqlite3``)
with the pid of the process that wrote it.

Delivery is at least once: a message can come twice (a worker died before its ack
reached the server). The receiver is idempotent through the message id, the table's
primary key: a second delivery inserts nothing.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from asignal.bridges.nats import NatsBridge, RemoteSender

from .signals import user_logged_in

DB = Path(os.environ.get("ASIGNAL_AUDIT_DB", Path(__file__).parent / "audit-worker.sqlite3"))

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS remote_logins (message_id TEXT PRIMARY KEY, origin TEXT, "
    "at TEXT, app TEXT, user TEXT, ip TEXT, pid INTEGER, attempt INTEGER)"
)


async def create(path: Path = DB) -> None:
    """Create the table if it does not exist."""
    async with aiosqlite.connect(path) as db:
        await db.execute(SCHEMA)
        await db.commit()


async def record_login(sender: RemoteSender, *, user: str, ip: str, **extra: Any) -> None:
    """On ``user_logged_in`` from another process: one row, once per message id."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    async with aiosqlite.connect(DB) as db:
        await db.execute(
            "INSERT OR IGNORE INTO remote_logins VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sender.message_id,
                sender.origin,
                at,
                sender.app,
                user,
                ip,
                os.getpid(),
                sender.attempt,
            ),
        )
        await db.commit()


async def setup(bridge: NatsBridge, group: str | None) -> None:
    """Called by the worker entry point once connected: receive the logins."""
    await create()
    user_logged_in.connect(record_login)
    await bridge.receive(user_logged_in, group=group or "audit", max_deliver=5, ack_wait=10.0)


async def rows(path: Path, origin: str) -> list[dict[str, Any]]:
    """The rows of the logins one bridge (``origin``) forwarded, oldest first."""
    if not path.exists():
        return []
    async with aiosqlite.connect(path) as db:
        db.row_factory = aiosqlite.Row
        cursor = await db.execute(
            "SELECT * FROM remote_logins WHERE origin = ? ORDER BY rowid", (origin,)
        )
        return [dict(row) for row in await cursor.fetchall()]
