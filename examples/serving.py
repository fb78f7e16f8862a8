"""In-process servers for the demo: uvicorn for Starlette/FastAPI, hypercorn for Quart.

Why in-process, in the demo's own event loop, rather than subprocesses: the receivers,
the servers and the demo then share one clock and one memory, so the timeline records
every receiver's start and end without any IPC; the servers start in a few milliseconds;
and shutting down is an ordinary cancellation-free call (``should_exit`` for uvicorn, a
shutdown trigger for hypercorn) that runs the ASGI lifespan shutdown, so the
``serving_stopped`` signals fire too.

Each server gets a socket that is already bound to ``127.0.0.1`` on a free port (port 0)
and listening, so its port is known before the server starts, and a client that connects
early waits in the backlog instead of failing.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import uvicorn
from anyio.abc import TaskGroup
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

HOST = "127.0.0.1"
#: How long a graceful shutdown of all servers may take, in seconds.
SHUTDOWN_SECONDS = 3.0


class ServingError(RuntimeError):
    """A server could not bind its port, or stopped on its own."""


def listening_socket(host: str = HOST, port: int = 0) -> socket.socket:
    """A TCP socket bound to ``port`` on ``host`` (0: a free port) and listening.

    Raises :class:`ServingError` if the port cannot be bound.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServingError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.setblocking(False)
    return sock


@dataclass
class Served:
    """One app being served: its base URL, and what went wrong with its server, if
    anything."""

    name: str
    app: Any
    port: int
    server: Literal["uvicorn", "hypercorn"]
    failure: str | None = None
    _stop: Any = field(default=None, repr=False)
    _done: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"


async def _run_uvicorn(served: Served, server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits the process when the lifespan fails
        served.failure = f"uvicorn stopped with exit code {exc.code} (lifespan start-up failed?)"
    finally:
        sock.close()
        served._done.set()
    if not server.should_exit and served.failure is None:
        served.failure = "uvicorn stopped before it was asked to"


async def _run_hypercorn(served: Served, config: HypercornConfig, stop: anyio.Event) -> None:
    try:
        await hypercorn_serve(served.app, config, shutdown_trigger=stop.wait)
    except Exception as exc:
        served.failure = f"hypercorn failed: {exc!r}"
    finally:
        served._done.set()
    if not stop.is_set() and served.failure is None:
        served.failure = "hypercorn stopped before it was asked to"


def stop(served: Served) -> None:
    """Ask a server to shut down gracefully (lifespan shutdown included)."""
    if isinstance(served._stop, uvicorn.Server):
        served._stop.should_exit = True
    elif served._stop is not None:
        served._stop.set()


@asynccontextmanager
async def serve(
    apps: dict[str, tuple[Any, Literal["uvicorn", "hypercorn"]]],
) -> AsyncIterator[dict[str, Served]]:
    """Serve each ``name -> (app, server)`` on its own free port until the block ends,
    then shut all of them down and wait for them (up to :data:`SHUTDOWN_SECONDS`, then
    they are cancelled).

    Raises :class:`ServingError` if a port cannot be bound.
    """
    sockets = {name: listening_socket() for name in apps}
    running: dict[str, Served] = {}
    try:
        async with anyio.create_task_group() as tg:
            for name, (app, kind) in apps.items():
                sock = sockets.pop(name)
                served = Served(name, app, sock.getsockname()[1], kind)
                running[name] = served
                _start(tg, served, sock)
            try:
                yield running
            finally:
                for served in running.values():
                    stop(served)
                # Wait for a graceful shutdown (lifespan included) even when the block
                # failed, rather than letting the task group cancel servers mid-request.
                with anyio.move_on_after(SHUTDOWN_SECONDS, shield=True):
                    for served in running.values():
                        await served._done.wait()
    finally:
        for sock in sockets.values():
            sock.close()


def _start(tg: TaskGroup, served: Served, sock: socket.socket) -> None:
    # The stop handle exists before the task starts, so stop() works even if the block
    # ends before the server task has run at all.
    served._done = anyio.Event()
    if served.server == "uvicorn":
        config = uvicorn.Config(
            served.app,
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        served._stop = server
        tg.start_soon(_run_uvicorn, served, server, sock, name=f"uvicorn {served.name}")
    else:
        hconfig = HypercornConfig()
        # Hypercorn takes the descriptor over (it wraps it in a socket object of its own).
        hconfig.bind = [f"fd://{sock.detach()}"]
        hconfig.accesslog = None
        hconfig.errorlog = None
        hconfig.graceful_timeout = 2
        event = anyio.Event()
        served._stop = event
        tg.start_soon(_run_hypercorn, served, hconfig, event, name=f"hypercorn {served.name}")
