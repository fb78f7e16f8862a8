"""A griffe extension for the API reference: asignal's docstrings are written for Sphinx
(``:class:`~asignal.Namespace```, ``::`` literal blocks, ``\\ s`` escapes), and
mkdocstrings renders Markdown. This rewrites those three constructs into Markdown before
the docstrings are parsed; ``:param:``, ``:returns:`` and ``:raises:`` fields are left to
griffe's Sphinx-style parser.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:meth|class|func|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")
LITERAL = re.compile(r"::\n\n((?:(?:[ ]{4,}.*)?\n)+)")


def _role(match: re.Match[str]) -> str:
    # As in Sphinx, a leading ~ shows only the last component of the dotted name.
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _literal(match: re.Match[str]) -> str:
    code = textwrap.dedent(match.group(1)).strip("\n")
    return f":\n\n```python\n{code}\n```\n\n"


def to_markdown(text: str) -> str:
    """The docstring ``text`` with Sphinx roles, ``::`` blocks and ``\\ `` escapes
    turned into Markdown."""
    text = ROLE.sub(_role, text)
    text = LITERAL.sub(_literal, text + "\n")
    return text.replace("\\ ", "").rstrip("\n")


class RstDocstrings(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
