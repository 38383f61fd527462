"""The ``md`` processor: markdown rendered once per change, served per host.

The kernel makes one :class:`MarkdownProcessor` per ``.md`` file and calls
:meth:`MarkdownProcessor.load` once per change; that is where the markdown
is parsed and rendered. A request then costs one ``str.replace`` (its origin
for the origin token) — no markdown parsing — unless the site wraps pages
in a layout template, which is rendered per request by its own processor
through the kernel's ``path_call``.

Content negotiation (SPEC §15): a browser opening the page gets the
rendered HTML; a script fetching the file to render it itself (bricks'
``MarkdownViewer``, which is what ahserver served) gets the markdown source
with its links made absolute (:mod:`ahcore_md.source`). :func:`negotiate`
decides from ``Accept`` and ``Sec-Fetch-Dest``; ``plugins.md.mode`` can fix
the answer for every request.
"""

from __future__ import annotations

import asyncio
import html
import json
import posixpath
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ahcore.api import (
    Problem,
    Processor,
    RequestContext,
    SiteView,
    path_call,
    request_origin,
    to_response,
)
from ahcore_md import render
from ahcore_md.source import rewrite_source
from ahcore_md.urls import LinkRewriter

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


MODES = ("auto", "html", "source")

#: What the answer depends on in ``auto`` mode (so caches keep both).
VARY = "Accept, Sec-Fetch-Dest"

# Sec-Fetch-Dest values of a browser showing the file as a page of its own.
_DOCUMENT_DESTS = frozenset({"document", "iframe", "frame", "embed", "object"})

# Characters of an origin that would end a markdown link destination.
_ORIGIN_SAFE = ":/[]@!$&*+,;=%"


@dataclass(frozen=True)
class MdSettings:
    """The site's ``plugins.md`` settings."""

    allow_html: bool = False
    template: str | None = None
    mode: str = "auto"


@dataclass(frozen=True)
class Page:
    """One rendering of the file: body, full document and source, all with origin tokens."""

    body: str
    title: str
    document: str
    source: str = ""


def _names_html(accept: str) -> bool:
    """Whether an ``Accept`` value asks for ``text/html`` (with a quality above 0)."""
    for item in accept.split(","):
        media, _, params = item.partition(";")
        if media.strip().lower() != "text/html":
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if quality > 0:
            return True
    return False


def negotiate(headers: Mapping[str, str], mode: str = "auto") -> str:
    """``"html"`` or ``"source"``: what a request with these headers gets.

    In order: ``mode`` other than ``auto`` decides; an ``Accept`` naming
    ``text/html`` → HTML (a client that asks for HTML gets it, an htmx
    fetch included); ``Sec-Fetch-Dest: document`` (or a frame) → HTML;
    ``Sec-Fetch-Dest: empty`` (``fetch()``, XHR) → source; no ``Accept`` at
    all (curl without options, old clients) → HTML; any other ``Accept``
    (``*/*`` of ``fetch()``, ``text/markdown``, ``text/plain``) → source.
    """
    if mode != "auto":
        return mode
    accept = headers.get("Accept")
    if accept is not None and _names_html(accept):
        return "html"
    dest = (headers.get("Sec-Fetch-Dest") or "").strip().lower()
    if dest in _DOCUMENT_DESTS:
        return "html"
    if dest == "empty":
        return "source"
    if accept is None or not accept.strip():
        return "html"
    return "source"


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
    mode = settings.get("mode", "auto")
    if mode not in MODES:
        raise ValueError(
            f"plugins.md.mode: expected one of {', '.join(repr(m) for m in MODES)}, got {mode!r}"
        )
    return MdSettings(allow_html, template, mode)


def layout_problems(site: SiteView, template: str, page_url: str | None = None) -> list[Problem]:
    """Why ``plugins.md.template`` cannot wrap pages (served at ``page_url``), if it cannot.

    An absolute URL is checked once (``page_url`` ``None``); a relative one
    for each page, from the page's folder. A layout no file answers makes
    every page a 404: an error. A layout no enabled processor runs is a
    warning: the plain page is served.
    """
    if template.startswith("/"):
        url = template
    elif page_url is None:
        return []
    else:
        url = posixpath.normpath(posixpath.join(posixpath.dirname(page_url), template))
    shown = json.dumps(template)
    if not layout_available(site, template):
        return [
            Problem(
                f"plugins.md.template: no enabled processor runs {shown} (enable ahcore-tmpl "
                "and map its suffix in website.processors); plain pages are served",
                severity="warning",
            )
        ]
    if site.resolve(url) is None:
        where = f" (from {page_url})" if url != template else ""
        return [
            Problem(
                f"plugins.md.template: {shown} names no file in the content roots{where}, so "
                "every markdown page answers 404; create it, correct the URL, or leave "
                "the setting out"
            )
        ]
    return []


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

    async def check(self) -> list[Problem]:
        """A relative ``plugins.md.template`` that names no file from this page."""
        template = md_settings(self.site).template
        url = self.site.file_url(self.path)
        if template is None or template.startswith("/") or url is None:
            return []
        return [p for p in layout_problems(self.site, template, url) if p.is_error]

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
        source = rewrite_source(self.source, LinkRewriter(url, self.origin_token))
        return Page(body=rendered.body, title=title, document=document, source=source)

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
        """The rendered page or the markdown source, as :func:`negotiate` decides."""
        mode = md_settings(self.site).mode
        request = context.request
        if negotiate(request.headers, mode) == "source":
            page = await self.page_for(context.url, md_settings(self.site).allow_html)
            origin = quote(request_origin(request), safe=_ORIGIN_SAFE)
            response: web.StreamResponse = web.Response(
                text=page.source.replace(self.origin_token, origin),
                content_type="text/markdown",
                charset="utf-8",
            )
        else:
            value = await self.produce(context)
            if isinstance(value, str):
                response = web.Response(text=value, content_type="text/html", charset="utf-8")
            else:
                response = to_response(value)
        if mode == "auto" and not response.prepared:
            response.headers["Vary"] = VARY
        return response
