"""``python -m asignal.bridges.nats --servers URL [--group NAME] MODULE``: a worker.

It imports MODULE, which connects its receivers to its signals as any module does, and
says what to receive in one of two ways:

- ``RECEIVE``: a list of signals; each is received in ``--group`` (broadcast without
  ``--group``) with the command line's settings;
- ``setup(bridge, group)``: a function (or coroutine function) that calls
  ``await bridge.receive(...)`` itself, for per-signal settings; ``group`` is
  ``--group`` (``None`` without it).

Then it consumes until SIGTERM or SIGINT, drains (messages in hand finish and are
acked, buffered forwards are published), and exits 0. Once consuming it prints
``asignal worker ready: ...`` on stdout. Exit status 2: bad arguments or MODULE cannot
be imported or declares nothing to receive; 3: cannot connect.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from asignal import Signal

from ._bridge import NatsBridge
from ._connect import NatsConnectError

log = logging.getLogger("asignal.bridges.nats")


class _Usage(Exception):
    """MODULE cannot be used (exit status 2)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m asignal.bridges.nats",
        description="Run the receivers of MODULE on signals sent by other processes.",
    )
    p.add_argument("module", metavar="MODULE", help="imported; defines RECEIVE or setup()")
    p.add_argument(
        "--servers",
        action="append",
        default=None,
        help="NATS URL; repeat for a cluster (default nats://127.0.0.1:4222)",
    )
    p.add_argument("--group", default=None, help="work-queue group (default: broadcast)")
    p.add_argument("--stream", default="ASIGNAL")
    p.add_argument("--subject-prefix", default="asignal")
    p.add_argument("--max-deliver", type=int, default=5)
    p.add_argument("--ack-wait", type=float, default=30.0, help="seconds")
    p.add_argument("--timeout", type=float, default=None, help="seconds per message")
    p.add_argument("--backoff", type=float, default=1.0, help="first redelivery delay, s")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--connect-timeout", type=float, default=5.0, help="seconds")
    p.add_argument("--creds", default=None, help="NATS credentials file")
    p.add_argument("--token-env", default="NATS_TOKEN", help="env variable holding a token")
    p.add_argument("--log-level", default="INFO")
    return p


async def _declare(bridge: NatsBridge, module: ModuleType, args: argparse.Namespace) -> list[str]:
    setup = getattr(module, "setup", None)
    if callable(setup):
        result = setup(bridge, args.group)
        if inspect.isawaitable(result):
            await result
        return [args.module + ".setup"]
    signals: Any = getattr(module, "RECEIVE", None)
    if not signals or not all(isinstance(s, Signal) for s in signals):
        raise _Usage(
            f"module {args.module!r} declares nothing to receive: define RECEIVE "
            "(a list of signals) or setup(bridge, group)"
        )
    names = []
    for sig in signals:
        await bridge.receive(
            sig,
            group=args.group,
            max_deliver=args.max_deliver,
            ack_wait=args.ack_wait,
            timeout=args.timeout,
            backoff=(args.backoff, max(args.backoff, 30.0)),
            batch=args.batch,
        )
        names.append(bridge.subject(sig))
    return names


async def run(args: argparse.Namespace) -> int:
    """Import, connect, consume until SIGTERM/SIGINT, drain; the exit status."""
    try:
        module = importlib.import_module(args.module)
    except ImportError as exc:
        print(f"error: cannot import {args.module!r}: {exc}", file=sys.stderr)
        return 2
    options: dict[str, Any] = {"name": f"asignal worker {os.getpid()}"}
    if args.creds:
        options["user_credentials"] = args.creds
    if token := os.environ.get(args.token_env):
        options["token"] = token
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with NatsBridge.connect(
            args.servers or ["nats://127.0.0.1:4222"],
            stream=args.stream,
            subject_prefix=args.subject_prefix,
            connect_timeout=args.connect_timeout,
            **options,
        ) as bridge:
            names = await _declare(bridge, module, args)
            await bridge.client.flush()
            print(
                f"asignal worker ready: pid {os.getpid()}, group {args.group or '(broadcast)'}, "
                f"{', '.join(names)}",
                flush=True,
            )
            await stop.wait()
            log.info("stopping: draining (pid %d)", os.getpid())
    except NatsConnectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except _Usage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("drained; exiting (pid %d)", os.getpid())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(process)d %(name)s %(message)s"
    )
    # The module is imported by name, as `python -m` would: from the working directory.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
