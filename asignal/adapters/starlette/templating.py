"""Jinja2 templates that send ``before_render_template`` and ``template_rendered``.

The only part of the adapter that needs ``jinja2``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

try:
    import jinja2
except ImportError as _error:  # pragma: no cover - exercised in a venv without jinja2
    raise ImportError(
        'asignal\'s Jinja2Templates needs jinja2: pip install "asignal[starlette]"'
    ) from _error
from starlette.background import BackgroundTask
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates as _StarletteJinja2Templates
from starlette.types import Receive, Scope, Send

from ... import signals
from .._common import Budget, Emitter
from .flash import emitter_of, get_flashed_messages

__all__ = ["Jinja2Templates", "TemplateResponse"]

_NOBODY: tuple[Emitter | None, Budget | None] = (None, None)


class TemplateResponse(HTMLResponse):
    """The response of :meth:`Jinja2Templates.TemplateResponse`: an
    :class:`~starlette.responses.HTMLResponse` with ``template`` (the
    ``jinja2.Template``) and ``context`` (the dict it renders with), as Starlette's own
    template response, which it replaces (including the ``http.response.debug``
    message its ``TestClient`` reads).

    The signals come from the app installed for ``context["request"]`` (which
    :meth:`Jinja2Templates.TemplateResponse` puts there). When nobody listens to
    ``before_render_template`` or ``template_rendered``, the
    template renders in the constructor, as Starlette's does. Otherwise rendering waits
    for the response to be sent (``__call__``), so that both signals are awaited around
    it and ``before_render_template`` receivers can still change ``context``. Reading
    ``body`` earlier renders it on the spot; the signals still fire when it is sent.
    """

    def __init__(
        self,
        template: Any,
        context: dict[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        #: The template to render (a Jinja2 ``Template``).
        self.template: Any = template
        #: The template's context; ``before_render_template`` receivers may change it
        #: while rendering waits for the response to be sent.
        self.context: dict[str, Any] = context
        self._pending = False
        # The app reporting the request sends the signals, within the request's budget.
        request = context.get("request")
        emitter, budget = emitter_of(request) if isinstance(request, HTTPConnection) else _NOBODY
        if emitter is not None and not (
            emitter.wants(signals.before_render_template)
            or emitter.wants(signals.template_rendered)
        ):
            emitter = None
        self._emitter = emitter
        self._budget = budget
        if emitter is None:
            super().__init__(template.render(context), status_code, headers, media_type, background)
            return
        # An empty placeholder body sets the headers Starlette would set (content-length
        # included); the length is corrected once the template has rendered.
        super().__init__(b"", status_code, headers, media_type, background)
        self._pending = True

    @property
    def body(self) -> bytes | memoryview:
        """The rendered body; reading it before the response is sent renders the
        template on the spot."""
        if self._pending:
            self._render()
        return self._body

    @body.setter
    def body(self, value: bytes | memoryview) -> None:
        self._body = value

    def _render(self) -> None:
        self._pending = False
        self._body = self.render(self.template.render(self.context))
        headers = self.headers
        if "content-length" in headers:
            headers["content-length"] = str(len(self._body))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        emitter = self._emitter
        if emitter is not None:
            self._emitter = None
            budget = self._budget
            await emitter.send(
                signals.before_render_template, budget, template=self.template, context=self.context
            )
            if self._pending:
                self._render()
            await emitter.send(
                signals.template_rendered, budget, template=self.template, context=self.context
            )
        request = self.context.get("request", {})
        if "http.response.debug" in request.get("extensions", {}):
            await send(
                {
                    "type": "http.response.debug",
                    "info": {"template": self.template, "context": self.context},
                }
            )
        await super().__call__(scope, receive, send)


class Jinja2Templates(_StarletteJinja2Templates):
    """Drop-in for :class:`starlette.templating.Jinja2Templates` that sends
    ``before_render_template`` and ``template_rendered`` (``template=`` the
    ``jinja2.Template``, ``context=`` the context dict) from the app installed for the
    request, and offers ``get_flashed_messages()`` to templates.

    See :class:`TemplateResponse` for when the template renders.
    """

    def _setup_env_defaults(self, env: jinja2.Environment) -> None:
        super()._setup_env_defaults(env)
        env.globals.setdefault("get_flashed_messages", _template_get_flashed_messages)

    def TemplateResponse(  # type: ignore[override]
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> TemplateResponse:
        """As Starlette's: render template ``name`` with ``context`` (plus ``request``
        and the context processors' output) into an HTML response, a
        :class:`TemplateResponse`."""
        context = context or {}
        context.setdefault("request", request)
        for context_processor in self.context_processors:
            context.update(context_processor(request))
        return TemplateResponse(
            self.get_template(name),
            context,
            status_code=status_code,
            headers=headers,
            media_type=media_type,
            background=background,
        )


@jinja2.pass_context
def _template_get_flashed_messages(
    context: Mapping[str, Any], with_categories: bool = False, category_filter: Sequence[str] = ()
) -> list[str] | list[tuple[str, str]]:
    return get_flashed_messages(context["request"], with_categories, category_filter)
