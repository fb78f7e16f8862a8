"""Fixtures of the bridge tests: a real nats-server, and worker processes.

Waiting is by polling a condition with a bound (:func:`wait_until`), never by sleeping
a fixed time; no test asserts wall-clock durations.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from examples.nats_server import NatsServer

ROOT = Path(__file__).resolve().parents[2]
#: Upper bound of every wait, in seconds: generous, a loaded CI machine is slow.
BOUND = 30.0


@pytest.fixture
def anyio_backend() -> str:
    # nats-py is asyncio-only.
    return "asyncio"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


async def wait_until(
    condition: Callable[[], bool],
    what: str,
    bound: float = BOUND,
    why: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail naming ``what`` (and what
    ``why()`` says of the state) after ``bound`` seconds."""
    with anyio.move_on_after(bound):
        while not condition():
            await anyio.sleep(0.02)
        return
    state = f": {why()}" if why is not None else ""
    raise AssertionError(f"timed out after {bound} s waiting for {what}{state}")


class Worker:
    """``python -m asignal.bridges.nats ... tests.bridges.worker_module`` in a process."""

    def __init__(self, server: NatsServer, tmp: Path, name: str, *args: str, mode: str = "ok"):
        self.out = tmp / f"{name}.jsonl"
        self.log = tmp / f"{name}.log"
        self.stdout = tmp / f"{name}.stdout"
        env = dict(os.environ, ASIGNAL_TEST_OUT=str(self.out), ASIGNAL_TEST_MODE=mode)
        if server.token:
            env["NATS_TOKEN"] = server.token
        argv = [sys.executable, "-m", "asignal.bridges.nats", "--servers", server.url, *args]
        argv += ["--connect-timeout", "10", "tests.bridges.worker_module"]
        with self.stdout.open("wb") as out, self.log.open("wb") as err:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err)

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited ({self.process.returncode}): {self.logs()}")
        return "asignal worker ready" in self.stdout.read_text()

    async def ready(self) -> Worker:
        await wait_until(self.is_ready, f"worker {self.pid} to be ready")
        return self

    def lines(self, what: str | None = None) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        rows = [json.loads(line) for line in self.out.read_text().splitlines()]
        return [r for r in rows if what is None or r["what"] == what]

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    async def terminate(self) -> int:
        """SIGTERM, then wait (bounded) for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        await wait_until(lambda: self.process.poll() is not None, f"worker {self.pid} to exit")
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def workers(nats_server: NatsServer, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """``start(name, *args, mode=..., server=...)`` starts a worker; all are killed at
    the end of the test if still running."""
    started: list[Worker] = []

    def start(name: str, *args: str, mode: str = "ok", server: NatsServer | None = None) -> Worker:
        worker = Worker(server or nats_server, tmp_path, name, *args, mode=mode)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
