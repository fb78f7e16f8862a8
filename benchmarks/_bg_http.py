"""The request of case bgr as a client sees it: over real HTTP on 127.0.0.1.

Every variant of the app (``bare``, ``handwritten``, ``adapter``, ``background``,
``awaited``; see :func:`make_app`) is served by ONE server process, uvicorn (asyncio) or
hypercorn's trio worker, one listening socket per variant, through
``examples/serving.py``, the project's one way to start and stop a server::

    python -m benchmarks._bg_http --server uvicorn

One process, so that every variant runs in the same interpreter, event loop, memory
layout, hash seed and core: with a process per variant, those differences moved the
p50s as much as the effect measured. The process prints ``PORTS <variant>=<port> ...``
once every app's lifespan has started, serves until its stdin closes, then shuts every
server down gracefully (the lifespans' drains included).

Sharing a loop means one variant's background work could land in another's timings, so
the benchmark process (:func:`started`, :func:`p50s`) times the variants in blocks: in
each round, each variant in turn (the order rotated, so that each goes first equally
often) gets ``requests`` sequential keep-alive requests from its own httpx client, then
an untimed pause of :data:`PAUSE` seconds, a few times :data:`RECEIVER_SECONDS`, so that
whatever the block scheduled has finished before the next block starts. A block lasts
long enough (``bench_background.HTTP_REQUESTS`` requests of ~1.5 ms in the full run)
that most of the ``background`` variant's own 20 ms wake-ups land inside its own block,
and are timed there, as they would be in a server busy with that app alone.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
from pyperf import perf_counter

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("bare", "handwritten", "adapter", "background", "awaited")
#: How long each request_finished receiver sleeps, seconds.
RECEIVER_SECONDS = 0.02
#: The untimed pause after each block of requests, seconds: a few times
#: RECEIVER_SECONDS, so that the sleeps a block scheduled are over before the next block.
PAUSE = 5 * RECEIVER_SECONDS
#: Seconds a server process may take to start or to stop.
GUARD = 30.0


def make_app(variant: str) -> Any:
    """A one-route Starlette app: ``bare`` (no adapter, no receivers), ``handwritten``
    (see :func:`_handwritten`), ``adapter`` (installed, with one sync ``request_finished``
    receiver that returns at once, awaited: what the adapter and one send cost), or
    installed with
    three ``request_finished`` receivers that sleep :data:`RECEIVER_SECONDS` each, in the
    ``background`` or ``awaited``. The runner's bound is raised: sleeping calls pile up
    meanwhile, and a full runner would make the send wait for room."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from asignal import signals
    from asignal.adapters.starlette import install

    async def endpoint(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    if variant == "handwritten":
        return _handwritten(Starlette(routes=[Route("/", endpoint)]))
    app = Starlette(routes=[Route("/", endpoint)])
    if variant == "bare":
        return app
    install(app, max_pending=1_000_000)
    if variant == "adapter":
        signals.request_finished.connect(_no_op, app, weak=False)
        return app
    for _ in range(3):

        async def receiver(sender: Any, **kwargs: Any) -> None:
            await anyio.sleep(RECEIVER_SECONDS)

        signals.request_finished.connect(
            receiver, app, weak=False, background=variant == "background"
        )
    return app


def _no_op(sender: Any, **kwargs: Any) -> None:
    """The ``adapter`` variant's receiver."""


async def _sleeper() -> None:
    await anyio.sleep(RECEIVER_SECONDS)


def _handwritten(app: Any) -> Any:
    """``app`` behind the least middleware that does what the ``background`` variant
    does: after each HTTP response, ``start_soon`` three :data:`RECEIVER_SECONDS` sleeps
    on a task group that lives for the app's lifespan (and waits for them at its end).
    No library can do that work for less: it is the floor of the ``background`` variant.
    """
    group: list[Any] = []

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            async with anyio.create_task_group() as tg:
                group.append(tg)
                try:
                    await app(scope, receive, send)
                finally:
                    group.remove(tg)
            return
        await app(scope, receive, send)
        if scope["type"] == "http":
            tg = group[-1]
            for _ in range(3):
                tg.start_soon(_sleeper)

    return middleware


def _serve(server: str) -> None:
    sys.path.insert(0, str(ROOT))
    from examples import serving

    kind: serving.Server = "uvicorn" if server == "uvicorn" else "hypercorn"

    async def main() -> None:
        stop = anyio.Event()
        token = anyio.lowlevel.current_token()

        def wait_for_eof() -> None:
            sys.stdin.read()
            anyio.from_thread.run_sync(stop.set, token=token)

        async with contextlib.AsyncExitStack() as stack:
            ports = {}
            for variant in VARIANTS:
                served = await stack.enter_async_context(
                    serving.serving(make_app(variant), kind, name=variant)
                )
                ports[variant] = served.port
            print("PORTS", *(f"{v}={port}" for v, port in ports.items()), flush=True)
            threading.Thread(target=wait_for_eof, daemon=True).start()
            await stop.wait()

    anyio.run(main, backend="asyncio" if server == "uvicorn" else "trio")


@contextmanager
def started(server: str) -> Iterator[dict[str, int]]:
    """One server process serving every variant: ``variant -> port``. It is asked to
    stop (its stdin closed) and waited for on leaving; if it does not stop within
    :data:`GUARD` seconds it is killed. Raises :class:`RuntimeError` if it does not
    announce its ports within :data:`GUARD` seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "benchmarks._bg_http", "--server", server]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        yield _ports(process, f"{server} serving {', '.join(VARIANTS)}")
    finally:
        try:
            process.communicate(timeout=GUARD)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _ports(process: subprocess.Popen[bytes], what: str) -> dict[str, int]:
    """The ``variant -> port`` that ``process`` announces, waiting :data:`GUARD`
    seconds at most."""
    stdout = process.stdout
    assert stdout is not None
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(GUARD)
    if not line or not line[0].startswith(b"PORTS "):
        raise RuntimeError(f"{what} did not start: {line!r}")
    pairs = (field.split(b"=") for field in line[0].split()[1:])
    return {variant.decode(): int(port) for variant, port in pairs}


async def p50s(ports: dict[str, int], rounds: int, requests: int) -> dict[str, float]:
    """variant -> the p50 latency of ``GET /`` in seconds, over every request of the
    run: in each of ``rounds`` rounds, a block of ``requests`` sequential keep-alive
    requests per variant, the variants in turn (each round starts with the next one),
    each block followed by an untimed pause of :data:`PAUSE` seconds so that the
    background work it scheduled ends before the next block (see the module's doc). A
    request the server drops unanswered on an idle connection is made again, untimed,
    and counted on stdout."""
    import httpx

    times: dict[str, list[float]] = {variant: [] for variant in ports}
    clients = {
        variant: httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")
        for variant, port in ports.items()
    }

    async def settle() -> None:
        # Untimed: the sleeps the last block scheduled end in the server meanwhile, and
        # this process's garbage from it is not collected inside the next block.
        gc.collect()
        await anyio.sleep(PAUSE)

    dropped = 0
    try:
        for client in clients.values():  # warm-up: connect, first request
            for _ in range(3):
                (await client.get("/")).raise_for_status()
        await settle()
        names = list(ports)
        for round_no in range(rounds):
            shift = round_no % len(names)
            for variant in names[shift:] + names[:shift]:
                client = clients[variant]
                for _ in range(requests):
                    t0 = perf_counter()
                    try:
                        response = await client.get("/")
                    except httpx.RemoteProtocolError:
                        # The server closed this keep-alive connection unanswered, as
                        # both do after 5 s idle, which a stall of this shared machine
                        # can stretch the wait between two blocks to. Not a latency:
                        # made again, untimed, on a new connection.
                        dropped += 1
                        (await client.get("/")).raise_for_status()
                        continue
                    times[variant].append(float(perf_counter() - t0))
                    response.raise_for_status()
                await settle()
    finally:
        for client in clients.values():
            await client.aclose()
    if dropped:
        print(f"bgr over HTTP: {dropped} request(s) dropped by the server, made again untimed")
    return {variant: statistics.median(values) for variant, values in times.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", choices=("uvicorn", "hypercorn"), required=True)
    args = parser.parse_args()
    _serve(args.server)
