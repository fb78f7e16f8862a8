"""docs/background.md cannot drift: its ```python blocks run (asyncio and trio), with
their ``print(...)  # output`` comments checked by the README's harness."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_readme import Block, arun_block, blocks, run_block

PAGE = Path(__file__).resolve().parent.parent / "docs" / "background.md"
BLOCKS = blocks(PAGE.read_text(encoding="utf-8"), "python", "docs/background.md")


def _id(block: Block) -> str:
    return f"background.md:{block.line}"


def test_the_page_has_runnable_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.anyio
@pytest.mark.parametrize("block", BLOCKS, ids=_id)
async def test_example_runs(block: Block) -> None:
    if block.is_async:
        await arun_block(block)
    else:
        run_block(block)
