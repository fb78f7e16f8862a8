"""The values a :class:`~asignal.BackgroundRunner` hands out: :class:`Scheduled` (the
record of a scheduled call), :class:`BackgroundStats` (its counters) and :data:`DEFAULT`
(the ``timeout=`` that means "the runner's ``default_timeout``").

Plain classes (and the check of ``max_pending``) with no import of anyio or logging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._background import BackgroundRunner

__all__ = ["DEFAULT", "BackgroundStats", "Scheduled"]


class _Default:
    """Type of :data:`DEFAULT`: "use the runner's ``default_timeout``"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<runner default>"


#: The ``timeout=`` of :meth:`BackgroundRunner.schedule` when none is given: the runner's
#: ``default_timeout``. Pass ``None`` for no limit at all.
DEFAULT: Final = _Default()


def _check_max_pending(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_pending must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"max_pending must be >= 1, got {value!r}")
    return value


class Scheduled:
    """What a send returns for a background receiver instead of its eventual value: the
    call was handed to ``runner`` (``None`` when it runs without one, e.g. after the
    response of an app served without a lifespan) under ``name``.
    """

    __slots__ = ("name", "runner")

    def __init__(self, runner: BackgroundRunner | None, name: str) -> None:
        #: The :class:`BackgroundRunner` the call runs on, or ``None``.
        self.runner: BackgroundRunner | None = runner
        #: The receiver's qualified name, or the name the call was scheduled under.
        self.name: str = name

    def __repr__(self) -> str:
        return f"<Scheduled {self.name}>"


class BackgroundStats:
    """Counts of a :class:`BackgroundRunner`'s calls since it was created. A call is one
    function scheduled with ``schedule``/``schedule_nowait``, one ``send_background``, or
    one background receiver of one send (a send with three counts three, though they
    start as one task).

    Once the runner has exited, ``scheduled == completed + failed + timed_out +
    cancelled``; ``dropped`` calls were never scheduled.
    """

    # A plain class, not a dataclass: building a dataclass costs import time.
    __slots__ = ("cancelled", "completed", "dropped", "failed", "scheduled", "timed_out")
    _FIELDS: Final = ("scheduled", "completed", "failed", "timed_out", "cancelled", "dropped")

    def __init__(self) -> None:
        #: Calls accepted.
        self.scheduled: int = 0
        #: Calls that returned (their value is discarded).
        self.completed: int = 0
        #: Calls that raised an exception (logged).
        self.failed: int = 0
        #: Calls cancelled by their timeout (logged).
        self.timed_out: int = 0
        #: Calls still pending when the drain ran out of time, cancelled and logged by name.
        self.cancelled: int = 0
        #: Calls refused because the runner was full (sync callers only) or not accepting
        #: (not entered yet, draining, or exited); logged.
        self.dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name, in the order above."""
        return {name: getattr(self, name) for name in self._FIELDS}

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"BackgroundStats({counts})"
