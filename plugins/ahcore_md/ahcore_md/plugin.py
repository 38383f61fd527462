"""The ahcore plugin module of ahcore-md (entry point ``md``).

Settings (``plugins.md`` in the site config), read on each request:

``allow_html`` (default ``false``)
    Raw HTML in markdown is escaped unless this is ``true``; even then it is
    sanitized (no script, event handlers or ``javascript:`` URLs).
``template`` (default none)
    URL of a layout (e.g. ``"/layout.tmpl"``) rendered with ``params_kw.content``
    (the page HTML) and ``params_kw.title`` (the first heading) through
    ``path_call``. A relative URL is relative to each markdown file. Plain
    pages are served while no enabled processor handles the layout's suffix.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ahcore.api import Problem, ProcessorSpec, SiteView, get_site, hookimpl
from ahcore_md.processor import (
    PROCESSOR_NAME,
    SUFFIXES,
    MarkdownProcessor,
    layout_available,
    layout_problems,
    md_settings,
)

log = logging.getLogger(__name__)


@hookimpl
def register_processor() -> ProcessorSpec:
    """``.md`` files are markdown pages."""
    # Pages, not code: GET/HEAD, and other sites may link or fetch them.
    return ProcessorSpec(
        name=PROCESSOR_NAME,
        suffixes=SUFFIXES,
        factory=MarkdownProcessor,
        methods=("GET", "HEAD"),
        cross_site=True,
    )


@hookimpl
def check_settings(site: SiteView) -> list[Problem]:
    """``plugins.md``: the types of ``allow_html``, ``template``, ``mode``; the layout file."""
    try:
        settings = md_settings(site)
    except ValueError as exc:
        return [Problem(str(exc))]
    if settings.template is None:
        return []
    return layout_problems(site, settings.template)


@hookimpl
def on_startup(app: web.Application) -> None:
    """Check the settings when the server starts, so a typo stops start-up."""
    site = get_site(app)
    settings = md_settings(site)
    if settings.template is not None and not layout_available(site, settings.template):
        log.warning(
            "plugins.md.template %r: no enabled processor handles it (enable ahcore-tmpl "
            "and map its suffix in website.processors); serving plain pages",
            settings.template,
        )
