"""What a user without some of the ``starlette`` extra meets: FastAPI without jinja2
installs fine; a missing package says what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_without(missing: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where ``import <missing>`` fails, as it does
    when the package is not installed."""
    program = f"import sys\nsys.modules[{missing!r}] = None\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )


def test_fastapi_without_jinja2_installs_and_reports() -> None:
    result = run_without(
        "jinja2",
        """
        import anyio, fastapi
        from asignal import signals
        from asignal.adapters.starlette import (
            SignalMiddleware, flash, get_flashed_messages, install,
        )

        app = fastapi.FastAPI()

        @app.get("/")
        async def index() -> dict[str, str]:
            return {"ok": "yes"}

        install(app)
        seen = []

        async def started(sender, **extra):
            seen.append(sender is app)

        signals.request_started.connect(started, sender=app, weak=False)

        async def main():
            sent = []

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message):
                sent.append(message)

            scope = {
                "type": "http", "method": "GET", "path": "/", "raw_path": b"/",
                "query_string": b"", "headers": [], "root_path": "", "scheme": "http",
                "server": ("x", 80), "client": ("127.0.0.1", 1), "http_version": "1.1",
                "asgi": {"version": "3.0"},
            }
            await app(scope, receive, send)
            return sent[0]["status"]

        print(anyio.run(main), seen)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "[True]"]


def test_the_templates_without_jinja2_say_what_to_install() -> None:
    result = run_without("jinja2", "from asignal.adapters.starlette import Jinja2Templates\n")
    assert result.returncode == 1
    assert "ImportError" in result.stderr
    assert 'pip install "asignal[starlette]"' in result.stderr


def test_the_adapter_without_starlette_says_what_to_install() -> None:
    result = run_without("starlette", "from asignal.adapters.starlette import install\n")
    assert result.returncode == 1
    assert "ImportError" in result.stderr
    assert 'pip install "asignal[starlette]"' in result.stderr
