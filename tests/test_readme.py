"""The README cannot drift: every ```python block runs, and its printed output matches.

Each block runs in a fresh namespace, as a reader pasting it would. A block with
top-level ``await`` is compiled with ``PyCF_ALLOW_TOP_LEVEL_AWAIT`` and awaited in the
test's event loop, so it runs on asyncio and on trio; the others run synchronously. A line
``print(...)  # <text>`` states what it prints: the block's output must be those texts, in
order. The ```console blocks cannot run here (they install packages or run the whole
suite), so their commands are checked against the Makefile and pyproject.toml instead.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import inspect
import io
import re
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# A fence may be indented (a code block inside a list item); its body is dedented.
FENCE = re.compile(r"^(?P<indent>[ ]*)```(\w*)\n(.*?)^(?P=indent)```$", re.MULTILINE | re.DOTALL)
PRINT_WITH_OUTPUT = re.compile(r"^\s*print\(.*\)\s+#\s(?P<output>.+)$")


@dataclass(frozen=True)
class Block:
    language: str
    source: str
    line: int  # 1-based line of the opening fence
    where: str = "README.md"

    @property
    def expected_output(self) -> list[str]:
        return [
            m.group("output").strip()
            for line in self.source.splitlines()
            if (m := PRINT_WITH_OUTPUT.match(line))
        ]

    @property
    def is_async(self) -> bool:
        code = _compile(self.source, "<probe>")
        return bool(code.co_flags & inspect.CO_COROUTINE)


def blocks(text: str, language: str, where: str = "README.md") -> list[Block]:
    """The fenced blocks of ``language`` in ``text`` (```py blocks are not ```python
    ones: docs use ```py for signatures and fragments that are shown, not run)."""
    return [
        Block(m.group(2), textwrap.dedent(m.group(3)), text.count("\n", 0, m.start()) + 1, where)
        for m in FENCE.finditer(text)
        if m.group(2) == language
    ]


def _compile(source: str, filename: str) -> Any:
    return compile(source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@contextlib.contextmanager
def _running(block: Block) -> Iterator[tuple[dict[str, Any], Any]]:
    """Compile ``block``, run it in a fresh namespace with stdout captured, then check its
    ``# output`` comments. Yields the namespace and what ``eval`` returned (a coroutine
    for a block with top-level ``await``, which the caller awaits inside the block)."""
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    stdout = io.StringIO()
    code = _compile(block.source, f"{block.where}, block at line {block.line}")
    with contextlib.redirect_stdout(stdout):
        yield namespace, eval(code, namespace)
    printed = stdout.getvalue().splitlines()
    expected = block.expected_output
    assert printed == expected, f"{block.where}:{block.line}: printed {printed}, says {expected}"
    namespace["__stdout__"] = stdout.getvalue()


def _forget(namespace: dict[str, Any]) -> str:
    # The block's receivers are weakly connected: drop them before the next block runs,
    # or a second run of the same block would also reach the first run's receivers.
    output = str(namespace.get("__stdout__", ""))
    namespace.clear()
    gc.collect()
    return output


def run_block(block: Block) -> str:
    """Run a block without ``await``, outside any event loop (it may call
    ``anyio.run`` itself); return what it printed. Exceptions propagate."""
    with _running(block) as (namespace, result):
        assert result is None
    return _forget(namespace)


async def arun_block(block: Block) -> str:
    """Run a block with top-level ``await`` in the current event loop; return what it
    printed. Exceptions propagate."""
    with _running(block) as (namespace, result):
        await result
    return _forget(namespace)


TEXT = README.read_text(encoding="utf-8")
PYTHON = blocks(TEXT, "python")
SYNC = [b for b in PYTHON if not b.is_async]
ASYNC = [b for b in PYTHON if b.is_async]


def _id(block: Block) -> str:
    return f"line{block.line}"


@pytest.mark.parametrize("block", SYNC, ids=_id)
def test_sync_block_runs(block: Block) -> None:
    run_block(block)


@pytest.mark.anyio
@pytest.mark.parametrize("block", ASYNC, ids=_id)
async def test_async_block_runs(block: Block) -> None:
    await arun_block(block)


def test_readme_has_what_the_issue_lists() -> None:
    assert len(PYTHON) >= 5, "quick start, Quart, Starlette/FastAPI, receiver, blinker"
    quick_start = PYTHON[0]
    lines = [line for line in quick_start.source.splitlines() if line.strip()]
    assert len(lines) < 15, f"the quick start has {len(lines)} lines of code"
    assert "send_async" in quick_start.source
    assert quick_start.source.count("async def") == 2
    for heading in ("## Install", "## Quick start", "## Coming from blinker", "## Documentation"):
        assert heading in TEXT


def test_console_commands_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, re.MULTILINE))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(pyproject["project"]["optional-dependencies"])
    name = pyproject["project"]["name"]
    commands = [
        line.split("#")[0].strip()
        for block in blocks(TEXT, "console")
        for line in block.source.splitlines()
        if line.split("#")[0].strip()
    ]
    assert commands
    for command in commands:
        if command.startswith("make "):
            assert command.split()[1] in targets, command
        elif command.startswith("pip install "):
            requirement = command.removeprefix("pip install ").strip('"')
            match = re.fullmatch(rf"{name}(?:\[(\w+)\])?", requirement)
            assert match, command
            assert match.group(1) is None or match.group(1) in extras, command
        else:
            pytest.fail(f"README command not checked by this test: {command}")


#: Where the README's links to the repository's own files point. PyPI shows the README
#: away from the repository, so a relative link would be broken there.
REPOSITORY = "https://github.com/asignal/asignal/"


def test_readme_links_are_absolute_and_exist() -> None:
    targets = re.findall(r"\]\(([^)\s]+)\)", TEXT)
    assert targets
    for target in targets:
        assert target.startswith(("https://", "http://")), f"relative link: {target}"
        if target.startswith(REPOSITORY):
            # .../blob/main/<path> or .../tree/main/<path>: the file is in this checkout.
            path = re.sub(r"^(?:blob|tree)/main/", "", target.removeprefix(REPOSITORY))
            assert (ROOT / path.split("#")[0]).exists(), target


def test_project_urls_point_at_the_repository() -> None:
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert {"Source", "Issues", "Changelog", "Documentation"} <= set(urls)
    for name, url in urls.items():
        assert url.startswith(REPOSITORY.rstrip("/")), (name, url)
        path = re.sub(
            r"^(?:blob|tree)/main/?", "", url.removeprefix(REPOSITORY.rstrip("/")).lstrip("/")
        )
        if path and path != "issues":
            assert (ROOT / path).exists(), (name, url)


# The harness itself must be able to fail, or the tests above prove nothing.


@pytest.mark.anyio
async def test_harness_propagates_a_failing_block() -> None:
    with pytest.raises(ZeroDivisionError):
        await arun_block(Block("python", "import anyio\nawait anyio.sleep(0)\n1 / 0\n", 1))
    with pytest.raises(NameError):
        run_block(Block("python", "undefined_name\n", 1))


@pytest.mark.anyio
async def test_harness_checks_printed_output() -> None:
    with pytest.raises(AssertionError, match="printed"):
        run_block(Block("python", "print(1 + 1)  # 3\n", 1))
    assert run_block(Block("python", "print(1 + 1)  # 2\n", 1)) == "2\n"
    await_block = Block("python", "import anyio\nawait anyio.sleep(0)\nprint('x')  # y\n", 1)
    with pytest.raises(AssertionError, match="printed"):
        await arun_block(await_block)
