"""``tmpl_engine``: ahserver's template engine object, for scripts that render templates themselves.

ahserver put its Jinja2 environment in the namespace as ``tmpl_engine``;
scripts call ``await tmpl_engine.render('/page.tmpl', **names)`` or
``await tmpl_engine.renders(text, data)`` (a template held in a string,
often one read from a database). Both render with the site's environment —
the same loader, URL-named includes and autoescaping as ``.tmpl`` pages —
and return the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ahcore.api import SiteView
from ahcore_tmpl.environment import environment_for


class TemplateEngine:
    """One site's ``tmpl_engine``: holds the site only, so it is safe to share between requests."""

    __slots__ = ("_site",)

    def __init__(self, site: SiteView) -> None:
        self._site = site

    async def render(self, ___name: str, **names: Any) -> str:
        """Render the site's template at URL ``___name`` with ``names`` (ahserver's argument order)."""
        template = environment_for(self._site).get_template(___name)
        return await template.render_async(names)

    async def renders(self, tmplstr: str, data: Mapping[str, Any] | None = None) -> str:
        """Render the template text ``tmplstr`` with ``data``."""
        template = environment_for(self._site).from_string(tmplstr)
        return await template.render_async(dict(data or {}))
