"""asignal: async-native, blinker-compatible signals for ASGI frameworks.

``import asignal`` where you had ``import blinker``: the same names and call shapes, and
``await sig.send_async(sender, **kwargs)`` runs coroutine receivers concurrently, with
priorities, timeouts and error policies. The Flask core signal set lives in
:mod:`asignal.signals`; the Quart and Starlette/FastAPI adapters in
:mod:`asignal.adapters`.
"""

from ._background import BackgroundRunner, BackgroundStats, Scheduled
from ._dispatch import ErrorPolicy
from ._receivers import ANY
from ._signal import NamedSignal, Namespace, Signal, default_namespace, signal
from ._weak_warning import WeakReceiverWarning

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
