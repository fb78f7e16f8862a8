# pyright: strict
"""Code as a user writes it, type-checked in ``make test`` by ``mypy --strict`` and by
pyright in strict mode (the comment above), then run by :mod:`tests.typing.test_user_code`
so that what the checkers accept is also what happens.

If a change to asignal's annotations makes a checker reject this file, users' code breaks
the same way: fix the annotation, not this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import quart
from fastapi import FastAPI
from starlette.applications import Starlette

import asignal
from asignal import ANY, NamedSignal, Namespace, Signal, signals
from asignal.adapters import quart as quart_adapter
from asignal.adapters import starlette as starlette_adapter
from asignal.testing import capture

# Names no other test uses: importing this module connects receivers to these signals.
order_placed: NamedSignal = asignal.signal("typing-check-order-placed")
my_signals = Namespace()
order_shipped: NamedSignal = my_signals.signal("order-shipped", doc="An order left.")
audit = Signal(doc="Something worth keeping happened.")


# connect as a decorator keeps the function's own type: it can still be called directly.
@order_placed.connect
async def email_receipt(sender: object, /, *, order_id: int, **extra: Any) -> str:
    return f"receipt for {order_id}"


@order_placed.connect
def count_order(sender: object, /, **extra: Any) -> int:
    return 1


# connect_via and connect with asignal's options.
@order_shipped.connect_via("shop", priority=1, timeout=2.5)
async def notify_customer(sender: str, /, **extra: Any) -> None:
    pass


def log_everything(sender: object, /, **extra: Any) -> None:
    pass


same: Callable[..., None] = audit.connect(log_everything, ANY, weak=False)


async def place_order() -> list[str]:
    direct: str = await email_receipt("shop", order_id=1)
    # send_async: [(receiver, value), ...], in dispatch order.
    results: list[tuple[Callable[..., Any], Any]] = await order_placed.send_async(
        "shop", order_id=42, _timeout=1.0, _errors="collect"
    )
    values = [str(value) for _receiver, value in results]
    shipped = await order_shipped.send_async("shop", _sequential=True)
    receivers = [receiver for receiver, _value in shipped]
    return [direct, *values, *(getattr(r, "__name__", "?") for r in receivers)]


def audited() -> list[tuple[Any, dict[str, Any]]]:
    def record(sender: object, /, **extra: Any) -> None:
        pass

    # connected_to: a context manager that connects for the block only.
    with audit.connected_to(record, sender="shop"), capture(audit) as sent:
        audit.send("shop", what="refund")
    with audit.muted():
        assert audit.send("shop", what="ignored") == []
    assert not audit.is_muted
    assert audit.receivers
    has: bool = audit.has_receivers_for("shop")
    assert has
    return sent


def quart_app() -> quart.Quart:
    app = quart.Quart(__name__)
    integration: quart_adapter.QuartIntegration = quart_adapter.install(app, timeout=0.5)
    assert integration.app is app
    return app


def starlette_apps() -> tuple[Starlette, FastAPI]:
    starlette_app = Starlette()
    fastapi_app = FastAPI()
    handle: starlette_adapter.StarletteIntegration = starlette_adapter.install(
        starlette_app, timeout=0.5, errors="collect"
    )
    starlette_adapter.install(fastapi_app)
    assert handle is not None

    # A framework signal, for one app only (connect_via holds the receiver strongly).
    @signals.request_finished.connect_via(fastapi_app)
    async def log_response(app: object, /, *, request: Any, response: Any, **extra: Any) -> None:
        status: int = response.status_code
        assert status

    assert list(signals.request_finished.receivers_for(fastapi_app)) == [log_response]
    return starlette_app, fastapi_app


def main() -> None:
    assert anyio.run(place_order) == [
        "receipt for 1",
        "receipt for 42",
        "1",
        "notify_customer",
    ]
    [(sender, kwargs)] = audited()
    assert (sender, kwargs) == ("shop", {"what": "refund"})
    quart_app()
    starlette_apps()


if __name__ == "__main__":
    main()
