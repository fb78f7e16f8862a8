"""The documentation cannot drift: its code runs, and the site builds with ``--strict``.

Every ```python block of the pages listed in :data:`RUN` runs in a fresh namespace (the
README's harness, :mod:`tests.test_readme`), with its ``print(...)  # output`` comments
checked; ```py blocks are shown, not run (signatures, fragments). Then ``mkdocs build
--strict`` builds the site into a temporary directory, so a broken link, a missing nav
page or an API reference to a name that no longer exists fails the tests.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import Block, arun_block, blocks, run_block

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: The pages whose examples are meant to run as they stand.
RUN = [
    "index.md",
    "getting-started.md",
    "dispatch.md",
    "signals.md",
    "testing.md",
    "migrating-from-blinker.md",
]

PYTHON = [
    block
    for page in RUN
    for block in blocks((DOCS / page).read_text(encoding="utf-8"), "python", f"docs/{page}")
]
SYNC = [b for b in PYTHON if not b.is_async]
ASYNC = [b for b in PYTHON if b.is_async and "quart" not in b.source.lower()]
# Quart runs on asyncio only: these examples get their own backend below.
QUART = [b for b in PYTHON if b.is_async and "quart" in b.source.lower()]


def _id(block: Block) -> str:
    return f"{block.where.removeprefix('docs/')}:{block.line}"


@pytest.mark.parametrize("block", SYNC, ids=_id)
def test_sync_example_runs(block: Block) -> None:
    run_block(block)


@pytest.mark.anyio
@pytest.mark.parametrize("block", ASYNC, ids=_id)
async def test_async_example_runs(block: Block) -> None:
    await arun_block(block)


class TestQuartExamples:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # Quart runs on asyncio only

    @pytest.mark.anyio
    @pytest.mark.parametrize("block", QUART, ids=_id)
    async def test_quart_example_runs(self, block: Block) -> None:
        await arun_block(block)


def test_every_page_has_examples() -> None:
    for page in RUN:
        assert blocks((DOCS / page).read_text(encoding="utf-8"), "python", page), page


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "api" / "index.html").exists()


def test_docstring_markup_becomes_markdown() -> None:
    path = DOCS / "_ext" / "rst_docstrings.py"
    spec = importlib.util.spec_from_file_location("rst_docstrings", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (
        ":class:`~asignal.Namespace` and :mod:`asignal.signals`; "
        "``BaseException``\\ s::\n\n    x = 1\n\nafter"
    )
    assert module.to_markdown(text) == (
        "`Namespace` and `asignal.signals`; ``BaseException``s:\n\n```python\nx = 1\n```\n\nafter"
    )
