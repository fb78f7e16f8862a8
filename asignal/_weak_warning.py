"""The weak-reference pitfall, diagnosed.

A receiver defined inside a function and connected weakly (the default, as in blinker)
dies when the function returns, and then silently never runs. We cannot tell at connect
time whether that is meant, but a receiver that looks short-lived (a ``<locals>``
function, a lambda, a ``functools.partial``) and is collected before any send reached it
almost never is: that is when :class:`WeakReceiverWarning` is emitted.

The cost stays off the send path: the connect site is noted only for such receivers, and
the note is dropped when a plan that contains the receiver is built (that happens once
per connect/disconnect, before the first send that calls it), not by the send itself.
"""

from __future__ import annotations

import functools
import sys
import types
import warnings
from typing import Any, Final, TypeAlias

__all__ = ["WeakReceiverWarning", "connect_site", "warn_collected"]

Site: TypeAlias = tuple[str, str, str, int]
#: Connect sites seen so far, each stored once (bounded: beyond it, sites are not shared).
_sites: Final[dict[Site, Site]] = {}
_MAX_SITES: Final = 4096

#: Where duplicates are remembered: one warning per connect site and receiver name, as
#: ``warnings.warn`` does per call site (a receiver connected in a loop warns once).
_registry: Final[dict[Any, Any]] = {}


class WeakReceiverWarning(UserWarning):
    """A weakly connected receiver was garbage-collected before any send reached it.

    Emitted for receivers that look short-lived: functions defined inside another
    function (their qualified name contains ``<locals>``), lambdas and
    ``functools.partial`` objects, connected with ``weak=True`` (the default). The
    message names the receiver and the ``file:line`` of the ``connect`` call; the
    warning is attributed to that line.

    Fix it by connecting with ``weak=False`` (or ``connect_via``, which holds receivers
    strongly), or by keeping a reference to the receiver for as long as it should run.
    Silence it with ``warnings.filterwarnings("ignore", category=WeakReceiverWarning)``.
    """


def connect_site(receiver: Any) -> Site | None:
    """``(module, qualified name, file, line)`` of a ``connect`` call for a receiver that
    looks short-lived, or ``None``. Called from ``Signal.connect`` itself."""
    if isinstance(receiver, functools.partial):
        qualname = f"functools.partial of {getattr(receiver.func, '__qualname__', receiver.func)}"
    elif type(receiver) is types.MethodType:
        # A bound method lives as long as its instance: that lifetime is the point of
        # holding it weakly.
        return None
    else:
        name = getattr(receiver, "__qualname__", None)
        if type(name) is not str or ("<locals>" not in name and "<lambda>" not in name):
            return None
        qualname = name
    # The first frame outside asignal: connect's caller, or the user of connect_via.
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != "asignal" and not name.startswith("asignal."):
            break
        frame = frame.f_back
    if frame is None:  # pragma: no cover - connect is always called from somewhere
        return None
    module = getattr(receiver, "__module__", None) or "?"
    site = (module, qualname, frame.f_code.co_filename, frame.f_lineno)
    # Receivers made in a loop or a factory share their site: one tuple for them all,
    # not one per record (a record must stay small; see benchmarks/bench_registry.py).
    if len(_sites) < _MAX_SITES:
        return _sites.setdefault(site, site)
    return site


def warn_collected(site: Site, signal: object) -> None:
    """Emit the warning for a receiver collected before any send reached it. Runs in a
    weak-reference callback, so it must never raise for reasons of its own."""
    module, qualname, filename, lineno = site
    name = qualname if module in ("?", "builtins") else f"{module}.{qualname}"
    label = getattr(signal, "name", None)
    of_signal = repr(label) if label is not None else repr(signal)
    message = (
        f"receiver {name} of signal {of_signal}, connected weakly at {filename}:{lineno}, was "
        "garbage-collected before any send reached it; connect it with weak=False or keep "
        "a reference to it"
    )
    try:
        warnings.warn_explicit(message, WeakReceiverWarning, filename, lineno, registry=_registry)
    except Warning:
        raise  # the user turned the warning into an error: let them see it
    except Exception:  # pragma: no cover - e.g. during interpreter shutdown
        pass
