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

Checked by ``check_settings`` when the application is built: a wrong type,
or a ``template`` that names no file (every page would answer 404), stops
``ahcore serve`` and is an ``ahcore check`` error.
"""

from __future__ import annotations

from ahcore.api import Problem, ProcessorSpec, SiteView, hookimpl
from ahcore_md.processor import (
    PROCESSOR_NAME,
    SUFFIXES,
    MarkdownProcessor,
    layout_problems,
    md_settings,
)


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
