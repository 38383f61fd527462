"""A third-party processor written only from docs/plugins.md: ``.note`` pages.

It does what ahcore-md does, with nothing but ``ahcore.api``: one render per
file change (``load``), the file's own URL (``site.file_url``), its settings
(``site.plugin_settings``), links made absolute with the client's origin
(``request_origin``), a layout rendered by another processor (``path_call``,
when ``site.processor_name`` says one serves it), and a checked setting at
start-up (``on_startup`` with ``get_site``).
"""

from __future__ import annotations

import asyncio
import html
import posixpath
from typing import Any

from aiohttp import web

from ahcore.api import (
    Processor,
    ProcessorSpec,
    RequestContext,
    get_site,
    hookimpl,
    path_call,
    request_origin,
)

ORIGIN = "\x00origin\x00"  # a marker no text file holds


class NoteProcessor(Processor):
    """A ``.note`` file: lines become paragraphs, ``->/path`` becomes an absolute link."""

    async def load(self) -> None:
        text = await asyncio.to_thread(self.path.read_text, encoding=self.site.config.website.coding)
        url = self.site.file_url(self.path) or "/"
        folder = url.rsplit("/", 1)[0]
        parts = []
        for line in text.splitlines():
            if line.startswith("->"):
                target = posixpath.normpath(posixpath.join(folder + "/", line[2:].strip()))
                parts.append(f'<p><a href="{ORIGIN}{html.escape(target)}">{html.escape(target)}</a></p>')
            elif line.strip():
                parts.append(f"<p>{html.escape(line)}</p>")
        self.body = "\n".join(parts)
        self.renders = getattr(self, "renders", 0) + 1

    async def produce(self, context: RequestContext) -> Any:
        body = self.body.replace(ORIGIN, request_origin(context.request))
        layout = self.site.plugin_settings("notes").get("layout")
        if layout and self.site.processor_name(posixpath.basename(layout)) is not None:
            return await path_call(context, layout, {"content": body})
        return f"<!doctype html><body>{body}</body>"

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        return web.Response(text=await self.produce(context), content_type="text/html")


@hookimpl
def register_processor() -> ProcessorSpec:
    return ProcessorSpec(name="notes", suffixes=(".note",), factory=NoteProcessor)


@hookimpl
def on_startup(app: web.Application) -> None:
    layout = get_site(app).plugin_settings("notes").get("layout")
    if layout is not None and not isinstance(layout, str):
        raise ValueError(f"plugins.notes.layout: expected a URL string, got {layout!r}")
