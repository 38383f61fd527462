"""One Jinja2 environment per site, kept on the aiohttp application.

The environment holds the site's template cache and its loader, which know
the site's content roots; two ahcore applications in one process must not
share them, so there is no module-level environment. It is created by the
plugin's ``on_startup`` hook (or on first use) and stored under
:data:`ENVIRONMENT_KEY`. It never holds anything request-specific: the
request's namespace is passed to each render call.
"""

from __future__ import annotations

import jinja2
from aiohttp import web

from ahcore import Site
from ahcore_tmpl.loader import UrlLoader

# Outputs that are not HTML: escaping HTML there would corrupt the output.
NON_HTML_SUFFIXES = (".js", ".css")


def autoescape_for(name: str | None) -> bool:
    """HTML autoescaping for every template except JavaScript and CSS ones.

    Decided by template name (a URL) when the template is compiled, so an
    HTML fragment included from a ``.tmpl.js`` file is still escaped.
    """
    return name is None or not name.endswith(NON_HTML_SUFFIXES)


class UrlEnvironment(jinja2.Environment):
    """A Jinja2 environment whose template names are URLs.

    :meth:`join_path` is Jinja2's hook for names relative to the including
    template; it delegates to :meth:`UrlLoader.join`.
    """

    loader: UrlLoader

    def join_path(self, template: str, parent: str) -> str:
        return self.loader.join(template, parent)


ENVIRONMENT_KEY: web.AppKey[UrlEnvironment] = web.AppKey("ahcore_tmpl.environment", UrlEnvironment)


def make_environment(site: Site) -> UrlEnvironment:
    """A fresh environment for ``site``: async rendering, per-file autoescape, reload checks."""
    return UrlEnvironment(
        loader=UrlLoader(site.resolver, encoding=site.config.website.coding),
        enable_async=True,
        autoescape=autoescape_for,
        # Included templates stay in Jinja2's cache; auto_reload asks the
        # loader's ``uptodate`` so an edited include is used on the next request.
        auto_reload=True,
    )


def install_environment(app: web.Application, site: Site) -> UrlEnvironment:
    """Create the site's environment and keep it on ``app`` (before the app starts)."""
    env = make_environment(site)
    app[ENVIRONMENT_KEY] = env
    return env


def environment_for(site: Site) -> UrlEnvironment:
    """The environment of ``site``'s application, created on first use if start-up did not."""
    app = site.app
    if app is None:
        raise RuntimeError("ahcore-tmpl needs the site's application (ahcore.create_app)")
    env = app.get(ENVIRONMENT_KEY)
    if env is None:
        env = install_environment(app, site)
    return env
