"""``Signal.send_background`` from a FastAPI sync endpoint (an anyio worker thread),
served by uvicorn over real HTTP on 127.0.0.1, on the app's runner.

The proof that the response did not wait: the background receiver is blocked on an event
that the test sets only after it has read the response.
"""

from __future__ import annotations

import contextvars
from typing import Any

import anyio
import fastapi
import httpx
import pytest

from asignal import Namespace, Scheduled
from asignal.adapters.starlette import install
from examples.serving import serving

from .recording import GUARD

pytestmark = pytest.mark.anyio

user_id: contextvars.ContextVar[str] = contextvars.ContextVar("user_id", default="-")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_send_background_from_a_fastapi_sync_endpoint_over_http() -> None:
    user_registered = Namespace().signal("user-registered")
    app = fastapi.FastAPI()
    installation = install(app)
    release, done = anyio.Event(), anyio.Event()
    timeline: list[str] = []
    returned: list[Any] = []

    @app.post("/register")
    def register(name: str) -> dict[str, str]:  # sync: FastAPI runs it in a worker thread
        user_id.set(name)
        returned.append(user_registered.send_background(app, user=name))
        timeline.append("endpoint returned")
        return {"registered": name}

    async def welcome(sender: Any, *, user: str) -> None:
        timeline.append(f"welcome {user} started, user_id={user_id.get()}")
        await release.wait()
        timeline.append(f"welcome {user} done")
        done.set()

    user_registered.connect(welcome, app)
    async with serving(app, "uvicorn") as served, httpx.AsyncClient() as client:
        with anyio.fail_after(GUARD):
            response = await client.post(f"{served.url}/register", params={"name": "ada"})
        timeline.append("response read")
        release.set()
        with anyio.fail_after(GUARD):
            await done.wait()
        runner = installation.runner
        assert runner is not None
        stats = runner.stats

    assert response.json() == {"registered": "ada"}
    [scheduled] = returned
    assert isinstance(scheduled, Scheduled)
    assert scheduled.runner is runner
    assert timeline.index("response read") < timeline.index("welcome ada done")
    assert "welcome ada started, user_id=ada" in timeline  # the worker thread's context
    assert stats.completed >= 1
    assert stats.failed == stats.dropped == 0
