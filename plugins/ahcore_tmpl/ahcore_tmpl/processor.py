"""The ``tmpl`` processor: one compiled Jinja2 template per file.

The kernel makes one :class:`TmplProcessor` per template file and calls
:meth:`TmplProcessor.load` once per change, so the file is compiled once and
shared by every request until it changes. Each request renders it with its
own namespace (``await context.namespace()``); nothing about a request is
kept on the processor or on the environment.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import jinja2
from aiohttp import web

from ahcore import Processor, RequestContext, Site
from ahcore_tmpl.environment import UrlEnvironment, environment_for
from ahcore_tmpl.loader import PROCESSOR_NAME

__all__ = [
    "CONTENT_TYPES",
    "PROCESSOR_NAME",
    "SUFFIXES",
    "TemplateBrokenError",
    "TmplProcessor",
    "content_type_for",
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


def compile_template(env: UrlEnvironment, source: str, url: str, filename: str) -> jinja2.Template:
    """Compile ``source`` as the template named ``url``.

    The name is the file's URL so that its ``include``/``extends`` resolve
    relative to it, and it decides autoescaping. The page template itself is
    not put in Jinja2's cache: the kernel's processor cache already keeps it
    exactly as long as the file is unchanged.
    """
    code = env.compile(source, url, filename)
    return env.template_class.from_code(env, code, env.make_globals(None), None)


class TemplateBrokenError(Exception):
    """A template file that does not compile; the visitor sees a plain 500.

    Raised on every request for the file (the message names the file and
    line for the log) until the file changes, so a broken file is compiled
    once per change, not on every request.
    """


class TmplProcessor(Processor):
    """A ``.tmpl`` (``.html.tmpl``, ``.tmpl.js``, ``.tmpl.css``) file."""

    template: jinja2.Template | None = None
    error: str | None = None

    def __init__(self, path: Path, site: Site) -> None:
        super().__init__(path, site)
        self.content_type = content_type_for(path.name)

    async def load(self) -> None:
        env = environment_for(self.site)
        url = self.site.resolver.file_url(self.path) or "/" + self.path.name
        encoding = self.site.config.website.coding
        # Reading and compiling block: keep them off the event loop.
        source = await asyncio.to_thread(self.path.read_text, encoding=encoding)
        try:
            self.template = await asyncio.to_thread(
                compile_template, env, source, url, str(self.path)
            )
        except jinja2.TemplateSyntaxError as exc:
            self.error = f"{self.path}, line {exc.lineno}: {exc.message}"
            log.error("template does not compile: %s", self.error)

    async def produce(self, context: RequestContext) -> str:
        """The rendered text (also what ``path_call`` returns)."""
        if self.template is None:
            raise TemplateBrokenError(self.error)
        return await self.template.render_async(await context.namespace())

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        text = await self.produce(context)
        return web.Response(text=text, content_type=self.content_type, charset="utf-8")
