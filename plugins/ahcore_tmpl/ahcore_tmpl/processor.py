"""The ``tmpl`` processor: one compiled Jinja2 template per file.

The kernel makes one :class:`TmplProcessor` per template file and calls
:meth:`TmplProcessor.load` once per change, so the file is compiled once and
shared by every request until it changes. Each request renders it with its
own namespace (``await context.namespace()``); nothing about a request is
kept on the processor or on the environment.

Sync and async rendering: every file is compiled for async rendering, which
awaits what the template's calls return. :meth:`TmplProcessor.load` also
analyses the file (:mod:`ahcore_tmpl.syncsafe`); when it can never meet an
awaitable, it is compiled a second time without async and
:meth:`TmplProcessor.produce` renders that copy with ``template.render`` —
the same output and errors for about a third less CPU. Its includes,
layouts and imports are checked on each request (they can change without
the page changing), as is the request's namespace; if anything fails the
check, the async copy renders the page.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from ahcore.api import Problem, Processor, RequestContext, SiteView, not_found
from ahcore_tmpl.environment import (
    AnalyzingLoader,
    UrlEnvironment,
    environment_for,
    sync_environment_for,
)
from ahcore_tmpl.loader import PROCESSOR_NAME, TemplateNameRefused
from ahcore_tmpl.syncsafe import Analysis, NeedsAsyncRender, closure_check, is_plain_data

__all__ = [
    "CONTENT_TYPES",
    "PROCESSOR_NAME",
    "SUFFIXES",
    "TemplateBrokenError",
    "TmplProcessor",
    "content_type_for",
    "is_json_text",
    "prepare_sync",
]

log = logging.getLogger(__name__)

SUFFIXES: tuple[str, ...] = (".tmpl", ".html.tmpl", ".tmpl.js", ".tmpl.css")

# Content types by file-name ending; anything else is HTML.
CONTENT_TYPES: tuple[tuple[str, str], ...] = (
    (".tmpl.js", "application/javascript"),
    (".tmpl.css", "text/css"),
)


def content_type_for(filename: str) -> str:
    """The content type a template file produces, from its name."""
    for suffix, content_type in CONTENT_TYPES:
        if filename.endswith(suffix):
            return content_type
    return "text/html"


def is_json_text(text: str) -> bool:
    """Whether ``text`` is a JSON object or array (surrounding blanks allowed).

    ahserver sent any template output that ``json.loads`` accepts as
    ``application/json``; bricks UIs fetch widget descriptions from
    templates that way. Only objects and arrays count here (as for a
    script's returned text), and only text that really parses: ``[draft]``
    stays HTML. The parse runs only when the first and last characters
    already look like JSON.
    """
    head, tail = text.lstrip()[:1], text.rstrip()[-1:]
    if (head, tail) not in (("{", "}"), ("[", "]")):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def compile_template(env: UrlEnvironment, source: str, url: str, filename: str) -> jinja2.Template:
    """Compile ``source`` as the template named ``url``.

    The name is the file's URL so that its ``include``/``extends`` resolve
    relative to it, and it decides autoescaping. The page template itself is
    not put in Jinja2's cache: the kernel's processor cache already keeps it
    exactly as long as the file is unchanged.

    Its globals are a flat copy of the environment's (fixed once the site
    has started): Jinja2's own ``ChainMap`` over them would be copied key by
    key, in Python, into every render's context.
    """
    code = env.compile(source, url, filename)
    return env.template_class.from_code(env, code, dict(env.make_globals(None)), None)


def prepare_sync(
    sync_env: UrlEnvironment, source: str, url: str, filename: str
) -> tuple[Analysis, jinja2.Template | None]:
    """Analyse ``source`` and, if it is sync-safe, compile it for ``sync_env``."""
    loader = sync_env.loader
    assert isinstance(loader, AnalyzingLoader)
    analysis = loader.analyze(sync_env, source, url, filename)
    if not analysis.sync_safe:
        return analysis, None
    return analysis, compile_template(sync_env, source, url, filename)


class TemplateBrokenError(Exception):
    """A template file that does not compile; the visitor sees a plain 500.

    Raised on every request for the file (the message names the file and
    line for the log) until the file changes, so a broken file is compiled
    once per change, not on every request.
    """


class TmplProcessor(Processor):
    """A ``.tmpl`` (``.html.tmpl``, ``.tmpl.js``, ``.tmpl.css``) file.

    ``template`` is the file compiled for async rendering; ``sync_template``
    the same source compiled for sync rendering, when ``analysis`` finds the
    file sync-safe on its own. ``mode`` says which the file itself allows:
    ``"sync"`` (then each request still checks the file's includes, layouts,
    imports and namespace: :meth:`render_mode`) or ``"async"``.
    """

    template: jinja2.Template | None = None
    sync_template: jinja2.Template | None = None
    analysis: Analysis | None = None
    error: str | None = None
    error_line: int | None = None
    error_message: str = ""
    syntax_error: jinja2.TemplateSyntaxError | None = None
    url: str = ""

    def __init__(self, path: Path, site: SiteView) -> None:
        super().__init__(path, site)
        self.content_type = content_type_for(path.name)
        self._sync_env: UrlEnvironment | None = None
        # The merged check of the last set of compiled includes (closure_check).
        self._closure_cache: dict[str, object] = {}

    @property
    def mode(self) -> str:
        return "sync" if self.sync_template is not None else "async"

    async def load(self) -> None:
        env = environment_for(self.site)
        url = self.site.file_url(self.path) or "/" + self.path.name
        self.url = url
        encoding = self.site.config.website.coding
        # Reading and compiling block: keep them off the event loop.
        source = await asyncio.to_thread(self.path.read_text, encoding=encoding)
        try:
            self.template = await asyncio.to_thread(
                compile_template, env, source, url, str(self.path)
            )
        except jinja2.TemplateSyntaxError as exc:
            self.error_line, self.error_message = exc.lineno, exc.message or str(exc)
            self.error = f"{self.path}, line {exc.lineno}: {exc.message}"
            self.syntax_error = exc  # the cause of every TemplateBrokenError (the debug page shows it)
            log.error("template does not compile: %s", self.error)
            return
        sync_env = self._sync_env = sync_environment_for(self.site)
        try:
            self.analysis, self.sync_template = await asyncio.to_thread(
                prepare_sync, sync_env, source, url, str(self.path)
            )
        except Exception:  # never expected: the async compile worked; stay async
            log.exception("template %s: sync compilation failed; rendering it async", url)
            self.analysis, self.sync_template = None, None
        if self.analysis is not None and self.analysis.reason is not None:
            log.debug("template %s renders async: %s", url, self.analysis.reason)

    async def check(self) -> list[Problem]:
        """The syntax error with its line, for ``ahcore check``."""
        if self.error is None:
            return []
        return [
            Problem(
                f"template does not compile: {self.error_message.rstrip('.')}; fix it (until then "
                "the page answers 500)",
                self.path,
                self.error_line,
            )
        ]

    def render_mode(self, namespace: dict[str, Any], parent: bool = False) -> str:
        """``"sync"`` or ``"async"``: how :meth:`produce` renders for ``namespace``.

        ``parent`` is true for a ``path_call`` (then ``params_kw`` holds the
        caller's values, which must be plain data).
        """
        analysis = self.analysis
        if self.sync_template is None or analysis is None or self._sync_env is None:
            return "async"
        if analysis.dependencies:
            check = closure_check(self._sync_env, self.url, analysis, self._closure_cache)
            if check is None:
                return "async"
        else:
            check = analysis.check
        if not check.allows(namespace):
            return "async"
        if parent and not is_plain_data(namespace.get("params_kw")):
            return "async"
        return "sync"

    async def produce(self, context: RequestContext) -> str:
        """The rendered text (also what ``path_call`` returns).

        An ``include``/``extends``/``import`` whose name leaves the content
        roots (:class:`~ahcore_tmpl.loader.TemplateNameRefused`) or names no
        file is the 404 of a missing file (SPEC §16), never a 500: the name
        may come from the request (``{% include params_kw.part %}``), and a
        prober must not tell a refused name from an absent one. The log
        says which template and name.
        """
        template = self.template
        if template is None:
            raise TemplateBrokenError(self.error) from self.syntax_error
        namespace = await context.namespace()
        try:
            sync_template = self.sync_template
            if sync_template is not None:
                if self.render_mode(namespace, context.parent is not None) == "sync":
                    try:
                        return sync_template.render(namespace)
                    except NeedsAsyncRender as exc:  # an include changed since the check
                        log.debug("template %s: rendering async after all: %s", self.url, exc)
            return await template.render_async(namespace)
        except jinja2.TemplateNotFound as exc:
            why = (
                "refused: it leaves the content roots"
                if isinstance(exc, TemplateNameRefused)
                else "not found"
            )
            log.info("template %s: include %r %s; answered 404", self.url, exc.name, why)
            not_found()

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        """The rendered text; an HTML template's output that is JSON goes as JSON."""
        text = await self.produce(context)
        content_type = self.content_type
        if content_type == "text/html" and is_json_text(text):
            content_type = "application/json"
        return web.Response(text=text, content_type=content_type, charset="utf-8")
