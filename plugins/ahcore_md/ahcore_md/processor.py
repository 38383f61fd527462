"""The ``md`` processor: markdown rendered once per change, served per host.

The kernel makes one :class:`MarkdownProcessor` per ``.md`` file and calls
:meth:`MarkdownProcessor.load` once per change; that is where the markdown
is parsed and rendered. A request then costs one ``str.replace`` (its origin
for the origin token) — no markdown parsing — unless the site wraps pages
in a layout template, which is rendered per request by its own processor
through the kernel's ``path_call``.
"""

from __future__ import annotations

import asyncio
import html
import posixpath
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ahcore.api import Processor, RequestContext, SiteView, path_call, request_origin, to_response
from ahcore_md import render

PROCESSOR_NAME = "md"
SUFFIXES: tuple[str, ...] = (".md",)

DOCUMENT = (
    "<!doctype html>\n"
    '<html><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title></head>\n"
    "<body>\n{body}</body></html>\n"
)


class HTMLText(str):
    """Text that is already HTML.

    Implements the ``__html__`` protocol (MarkupSafe, Jinja2) so a layout
    template puts the page body in unescaped, without this plugin importing
    a template engine.
    """

    __slots__ = ()

    def __html__(self) -> str:
        return self


@dataclass(frozen=True)
class MdSettings:
    """The site's ``plugins.md`` settings."""

    allow_html: bool = False
    template: str | None = None


@dataclass(frozen=True)
class Page:
    """One rendering of the file: body and full document, both with origin tokens."""

    body: str
    title: str
    document: str


def md_settings(site: SiteView) -> MdSettings:
    """``plugins.md`` of ``site``, checked.

    Read on each request (a dict lookup) so a config reload applies at once;
    also called by the plugin's ``on_startup`` so a wrong type stops start-up.
    """
    settings = site.plugin_settings(PROCESSOR_NAME)
    allow_html = settings.get("allow_html", False)
    if not isinstance(allow_html, bool):
        raise ValueError(f"plugins.md.allow_html: expected true or false, got {allow_html!r}")
    template = settings.get("template") or None
    if template is not None and not isinstance(template, str):
        raise ValueError(f"plugins.md.template: expected a URL string, got {template!r}")
    return MdSettings(allow_html, template)


def layout_available(site: SiteView, template: str) -> bool:
    """Whether some enabled processor (normally ahcore-tmpl's) can run ``template``."""
    return site.processor_name(posixpath.basename(template)) is not None


class MarkdownProcessor(Processor):
    """A ``.md`` file."""

    async def load(self) -> None:
        # Unguessable, so no text in a markdown file can collide with it.
        self.origin_token = f"ahcoremdorigin{secrets.token_hex(8)}x"
        self.source = await asyncio.to_thread(
            self.path.read_text, encoding=self.site.config.website.coding
        )
        # Renderings by (URL folder, allow_html): relative links depend on the
        # folder the file is served from. Normally one entry, made here
        # rather than on the first request.
        self.pages: dict[tuple[str, bool], Page] = {}
        url = self.site.file_url(self.path)
        if url is not None:
            await self.page_for(url, md_settings(self.site).allow_html)

    async def page_for(self, url: str, allow_html: bool) -> Page:
        """The page as rendered for a file served at ``url`` (rendered on first need)."""
        key = (url.rsplit("/", 1)[0], allow_html)
        page = self.pages.get(key)
        if page is None:
            page = await asyncio.to_thread(self._render, url, allow_html)
            self.pages[key] = page
        return page

    def _render(self, url: str, allow_html: bool) -> Page:
        rendered = render.render_markdown(
            self.source, base_url=url, origin_token=self.origin_token, allow_html=allow_html
        )
        title = rendered.title or self.path.name.rsplit(".", 1)[0]
        document = DOCUMENT.format(title=html.escape(title), body=rendered.body)
        return Page(body=rendered.body, title=title, document=document)

    async def produce(self, context: RequestContext) -> Any:
        """The HTML page for this request's origin (also what ``path_call`` returns)."""
        settings = md_settings(self.site)
        page = await self.page_for(context.url, settings.allow_html)
        origin = html.escape(request_origin(context.request), quote=True)
        layout = settings.template
        if layout is None or not layout_available(self.site, layout):
            return page.document.replace(self.origin_token, origin)
        content = HTMLText(page.body.replace(self.origin_token, origin))
        return await path_call(context, layout, {"content": content, "title": page.title})

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        value = await self.produce(context)
        if isinstance(value, str):
            return web.Response(text=value, content_type="text/html", charset="utf-8")
        return to_response(value)
