"""The lifespan: ``serving_*`` signals and the background runner that lives as long as
the app serves; and the per-connection runner of an app served without a lifespan."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Receive, Scope, Send

from ... import signals
from ..._background import DEFAULT, BackgroundRunner, Scheduled
from .._common import Emitter

if TYPE_CHECKING:
    from .middleware import SignalMiddleware

__all__ = ["CallRunner", "Lifespan", "RunnerSlot", "report_lifespan", "reporting_lifespan"]

logger: logging.Logger = logging.getLogger("asignal")

#: The type of a Starlette router's ``lifespan_context``.
Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]

_Work = tuple[Callable[..., Awaitable[Any]], tuple[Any, ...], str, Any, contextvars.Context]


class RunnerSlot:
    """Where an app's connections find the background runner of its lifespan."""

    __slots__ = ("runner",)

    def __init__(self) -> None:
        #: The runner while the lifespan runs, else ``None``.
        self.runner: BackgroundRunner | None = None


class CallRunner(BackgroundRunner):
    """The runner of one connection of an app served without a lifespan (httpx's
    ``ASGITransport``, a ``TestClient`` outside ``with``): made current for the call, it
    only collects what is scheduled; :meth:`run` runs it once the application call has
    returned, on a real runner with the installed bounds, before the ASGI call ends. The
    response is out by then, and nothing outlives the call.

    It holds at most ``limit`` calls (the installed ``max_pending``); past that, a call
    is dropped and logged, as a full runner drops it. Building one costs a list: it is
    never entered itself, so a connection that schedules nothing pays for nothing else."""

    # Read by current_runner(); a CallRunner is never entered, so never finished.
    _finished = False

    def __init__(self, limit: int) -> None:  # no super().__init__(): see the docstring
        #: The calls collected, in order, until :meth:`run` runs them.
        self.work: list[_Work] = []
        #: The most calls held at once (the installed ``max_pending``).
        self.limit: int = limit
        self._forward: BackgroundRunner | None = None

    def __repr__(self) -> str:
        return f"<CallRunner pending={len(self.work)}>"

    async def schedule(
        self,
        fn: Callable[..., Awaitable[Any]],
        /,
        *args: Any,
        name: str,
        timeout: Any = DEFAULT,  # noqa: ASYNC109 (the runner's signature)
        context: contextvars.Context | None = None,
    ) -> Scheduled:
        """As :meth:`schedule_nowait`; raises ``RuntimeError`` naming the call when the
        connection's runner is full."""
        scheduled = self.schedule_nowait(fn, *args, name=name, timeout=timeout, context=context)
        if scheduled is None:
            raise RuntimeError(f"cannot schedule {name}: the connection's runner is full")
        return scheduled

    def schedule_nowait(
        self,
        fn: Callable[..., Awaitable[Any]],
        /,
        *args: Any,
        name: str,
        timeout: Any = DEFAULT,
        context: contextvars.Context | None = None,
    ) -> Scheduled | None:
        """Hold ``await fn(*args)`` to run after the response (as
        :meth:`asignal.BackgroundRunner.schedule_nowait`); ``None`` when ``limit`` calls
        are already held (logged)."""
        forward = self._forward
        if forward is not None:
            # Scheduled by work that is already running: straight onto its runner.
            return forward.schedule_nowait(fn, *args, name=name, timeout=timeout, context=context)
        if len(self.work) >= self.limit:
            logger.warning(
                "background call %s dropped: the connection has %d calls pending",
                name,
                self.limit,
            )
            return None
        if context is None:
            context = contextvars.copy_context()
        # list.append is atomic: a FastAPI sync endpoint may schedule from a worker thread.
        self.work.append((fn, args, name, timeout, context))
        return Scheduled(None, name)

    async def run(self, emitter: Emitter) -> None:
        """Run what was scheduled, bounded as the installed runner would be."""
        async with BackgroundRunner(**emitter.runner_options) as runner:
            self._forward = runner
            work, self.work = self.work, []
            for fn, args, name, timeout, context in work:
                runner.schedule_nowait(fn, *args, name=name, timeout=timeout, context=context)


def reporting_lifespan(
    lifespan: Lifespan,
    emitter: Emitter,
    slot: RunnerSlot,
    installed: Callable[[], bool],
    changed: Callable[[], None],
) -> Lifespan:
    """``lifespan`` (a router's ``lifespan_context``) with the app's background runner
    around it and the ``serving_*`` signals: ``serving_started`` once the app's start-up
    has run, ``serving_stopped`` once its shutdown has run and the runner has drained,
    ``got_serving_exception`` if either raised (the lifespan still fails). Starlette
    tells the server only after each, so receivers run before it hears the news.
    ``slot.runner`` is the runner while it runs, for the connections to use; ``changed``
    is called when it comes and goes."""

    @asynccontextmanager
    async def reporting(app: Any) -> AsyncIterator[Any]:
        # The lifespan's exception is taken out of the runner's task group, which would
        # wrap it in an ExceptionGroup, and re-raised as itself once the runner is done.
        failure: Exception | None = None
        async with BackgroundRunner(**emitter.runner_options) as runner:
            try:
                async with lifespan(app) as state:
                    slot.runner = runner
                    changed()
                    try:
                        if installed():
                            await emitter.send(signals.serving_started)
                        yield state
                    finally:
                        # New connections report within their call from here on.
                        slot.runner = None
                        changed()
            except Exception as error:
                failure = error
        if failure is not None:
            if installed():
                await emitter.send(signals.got_serving_exception, exception=failure)
            raise failure
        if installed():
            await emitter.send(signals.serving_stopped)

    return reporting


async def report_lifespan(
    middleware: SignalMiddleware, scope: Scope, receive: Receive, send: Send
) -> None:
    """The lifespan of an ASGI app wrapped directly in :class:`SignalMiddleware`: the
    same signals and runner as :func:`reporting_lifespan`, from the ASGI messages.

    ``lifespan.shutdown.complete`` is held back until the runner has drained and
    ``serving_stopped`` has been sent, so the server hears it last."""
    emitter = middleware.emitter
    reported: BaseException | None = None
    shutdown: Message | None = None

    async def send_reporting(message: Message) -> None:
        nonlocal reported, shutdown
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            await emitter.send(signals.serving_started)
        elif kind == "lifespan.shutdown.complete":
            shutdown = message
            return
        elif kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
            # The failure is sent from the app's ``except`` block (Starlette's router
            # does), so the exception is the one being handled; report it before the
            # server (or test client) reacts to the failure by stopping.
            error = sys.exc_info()[1]
            if not isinstance(error, Exception):
                error = RuntimeError(message.get("message") or kind)
            reported = error
            await emitter.send(signals.got_serving_exception, exception=error)
        await send(message)

    failure: Exception | None = None
    async with BackgroundRunner(**emitter.runner_options) as runner:
        middleware.slot.runner = runner
        try:
            await middleware.app(scope, receive, send_reporting)
        except Exception as error:
            failure = error
        finally:
            middleware.slot.runner = None
    if failure is not None:
        if failure is not reported:
            await emitter.send(signals.got_serving_exception, exception=failure)
        raise failure
    if shutdown is not None:
        await emitter.send(signals.serving_stopped)
        await send(shutdown)
