"""The MODULE the bridge tests' worker processes run (``python -m asignal.bridges.nats``).

It receives :data:`event` (signal ``bridge-test-event``). Each receiver call appends one
JSON line to the file named by ``$ASIGNAL_TEST_OUT``: what it saw, and the pid.
``$ASIGNAL_TEST_MODE`` picks the receiver's behaviour: ``ok`` (record and return),
``hold`` (record "held" and never return), ``fail`` (record and raise), ``slow``
(record "start", take 0.3 s, record "end").
"""

from __future__ import annotations

import json
import os
from typing import Any

import anyio

from asignal import Namespace
from asignal.bridges.nats import RemoteSender

namespace = Namespace()
event = namespace.signal("bridge-test-event")

RECEIVE = [event]

MODE = os.environ.get("ASIGNAL_TEST_MODE", "ok")
OUT = os.environ.get("ASIGNAL_TEST_OUT")


def record(what: str, sender: RemoteSender, kwargs: dict[str, Any]) -> None:
    line = {
        "what": what,
        "pid": os.getpid(),
        "id": sender.message_id,
        "attempt": sender.attempt,
        "app": sender.app,
        "origin": sender.origin,
        "kwargs": kwargs,
    }
    assert OUT is not None
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        # One write per line: O_APPEND keeps lines of concurrent writers whole.
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


async def handle(sender: RemoteSender, **kwargs: Any) -> str:
    if MODE == "hold":
        record("held", sender, kwargs)
        await anyio.sleep_forever()
    if MODE == "slow":
        record("start", sender, kwargs)
        await anyio.sleep(0.3)
        record("end", sender, kwargs)
        return "ok"
    record("handled", sender, kwargs)
    if MODE == "fail":
        raise RuntimeError(f"receiver failed on attempt {sender.attempt}")
    return "ok"


# Only worker processes record; the test process imports this module for ``event``.
if OUT:
    event.connect(handle)
