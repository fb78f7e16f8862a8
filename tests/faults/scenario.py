"""One run: a server process (:mod:`tests.faults.server`) serving a fresh app with faulty
receivers, the load sent to it, and everything the checks read afterwards (:class:`Run`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

from . import load
from .load import Outcome, Planned
from .receivers import Call, Logged

#: The adapters' per-request budget in the runs (seconds): ``timeout`` given to install.
BUDGET = 0.25
#: Generous guard against a hang (seconds); nothing asserts how long anything takes.
GUARD = 30.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    """What one run left: the responses, and the server's report (receivers' calls, the
    reduced log, per-request times, tasks alive after shutdown, GC figures)."""

    app: str
    kinds: tuple[str, ...]
    requests: list[Planned]
    outcomes: dict[int, Outcome]
    report: dict[str, Any]
    seconds: float

    @property
    def calls(self) -> list[Call]:
        return [Call(*row) for row in self.report["calls"]]

    @property
    def logged(self) -> list[Logged]:
        return [Logged(*row) for row in self.report["logged"]]

    @property
    def times(self) -> dict[int, list[float | None]]:
        return {int(rid): row for rid, row in self.report["times"].items()}


class ServerProcess:
    """``python -m tests.faults.server`` with ``options``, from ``with`` to its end; the
    report is in ``report`` afterwards."""

    def __init__(self, app: str, options: list[str]) -> None:
        self.command = [sys.executable, "-m", "tests.faults.server", "--app", app, *options]
        self.port = 0
        self.report: dict[str, Any] = {}
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._process = process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        stdout = process.stdout
        assert stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(stdout.readline()))
        reader.start()
        reader.join(GUARD)
        if not line or not line[0].startswith("PORT "):
            self._finish()
            raise RuntimeError(f"server did not start: {line} {self.report}")
        self.port = int(line[0].split()[1])
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._finish()

    def _finish(self) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        try:
            out, _ = process.communicate(input="", timeout=GUARD)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
            self.report = {"failure": "the server did not stop within the guard"}
            return
        for text in out.splitlines():
            if text.startswith("REPORT "):
                self.report = json.loads(text.removeprefix("REPORT "))
        if not self.report:
            self.report = {"failure": f"no report; exit code {process.returncode}"}


async def control(client: httpx.AsyncClient, what: str) -> dict[str, Any]:
    """Ask the server process for a measurement (``"collect"``: a full GC, its figures)."""
    reply = await client.get(f"/__control/{what}")
    result: dict[str, Any] = reply.json()
    return result


#: Awaited before each batch and after the last, with the run's client and batch index.
Between = Callable[[httpx.AsyncClient, int], Awaitable[None]]


def execute(
    app: str,
    kinds: tuple[str, ...],
    requests: list[Planned],
    *,
    concurrency: int,
    budget: float = BUDGET,
    slow: float = 0.02,
    churn: bool = False,
    gc_off: bool = False,
    batches: int = 1,
    between: Between | None = None,
    hold: float = 0.0,
    hold_cpu: float = 0.0,
) -> Run:
    """Serve a fresh ``app`` installed with ``timeout=budget`` and receivers of ``kinds``
    (none: a run to compare with), send ``requests`` in ``batches`` from ``concurrency``
    workers (awaiting ``between(server, batch)`` before each batch and once more after
    the last), stop the server and return the :class:`Run`. ``hold`` (seconds): a plain
    ASGI middleware holds each request that long first, then burns ``hold_cpu`` CPU
    seconds (``tests.faults.apps.Held``)."""
    options = ["--kinds", ",".join(kinds), "--budget", str(budget), "--slow", str(slow)]
    options += ["--hold", str(hold), "--hold-cpu", str(hold_cpu)]
    options += ["--churn"] * churn + ["--gc-off"] * gc_off
    outcomes: dict[int, Outcome] = {}
    started = time.perf_counter()
    with ServerProcess(app, options) as server:

        async def drive() -> None:
            # One client for the whole run: its pooled connections live as long as the
            # run, so no batch leaves connections winding down in the server.
            async with load.client(server.url, concurrency=concurrency, guard=GUARD) as client:
                size = -(-len(requests) // batches)
                for batch in range(batches):
                    if between is not None:
                        await between(client, batch)
                    part = requests[batch * size : (batch + 1) * size]
                    outcomes.update(await load.run(client, part, concurrency=concurrency))
                if between is not None:
                    await between(client, batches)

        anyio.run(drive, backend="asyncio")
    return Run(app, kinds, requests, outcomes, server.report, time.perf_counter() - started)
