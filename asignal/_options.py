"""Checks of ``send``/``send_async`` options that are not plain values: the wrappers, and
payload keywords that look like a misspelt option.

Options start with an underscore so they never collide with a payload keyword (blinker's
convention). The flip side: ``_timout=0.01`` would silently reach every receiver as
payload, and the send would run without a timeout. A keyword that starts with ``_`` and
is a near-miss of an option is refused with the right name; other ``_`` keywords stay
payload, as in blinker. Only sends with such keywords pay for the check, once per name.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SEND_ASYNC_OPTIONS", "SEND_OPTIONS", "check_underscored", "check_wrapper"]

SEND_OPTIONS: Final = ("_async_wrapper",)
SEND_ASYNC_OPTIONS: Final = (
    "_sync_wrapper",
    "_sequential",
    "_timeout",
    "_receiver_timeout",
    "_limit",
    "_errors",
)

# (keyword, method) -> the option it is a near-miss of, or "" for a genuine payload name.
_verdicts: dict[tuple[str, str], str] = {}
_MAX_VERDICTS: Final = 1024


def check_underscored(key: str, options: tuple[str, ...], method: str) -> None:
    """Raise ``TypeError`` if ``key`` (a payload keyword starting with ``_``) is a
    near-miss of one of ``options``, the options of ``method``."""
    verdict = _verdicts.get((key, method))
    if verdict is None:
        import difflib

        close = difflib.get_close_matches(key, options, n=1, cutoff=0.8)
        verdict = close[0] if close else ""
        if len(_verdicts) < _MAX_VERDICTS:
            _verdicts[key, method] = verdict
    if verdict:
        raise TypeError(
            f"{method}() got an unknown option {key!r}; did you mean {verdict!r}? "
            "(Keywords that start with '_' are reserved for options; rename a payload "
            "keyword that looks like one.)"
        )


def check_wrapper(value: object, name: str, what: str) -> None:
    """Raise ``TypeError`` naming the option ``name`` when ``value`` is not callable."""
    if not callable(value):
        raise TypeError(f"{name} must be a callable that turns {what}, or None; got {value!r}")
