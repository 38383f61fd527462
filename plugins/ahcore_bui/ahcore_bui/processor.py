"""The ``bui`` and ``app`` processors: bricks pages, templates wrapped in the site's bricks layout.

A bricks page (``.ui``) is a Jinja2 template — compiled, cached, escaped
and rendered exactly as a ``.tmpl`` file (it *is* a
:class:`ahcore_tmpl.TmplProcessor`) — whose output, usually a JSON widget
description, is sent in one of two forms, as ahserver 1.2.0 did:

- **wrapped** when the request has no ``_webbricks_`` parameter (or it is
  empty or ``0``): a browser opening the page gets a whole HTML document.
  ``bui`` puts the output between ``/bricks/header.tmpl`` and
  ``/bricks/footer.tmpl``; ``app`` renders ``/bricks/bricksapp.tmpl`` and
  puts the output where that file says ``${appdic}$``. Always ``text/html``.
- **bare** when ``_webbricks_`` is anything else: bricks' client-side
  loader asks for ``?_webbricks_=1`` (or sends it in a JSON body) and gets
  the output alone, as ``application/json`` when it is JSON-looking text,
  else ``text/html`` (:func:`ahcore.api.to_response`).

The layout files are found like any URL — through ``website.paths`` in
order, symlinked folders included — and rendered by their own processor
through :func:`ahcore.api.path_call`, with the page's ``params_kw``; access
control applies to them as to the page. A layout file that is missing (or
that no processor serves, e.g. ``.tmpl`` not mapped to ``tmpl``) is a
server error: the page answers 500 naming the file, and the log says which
page needed it. A bricks page without its layout is not a page (no
bricks.js is loaded), so a clear error serves the site owner better than
a bare JSON blob shown to visitors.

``path_call`` of a ``.ui`` file returns its bare output (as ahserver's did).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ahcore_tmpl import TmplProcessor
from aiohttp import web

from ahcore.api import Problem, RequestContext, SiteView, path_call, to_response

__all__ = [
    "APP_LAYOUT",
    "APP_MARKER",
    "FOOTER",
    "HEADER",
    "METHODS",
    "BricksAppProcessor",
    "BricksPage",
    "BricksUIProcessor",
    "missing_layouts",
    "wants_bare",
]

log = logging.getLogger(__name__)

HEADER = "/bricks/header.tmpl"
FOOTER = "/bricks/footer.tmpl"
APP_LAYOUT = "/bricks/bricksapp.tmpl"
#: Where ``/bricks/bricksapp.tmpl`` takes the page's output (ahserver's ArgsConvert marker).
APP_MARKER = "${appdic}$"

#: What a bricks page answers (its ProcessorSpec's methods): the kernel
#: answers OPTIONS itself and anything else with 405 and ``Allow``.
METHODS = ("GET", "HEAD", "POST")


def wants_bare(value: Any) -> bool:
    """Whether ``_webbricks_`` asks for the bare output (bricks' loader sends ``1``).

    Absent, empty or an integer 0 (``0``, ``"0"``, ``" 0 "``) → wrapped; any
    other value → bare. Works whether the parameter arrives as text or
    already as an int; a repeated parameter counts by its last value.
    """
    if isinstance(value, list):
        value = value[-1] if value else None
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)):
        return value != 0
    text = str(value).strip()
    if not text:
        return False
    try:
        return int(text) != 0
    except ValueError:
        return True


def missing_layouts(site: SiteView, urls: Iterable[str]) -> dict[str, str]:
    """Layout URL → why this site cannot render it, for each of ``urls`` it cannot."""
    problems = {}
    for url in urls:
        found = site.resolve(url)
        if found is None or found.is_dir:
            problems[url] = "it does not exist in any content root (website.paths)"
        elif found.spec is None:
            problems[url] = (
                "no processor serves it (map its suffix in website.processors, "
                'e.g. [".tmpl", "tmpl"])'
            )
    return problems


class BricksPage(TmplProcessor):
    """A bricks page: a template whose output is wrapped in layout files unless asked bare."""

    #: The layout files this kind of page needs, in the order they are rendered.
    layouts: tuple[str, ...] = ()

    async def check(self) -> list[Problem]:
        """The template's own syntax error, and each layout file the page cannot be wrapped in."""
        found = list(await super().check())
        for url, why in missing_layouts(self.site, self.layouts).items():
            found.append(
                Problem(
                    f"the layout {url} that wraps this page cannot be used: {why}; "
                    "until it can, the page answers 500",
                    self.path,
                )
            )
        return found

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        text = await self.produce(context)
        params = await context.params()
        if wants_bare(params.get("_webbricks_")):
            return to_response(text)
        rendered = await self.render_layouts(context, dict(params))
        body = self.wrap(text, rendered)
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    async def render_layouts(self, context: RequestContext, params: Mapping[str, Any]) -> list[str]:
        """Each of :attr:`layouts` rendered for this request (500 if one is missing)."""
        problems = missing_layouts(self.site, self.layouts)
        if problems:
            log.error(
                "bricks page %s cannot be wrapped: %s",
                self.url,
                "; ".join(f"{url}: {why}" for url, why in problems.items()),
            )
            raise web.HTTPInternalServerError(
                text=f"500: this page needs the bricks layout {', '.join(problems)}, "
                "which the site lacks\n"
            )
        return [str(await path_call(context, url, dict(params))) for url in self.layouts]

    def wrap(self, text: str, layouts: list[str]) -> str:
        raise NotImplementedError


class BricksUIProcessor(BricksPage):
    """``bui`` (``.ui``): the page between ``/bricks/header.tmpl`` and ``/bricks/footer.tmpl``."""

    layouts = (HEADER, FOOTER)

    def wrap(self, text: str, layouts: list[str]) -> str:
        header, footer = layouts
        return header + text + footer


class BricksAppProcessor(BricksPage):
    """``app``: the page inside ``/bricks/bricksapp.tmpl``, at its ``${appdic}$`` marker."""

    layouts = (APP_LAYOUT,)

    def wrap(self, text: str, layouts: list[str]) -> str:
        (layout,) = layouts
        return layout.replace(APP_MARKER, text)
