"""examples/background_demo.py, which ``make demo`` calls, on a real server over HTTP.

It asserts what the measurement did, never how long anything took: every request was
answered, and every background receiver call ran to its end after its response.
"""

from __future__ import annotations

import math

import pytest

from examples import background_demo, serving, starlette_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn


async def test_compare_latency_measures_each_variant_and_runs_every_background_call() -> None:
    app = starlette_app.create_app(timeout=5)
    lines: list[str] = []
    async with serving.serve({"starlette": (app, "uvicorn")}) as running:
        [result] = await background_demo.measure_and_print(
            running, seconds=0.001, fast=True, out=lines.append
        )
    assert result.app == "starlette"
    for value in (result.bare, result.awaited, result.background):
        assert math.isfinite(value)
        assert value > 0
    assert result.scheduled == 3 * 2
    assert result.finished == result.scheduled
    assert "3 receivers of 1 ms" in lines[1]
    assert "6/6 background calls finished" in lines[2]
