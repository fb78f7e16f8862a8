"""A griffe extension for the API reference: asignal's docstrings are written for Sphinx,
and mkdocstrings renders Markdown. Before griffe parses a docstring, this rewrites:

- roles (``:class:`~asignal.Namespace```) into code spans;
- ``::`` literal blocks into fenced code (a lone ``::`` line leaves no stray colon);
- ``\\ s`` escapes into plain text;
- simple tables (``====`` borders) into Markdown tables, or lists when headerless;
- paragraphs written after the ``:param:``/``:raises:`` fields: griffe's Sphinx parser
  would make them part of the last field, so they move before the fields.

It also reads Sphinx's ``#:`` doc comments of attributes (on the lines above, or after
the value on the same line), which griffe ignores. ``:param:``, ``:returns:`` and
``:raises:`` fields themselves are left to griffe's Sphinx-style parser.
"""

from __future__ import annotations

import functools
import re
import textwrap
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:meth|class|func|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")
LITERAL = re.compile(r"(?P<pre>.?)::\n\n(?P<body>(?:(?:[ ]{4,}.*)?\n)+)")
FIELD = re.compile(
    r"^:(?:param|parameter|arg|argument|key|keyword|type|raises?|except|exception|var|ivar"
    r"|cvar|vartype|returns?|rtype|yields?)\b"
)
BORDER = re.compile(r"^=+(?:[ ]+=+)+[ ]*$")
DOC_COMMENT = re.compile(r"^\s*#:\s?(?P<text>.*)$")
TRAILING_DOC_COMMENT = re.compile(r"\s#:\s?(?P<text>.*)$")


def _role(match: re.Match[str]) -> str:
    # As in Sphinx, a leading ~ shows only the last component of the dotted name.
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _literal(match: re.Match[str]) -> str:
    # "text::" keeps one colon, "text ::" and a lone "::" keep none (as in Sphinx).
    pre = match.group("pre")
    lead = pre + ":" if pre.strip() else ""
    code = textwrap.dedent(match.group("body")).strip("\n")
    return f"{lead}\n\n```python\n{code}\n```\n\n"


def _fields_last(text: str) -> str:
    """Move the unindented paragraphs that follow the fields before them."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if FIELD.match(line)), None)
    if start is None:
        return text
    fields: list[str] = []
    trailing: list[str] = []
    in_trailing = False
    for line in lines[start:]:
        if FIELD.match(line):
            in_trailing = False
            fields.append(line)
        elif not line.strip() or (line[0].isspace() and not in_trailing):
            (trailing if in_trailing else fields).append(line)
        else:
            in_trailing = True
            trailing.append(line)
    if not trailing:
        return text
    head = "\n".join(lines[:start]).rstrip("\n")
    parts = [head, "\n".join(trailing).strip("\n"), "\n".join(fields).strip("\n")]
    return "\n\n".join(part for part in parts if part)


def _columns(border: str) -> list[tuple[int, int | None]]:
    spans = [(m.start(), m.end()) for m in re.finditer("=+", border)]
    return [
        (start, spans[i + 1][0] if i + 1 < len(spans) else None)
        for i, (start, _) in enumerate(spans)
    ]


def _cells(line: str, columns: list[tuple[int, int | None]]) -> list[str]:
    return [line[start:end].strip() for start, end in columns]


def _table(lines: list[str]) -> list[str]:
    """A simple table (its border lines included) as Markdown."""
    columns = _columns(lines[0])
    borders = [i for i, line in enumerate(lines) if BORDER.match(line)]
    header: list[str] | None = None
    body_start = 1
    if len(borders) == 3:
        header = _cells(" ".join(lines[1 : borders[1]]), columns)
        body_start = borders[1] + 1
    rows: list[list[str]] = []
    for line in lines[body_start : borders[-1]]:
        if not line.strip():
            continue
        cells = _cells(line, columns)
        if rows and not cells[0]:  # a continuation line of the previous row
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    if header is None:
        return [f"- {row[0]}: " + "; ".join(cell for cell in row[1:] if cell) for row in rows]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return table + ["| " + " | ".join(row) + " |" for row in rows]


def _tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if BORDER.match(lines[i]):
            # A table ends at the border followed by a blank line or the end of the text.
            end = next(
                (
                    j
                    for j in range(i + 1, len(lines))
                    if BORDER.match(lines[j]) and (j + 1 == len(lines) or not lines[j + 1].strip())
                ),
                None,
            )
            if end is not None:
                out.extend(_table(lines[i : end + 1]))
                i = end + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def to_markdown(text: str) -> str:
    """The docstring ``text`` with Sphinx roles, ``::`` blocks, ``\\ `` escapes and simple
    tables turned into Markdown, and any paragraph after its fields moved before them."""
    text = ROLE.sub(_role, text)
    text = _fields_last(text)
    text = _tables(text)
    text = LITERAL.sub(_literal, text + "\n")
    return text.replace("\\ ", "").rstrip("\n")


@functools.cache
def _source_lines(path: str) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def doc_comment(lines: list[str], lineno: int) -> str | None:
    """The ``#:`` doc comment of the assignment at 1-based ``lineno``: on the lines just
    above it, or after the value on that line. ``None`` when there is none."""
    above: list[str] = []
    i = lineno - 2
    while i >= 0 and (match := DOC_COMMENT.match(lines[i])):
        above.insert(0, match.group("text"))
        i -= 1
    if above:
        return "\n".join(above)
    if (match := TRAILING_DOC_COMMENT.search(lines[lineno - 1])) is not None:
        return match.group("text")
    return None


class RstDocstrings(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        if attr.docstring is not None or attr.lineno is None:
            return
        path = attr.filepath
        if isinstance(path, list):  # a namespace package: no source file of its own
            return
        text = doc_comment(_source_lines(str(path)), attr.lineno)
        if text:
            attr.docstring = griffe.Docstring(to_markdown(text), parent=attr)
