"""Markdown → HTML with mistune 3: tables, fenced code, strikethrough, heading ids.

Rendering is done once per change of a file (see
:mod:`ahcore_md.processor`), so the output is host-independent: links carry
an origin token that each request replaces with its own origin.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import mistune
from mistune.util import striptags

from ahcore_md.sanitize import sanitize_html
from ahcore_md.urls import LinkRewriter

MISTUNE_PLUGINS = ("table", "strikethrough")

_NOT_SLUG = re.compile(r"[^\w\s-]", re.UNICODE)
_SPACES = re.compile(r"[\s-]+")


def slugify(text: str) -> str:
    """A heading's anchor id: lower case, word characters and hyphens (GitHub-like)."""
    slug = _SPACES.sub("-", _NOT_SLUG.sub("", text.lower())).strip("-")
    return slug or "section"


@dataclass(frozen=True)
class RenderedMarkdown:
    """A rendered page: ``body`` HTML (with origin tokens) and the first heading's text."""

    body: str
    title: str | None


class PageRenderer(mistune.HTMLRenderer):
    """mistune's HTML renderer with link rewriting and unique heading ids.

    Made fresh for every render, so the ids it has handed out and the title
    it has seen belong to one document.
    """

    def __init__(self, rewrite: LinkRewriter, *, escape: bool) -> None:
        super().__init__(escape=escape)
        self._rewrite = rewrite
        self._used_ids: set[str] = set()
        self.title: str | None = None

    def sanitize_url(self, url: str) -> str:
        # Every link, image and autolink URL passes through here.
        return self._rewrite(url)

    def heading(self, text: str, level: int, **attrs: Any) -> str:
        plain = html.unescape(striptags(text)).strip()
        if self.title is None and plain:
            self.title = plain
        attrs["id"] = self._unique(slugify(plain))
        return super().heading(text, level, **attrs)

    def _unique(self, slug: str) -> str:
        candidate, n = slug, 0
        while candidate in self._used_ids:
            n += 1
            candidate = f"{slug}-{n}"
        self._used_ids.add(candidate)
        return candidate


def render_markdown(
    text: str, *, base_url: str, origin_token: str, allow_html: bool = False
) -> RenderedMarkdown:
    """Render ``text`` (the file at ``base_url``) to HTML.

    Relative and root-relative link and image URLs come out as
    ``origin_token + "/root/relative/url"``. Raw HTML is escaped unless
    ``allow_html``; when allowed, the whole page is passed through
    :func:`ahcore_md.sanitize.sanitize_html`.
    """
    renderer = PageRenderer(LinkRewriter(base_url, origin_token), escape=not allow_html)
    markdown = mistune.create_markdown(renderer=renderer, plugins=list(MISTUNE_PLUGINS))
    body = markdown(text)
    assert isinstance(body, str)
    if allow_html:
        body = sanitize_html(body)
    return RenderedMarkdown(body=body, title=renderer.title)
