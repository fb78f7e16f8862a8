"""The one way this project starts and stops real servers: uvicorn and hypercorn, in
process, on 127.0.0.1, each on a free port.

The demo and the adapters' tests use it::

    async with serving(app, "hypercorn") as served:     # or "uvicorn" (the default)
        async with httpx.AsyncClient(base_url=served.url) as client:
            ...

Why in-process, in the caller's event loop, rather than subprocesses: receivers, servers
and tests then share one clock and one memory, so a test can hold a receiver on an event
and release it after reading a response; the servers start in a few milliseconds; and
stopping is an ordinary call (``should_exit`` for uvicorn, a shutdown trigger for
hypercorn) that runs the ASGI lifespan shutdown, so ``serving_stopped`` fires too.

Each server gets a socket already bound to ``127.0.0.1`` on a free port (port 0) and
listening, so its port is known before the server starts, and a client that connects
early waits in the backlog instead of failing. uvicorn serves on asyncio; hypercorn on
asyncio and trio (whichever runs the caller).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import sniffio
import uvicorn
from anyio.abc import TaskGroup
from hypercorn.config import Config as HypercornConfig

__all__ = [
    "HOST",
    "SHUTDOWN_SECONDS",
    "Served",
    "Server",
    "ServingError",
    "listening_socket",
    "serve",
    "serving",
    "stop",
]

HOST = "127.0.0.1"
#: How long a graceful shutdown may take, in seconds, before the server is cancelled.
SHUTDOWN_SECONDS = 3.0

Server = Literal["uvicorn", "hypercorn"]


class ServingError(RuntimeError):
    """A server could not bind its port, failed its start-up, or stopped on its own."""


def listening_socket(host: str = HOST, port: int = 0) -> socket.socket:
    """A TCP socket bound to ``port`` on ``host`` (0: a free port) and listening.

    Raises :class:`ServingError` if the port cannot be bound.
    """
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it a response written in two parts (headers, body) waits ~40 ms for
    # Nagle and the client's delayed ACK. Set on the listener too, as Linux hands it on to
    # the accepted sockets of servers that do not set it themselves.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServingError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.setblocking(False)
    return sock


@dataclass
class Served:
    """One app being served: its address, and what went wrong with its server, if
    anything (``failure``)."""

    name: str
    app: Any
    port: int
    server: Server
    failure: str | None = None
    _stop: Any = field(default=None, repr=False)
    _done: Any = field(default=None, repr=False)
    _started: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://{HOST}:{self.port}"

    def stop(self) -> None:
        """Ask the server to shut down gracefully (lifespan shutdown included)."""
        stop(self)


def stop(served: Served) -> None:
    """Ask a server to shut down gracefully (lifespan shutdown included)."""
    if isinstance(served._stop, uvicorn.Server):
        served._stop.should_exit = True
    elif served._stop is not None:
        served._stop.set()


@asynccontextmanager
async def serving(app: Any, server: Server = "uvicorn", *, name: str = "") -> AsyncIterator[Served]:
    """Serve ``app`` with ``server`` on a free port of 127.0.0.1 until the block ends;
    then shut it down gracefully (lifespan included) and wait for it, up to
    :data:`SHUTDOWN_SECONDS`, after which it is cancelled.

    The block starts once the app's lifespan start-up has completed. Raises
    :class:`ServingError` if the port cannot be bound, if the start-up fails, or for
    uvicorn outside asyncio.
    """
    key = name or server
    async with _servers({key: (app, server)}) as running:
        served = running[key]
        await served._started.wait()
        if served.failure is None:
            yield served
            return
    # Raised here, out of the servers' task group, so that it arrives unwrapped.
    raise ServingError(served.failure)


@asynccontextmanager
async def serve(apps: dict[str, tuple[Any, Server]]) -> AsyncIterator[dict[str, Served]]:
    """Serve each ``name -> (app, server)`` on its own free port until the block ends,
    then shut all of them down as :func:`serving` does. The block starts at once (early
    connections wait in the backlog); a server's problems end up in its ``failure``.

    Raises :class:`ServingError` if a port cannot be bound.
    """
    async with _servers(apps) as running:
        yield running


@asynccontextmanager
async def _servers(apps: dict[str, tuple[Any, Server]]) -> AsyncIterator[dict[str, Served]]:
    uvicorn_wanted = any(kind == "uvicorn" for _, kind in apps.values())
    if uvicorn_wanted and sniffio.current_async_library() != "asyncio":
        raise ServingError("uvicorn serves on asyncio only; use hypercorn on trio")
    sockets = {name: listening_socket() for name in apps}
    running: dict[str, Served] = {}
    # The block's own exception is re-raised once the servers are down, unwrapped: the
    # task group would put it in an ExceptionGroup, and tests want to see it as itself.
    failed: Exception | None = None
    try:
        async with anyio.create_task_group() as tg:
            for name, (app, kind) in apps.items():
                sock = sockets.pop(name)
                served = Served(name, app, sock.getsockname()[1], kind)
                running[name] = served
                _start(tg, served, sock)
            try:
                yield running
            except Exception as error:
                failed = error
            finally:
                for served in running.values():
                    stop(served)
                # Wait for a graceful shutdown (lifespan included) even when the block
                # failed, rather than letting the task group cancel servers mid-request.
                with anyio.move_on_after(SHUTDOWN_SECONDS, shield=True):
                    for served in running.values():
                        await served._done.wait()
                tg.cancel_scope.cancel()
    finally:
        for sock in sockets.values():
            sock.close()
    if failed is not None:
        raise failed


class _QuietServer(uvicorn.Server):
    """uvicorn's server, leaving the process's SIGINT/SIGTERM handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _WatchStartup:
    """The app, telling ``served`` when its lifespan start-up has completed or failed."""

    def __init__(self, served: Served) -> None:
        self.served = served

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        served = self.served
        if scope["type"] != "lifespan":
            await served.app(scope, receive, send)
            return

        async def watching(message: Any) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.failed":
                # Before forwarding: hypercorn raises from its send on a failure.
                reason = str(message.get("message") or "").strip().splitlines()
                served.failure = "lifespan start-up failed" + (f": {reason[-1]}" if reason else "")
            await send(message)
            if kind == "lifespan.startup.complete":
                served._started.set()

        await served.app(scope, receive, watching)


def _ended(served: Served, failure: str | None) -> None:
    if failure is not None and served.failure is None:
        served.failure = failure
    served._done.set()
    # Whoever waits for the start-up must not wait for a server that has ended.
    served._started.set()


async def _run_uvicorn(served: Served, server: uvicorn.Server, sock: socket.socket) -> None:
    failure = None
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits the process when the lifespan fails
        failure = f"uvicorn stopped with exit code {exc.code} (lifespan start-up failed?)"
    finally:
        sock.close()
        if failure is None and not server.should_exit:
            failure = "uvicorn stopped before it was asked to"
        _ended(served, failure)


async def _run_hypercorn(served: Served, config: HypercornConfig, stop: anyio.Event) -> None:
    failure = None
    try:
        if sniffio.current_async_library() == "trio":
            from hypercorn.trio import serve as hypercorn_serve
        else:
            from hypercorn.asyncio import serve as hypercorn_serve  # type: ignore[assignment]
        await hypercorn_serve(_WatchStartup(served), config, shutdown_trigger=stop.wait)
    except Exception as exc:
        failure = f"hypercorn failed: {exc!r}"
    finally:
        if failure is None and not stop.is_set():
            failure = "hypercorn stopped before it was asked to"
        _ended(served, failure)


def _start(tg: TaskGroup, served: Served, sock: socket.socket) -> None:
    # The stop handle exists before the task starts, so stop() works even if the block
    # ends before the server task has run at all.
    served._done = anyio.Event()
    served._started = anyio.Event()
    if served.server == "uvicorn":
        config = uvicorn.Config(
            _WatchStartup(served),
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = _QuietServer(config)
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
