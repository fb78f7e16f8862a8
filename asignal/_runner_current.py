"""Which :class:`~asignal.BackgroundRunner` is *current* (:func:`current_runner`):

1. the runner made current in this context by ``async with runner:`` (for its body) or by
   :meth:`BackgroundRunner.activate`, unless it has finished exiting;
2. otherwise, on a thread that runs an event loop, the most recently entered runner that
   is still open on that same event loop. This is how a request task of a server, which
   is not a child of the task that entered the app's runner in its lifespan (and so does
   not inherit its context variables), still finds the app's runner;
3. otherwise, on a thread that runs no event loop (an anyio worker thread, such as the
   one that runs a FastAPI sync endpoint, or a plain thread), the most recently entered
   runner still open in the process.

Rules 2 and 3 can only guess when several runners are open at once (several apps in one
process); adapters therefore activate their app's runner for every connection they handle,
so that rule 1 applies inside a request.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._background import BackgroundRunner

__all__ = ["current_runner", "require_runner"]

_current: contextvars.ContextVar[BackgroundRunner | None] = contextvars.ContextVar(
    "asignal_background_runner", default=None
)
#: Runners entered and not yet finished exiting, oldest first (the fallback of rule 2/3).
_open: list[BackgroundRunner] = []


class _Activation:
    __slots__ = ("runner", "token")

    def __init__(self, runner: BackgroundRunner) -> None:
        self.runner = runner

    def __enter__(self) -> None:
        self.token = _current.set(self.runner)

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self.token)


def _loop_token() -> object | None:
    """The running event loop's native token in this thread (None: no loop here)."""
    from anyio.lowlevel import current_token

    try:
        return current_token().native_token
    except Exception:
        return None


def current_runner() -> BackgroundRunner | None:
    """The current :class:`BackgroundRunner`, or ``None``; see the module's rules (the
    runner of ``async with``/``activate()`` in this context, else the most recently
    entered one open on this thread's event loop, else, on a thread without an event
    loop, the most recently entered one still open in the process)."""
    runner = _current.get()
    if runner is not None and not runner._finished:
        return runner
    if not _open:
        return None
    open_now = tuple(_open)
    native = _loop_token()
    if native is None:
        return open_now[-1]
    for candidate in reversed(open_now):
        token = candidate._token
        if token is not None and token.native_token is native:
            return candidate
    return None


def require_runner(what: str) -> BackgroundRunner:
    """The current runner (as :func:`current_runner`), for ``what`` that has to schedule.

    :param what: names who needs it in the error, e.g. ``"background receiver
        app.on_login of signal 'user-logged-in'"``.
    :raises RuntimeError: no runner is current; the message names ``what`` and says how
        to get one.
    """
    runner = current_runner()
    if runner is None:
        raise RuntimeError(
            f"{what} needs a background runner, and none is running here. Run the code "
            "inside 'async with asignal.BackgroundRunner():' (or 'with runner.activate():'"
            " for a runner entered elsewhere), or serve the app with an asignal adapter "
            "installed, which runs one for the app's lifespan."
        )
    return runner
