"""The documentation cannot drift: its code runs, the site builds with ``--strict``, and
every public name has a description in the API reference.

Every ```python block of the pages listed in :data:`RUN` runs in a fresh namespace (the
README's harness, :mod:`tests.test_readme`), with its ``print(...)  # output`` comments
checked; ```py blocks are shown, not run (signatures, fragments). Those pages' examples
must also run as scripts: no top-level ``await``. Then ``mkdocs build --strict`` builds
the site into a temporary directory, so a broken link, a missing nav page or an API
reference to a name that no longer exists fails the tests; and the built API page is read
back, so a public name (in any public module's ``__all__``, and the public members of
public classes) that renders without a description fails them too.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import griffe
import pytest

from tests.test_readme import Block, blocks, run_block

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


def _id(block: Block) -> str:
    return f"{block.where.removeprefix('docs/')}:{block.line}"


@pytest.mark.parametrize("block", PYTHON, ids=_id)
def test_example_runs_as_a_script(block: Block) -> None:
    # A reader copies an example into a file: top-level await would be a SyntaxError
    # there, so each block must compile as a script, and then run as one (an async
    # example ends with anyio.run(main)).
    compile(block.source, _id(block), "exec")
    run_block(block)


def test_every_page_has_examples() -> None:
    for page in RUN:
        assert blocks((DOCS / page).read_text(encoding="utf-8"), "python", page), page


# --- the API reference, read back --------------------------------------------------------


def _public_modules(module: griffe.Module) -> Iterator[griffe.Module]:
    yield module
    for sub in module.modules.values():
        # An imported module (``from .. import signals``) is an alias, not a submodule.
        if not sub.is_alias and not sub.name.startswith("_"):
            assert isinstance(sub, griffe.Module)
            yield from _public_modules(sub)


def public_names(root: Path, package: str) -> list[str]:
    """The dotted names a user can reach: every public module's ``__all__`` (its public,
    locally defined members when it has none), and the public members of those classes,
    with what they inherit from a class not documented on its own (``Signal``'s
    ``connect``, from a private base). Read statically by griffe, so a module whose
    optional dependency is missing counts."""
    names: list[str] = []
    classes: list[tuple[str, griffe.Class]] = []
    for module in _public_modules(griffe.load(package, search_paths=[root, *sys.path])):
        if module.exports is not None:
            exported = [str(name) for name in module.exports]
        else:
            exported = [
                name
                for name, member in module.members.items()
                if not name.startswith("_") and not member.is_alias and not member.is_module
            ]
        for name in exported:
            path = f"{module.path}.{name}"
            names.append(path)
            target = module[name]
            if target.is_alias:
                target = target.final_target
            if isinstance(target, griffe.Class):
                classes.append((path, target))
    public_classes = {cls.canonical_path for _, cls in classes}
    for path, cls in classes:
        # What a public base class has is documented there (NamedSignal's send).
        documented_above = {
            member
            for base in cls.mro()
            if base.canonical_path in public_classes
            for member in base.all_members
        }
        names.extend(
            f"{path}.{member}"
            for member in cls.all_members
            if not member.startswith("_")
            and (member in cls.members or member not in documented_above)
        )
    return names


class _ApiPage(HTMLParser):
    """Each mkdocstrings object of a page (a ``doc-object`` div with a heading ``id``)
    and the text of its own ``doc-contents``: without its signature and without the
    objects nested in it (a class's members)."""

    def __init__(self) -> None:
        super().__init__()
        self.descriptions: dict[str, str] = {}
        self._divs: list[tuple[str, list[str] | None]] = []  # (kind, object's text parts)
        self._objects: list[list[str]] = []
        self._pending: list[list[str]] = []  # objects still waiting for their heading id

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "div":
            if "doc-object" in classes:
                parts: list[str] = []
                self._objects.append(parts)
                self._pending.append(parts)
                self._divs.append(("object", parts))
            elif "doc-contents" in classes and self._objects:
                self._divs.append(("contents", self._objects[-1]))
            elif "doc-signature" in classes:
                self._divs.append(("signature", None))
            else:
                self._divs.append(("other", None))
        elif "doc-heading" in classes and self._pending and (ident := dict(attrs).get("id")):
            self.descriptions[ident] = ""
            self._pending[-1].append(ident)  # the first part is the id
            self._pending.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._divs:
            kind, parts = self._divs.pop()
            if kind == "object":
                self._objects.pop()
                if parts:
                    self.descriptions[parts[0]] = " ".join(" ".join(parts[1:]).split())

    def handle_data(self, data: str) -> None:
        for kind, parts in reversed(self._divs):
            if kind == "signature" or kind == "object":
                return  # a signature, a heading, or outside any contents
            if kind == "contents":
                if parts is self._objects[-1] and parts:
                    parts.append(data)
                return


def rendered_descriptions(html: str) -> dict[str, str]:
    """``{heading id: the object's own rendered description}`` for an API page."""
    page = _ApiPage()
    page.feed(html)
    page.close()
    return page.descriptions


def test_api_page_reader_sees_missing_descriptions() -> None:
    html = (
        '<div class="doc doc-object"><h2 id="m.A" class="doc doc-heading">A</h2>'
        '<div class="doc doc-contents"><div class="doc-signature">A()</div><p>An A.</p>'
        '<div class="doc doc-object"><h3 id="m.A.f" class="doc doc-heading">f</h3>'
        '<div class="doc doc-contents"><div class="doc-signature">f()</div></div></div>'
        "<p>More.</p></div></div>"
    )
    assert rendered_descriptions(html) == {"m.A": "An A. More.", "m.A.f": ""}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return site_dir


def test_mkdocs_build_strict(site: Path) -> None:
    assert (site / "api" / "index.html").exists()


#: Public attributes of classes in files other helpers own, still without a docstring (or
#: a ``#:`` comment): each owner adds one. The list may only shrink: a name documented
#: since fails the test above until it is removed from here.
PENDING: set[str] = set()


def test_every_public_name_has_a_rendered_description(site: Path) -> None:
    described = rendered_descriptions((site / "api" / "index.html").read_text(encoding="utf-8"))
    names = public_names(ROOT, "asignal")
    assert "asignal.signals.request_started" in names  # the walk itself finds them
    assert "asignal.Signal.is_muted" in names
    assert "asignal.Signal.connect" in names  # inherited, from asignal._connecting
    undocumented = [name for name in names if not described.get(name)]
    assert sorted(set(undocumented) - PENDING) == [], "add each to docs/api.md, with a docstring"
    assert sorted(PENDING - set(undocumented)) == [], "documented now: remove from PENDING"


def test_api_page_has_no_leftover_markup(site: Path) -> None:
    described = rendered_descriptions((site / "api" / "index.html").read_text(encoding="utf-8"))
    for name, text in described.items():
        assert "====" not in text, f"{name}: an RST table rendered as text"
        assert ":class:`" not in text, f"{name}: an RST role rendered as text"
        assert "\n:\n" not in f"\n{text}\n", f"{name}: a stray ':' line"


def _rst_docstrings() -> ModuleType:
    path = DOCS / "_ext" / "rst_docstrings.py"
    spec = importlib.util.spec_from_file_location("rst_docstrings", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docstring_markup_becomes_markdown() -> None:
    module = _rst_docstrings()
    text = (
        ":class:`~asignal.Namespace` and :mod:`asignal.signals`; "
        "``BaseException``\\ s::\n\n    x = 1\n\nafter"
    )
    assert module.to_markdown(text) == (
        "`Namespace` and `asignal.signals`; ``BaseException``s:\n\n```python\nx = 1\n```\n\nafter"
    )


def test_a_lone_literal_marker_leaves_no_colon() -> None:
    module = _rst_docstrings()
    assert module.to_markdown("Decorator form.\n\n::\n\n    @sig.connect\n") == (
        "Decorator form.\n\n\n\n```python\n@sig.connect\n```"
    )
    assert module.to_markdown("Example ::\n\n    x = 1\n") == "Example\n\n```python\nx = 1\n```"


def test_paragraphs_after_the_fields_move_before_them() -> None:
    module = _rst_docstrings()
    text = (
        "Send.\n\n:param x: one\n    more.\n:raises TypeError: bad.\n"
        "Receivers' exceptions propagate.\n\nCancelling cancels."
    )
    assert module.to_markdown(text) == (
        "Send.\n\nReceivers' exceptions propagate.\n\nCancelling cancels.\n\n"
        ":param x: one\n    more.\n:raises TypeError: bad."
    )


def test_simple_tables_become_markdown() -> None:
    module = _rst_docstrings()
    headerless = (
        "Where:\n\n=========  ==========\n``a``      first\n           line\n"
        "``b``      second\n=========  ==========\n\nafter"
    )
    assert module.to_markdown(headerless) == (
        "Where:\n\n- ``a``: first line\n- ``b``: second\n\nafter"
    )
    with_header = "=====  =====\nname   kind\n=====  =====\nx      int\n=====  =====\n"
    assert module.to_markdown(with_header) == "| name | kind |\n|---|---|\n| x | int |"


def test_doc_comments_are_read() -> None:
    module = _rst_docstrings()
    lines = ["#: The key.", "#: Second line.", "KEY = 1", "OTHER = 2  #: trailing", "NONE = 3"]
    assert module.doc_comment(lines, 3) == "The key.\nSecond line."
    assert module.doc_comment(lines, 4) == "trailing"
    assert module.doc_comment(lines, 5) is None
