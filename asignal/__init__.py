"""asignal: async-native, blinker-compatible signals for ASGI frameworks.

``import asignal`` where you had ``import blinker``: the same names and call shapes, and
``await sig.send_async(sender, **kwargs)`` runs coroutine receivers concurrently, with
priorities, timeouts and error policies. The Flask core signal set lives in
:mod:`asignal.signals`; the Quart and Starlette/FastAPI adapters in
:mod:`asignal.adapters`.
"""

from typing import TYPE_CHECKING, Any

from ._dispatch import ErrorPolicy
from ._receivers import ANY
from ._signal import NamedSignal, Namespace, Signal, default_namespace, signal
from ._weak_warning import WeakReceiverWarning

if TYPE_CHECKING:
    from ._background import BackgroundRunner, BackgroundStats, Scheduled

__all__ = [
    "ANY",
    "BackgroundRunner",
    "BackgroundStats",
    "ErrorPolicy",
    "NamedSignal",
    "Namespace",
    "Scheduled",
    "Signal",
    "WeakReceiverWarning",
    "default_namespace",
    "signal",
]

__version__ = "0.1.0"


# The background runner imports anyio and logging: it is loaded by the first use of one
# of its names (PEP 562), so ``import asignal`` stays cheap.
_LAZY = frozenset({"BackgroundRunner", "BackgroundStats", "Scheduled"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import _background

        value = getattr(_background, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
