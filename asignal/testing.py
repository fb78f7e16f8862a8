"""Helpers for users' tests: record what a signal sends.

The ``captured_templates`` pattern from Flask's documentation, for any signal::

    from asignal.testing import capture
    from asignal.signals import template_rendered

    async def test_index_renders_index_html(client):
        with capture(template_rendered) as sent:
            await client.get("/")
        [(app, kwargs)] = sent
        assert kwargs["template"].name == "index.html"
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

from ._receivers import ANY
from ._signal import Signal

__all__ = ["capture"]


@contextmanager
def capture(signal: Signal, sender: Any = ANY) -> Generator[list[tuple[Any, dict[str, Any]]]]:
    """Record every send of ``signal`` (by ``sender``; default: any sender) while the
    block runs.

    Yields a list that grows by one ``(sender, kwargs)`` pair per send, in the order the
    sends happened. The recorder is a sync receiver, so it sees both :meth:`Signal.send`
    and :meth:`Signal.send_async`, returns ``None``, and works in sync and async tests
    alike. It is disconnected on exit, also when the block raises.
    """
    sent: list[tuple[Any, dict[str, Any]]] = []

    def record(sender: Any, /, **kwargs: Any) -> None:
        sent.append((sender, kwargs))

    with signal.connected_to(record, sender):
        yield sent
