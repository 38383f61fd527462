"""Two Jinja2 environments per site, kept on the aiohttp application.

The environments hold the site's template caches and its loader, which
knows the site's content roots; two ahcore applications in one process must
not share them, so there is no module-level environment. They are created by
the plugin's ``on_startup`` hook (or on first use) and stored under
:data:`ENVIRONMENT_KEY` (async rendering, used for every template that may
meet an awaitable) and :data:`SYNC_ENVIRONMENT_KEY` (sync rendering, for the
templates :mod:`ahcore_tmpl.syncsafe` proves never do). The sync one is an
overlay of the async one: same loader, autoescape rule, filters, tests,
globals and reload checks, its own cache of templates compiled without
async. Neither holds anything request-specific: the request's namespace is
passed to each render call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import jinja2
from aiohttp import web

from ahcore.api import SiteView
from ahcore_tmpl.builtins import template_builtins
from ahcore_tmpl.loader import UrlLoader
from ahcore_tmpl.runtime import UrlContext, UrlTemplate
from ahcore_tmpl.syncsafe import ANALYSIS_ATTRIBUTE, Analysis, analyze, poison
from ahcore_tmpl.undefined import undefined_class

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
    template; it delegates to :meth:`UrlLoader.join`. Its templates are
    :class:`~ahcore_tmpl.runtime.UrlTemplate` and render in a
    :class:`~ahcore_tmpl.runtime.UrlContext` (the same behaviour as Jinja2's,
    for less CPU).
    """

    loader: UrlLoader
    template_class = UrlTemplate
    context_class = UrlContext

    def join_path(self, template: str, parent: str) -> str:
        return self.loader.join(template, parent)


class AnalyzingLoader(UrlLoader):
    """The sync environment's loader: the site's :class:`UrlLoader`, plus analysis.

    It finds and reads templates through the async environment's loader (so
    both environments see exactly the same files) and attaches to each
    template it compiles the :class:`~ahcore_tmpl.syncsafe.Analysis` of its
    source, under :data:`~ahcore_tmpl.syncsafe.ANALYSIS_ATTRIBUTE`. A template
    that needs async is compiled all the same (to be analysed, and so an
    include of it fails at the same point as in async mode) but raises
    :class:`~ahcore_tmpl.syncsafe.NeedsAsyncRender` if it is ever rendered.
    """

    def __init__(
        self, loader: UrlLoader, global_namespace: Callable[[], Mapping[str, Any]]
    ) -> None:
        super().__init__(loader.site, loader.processor_name)
        self.inner = loader
        self.global_namespace = global_namespace

    def join(self, name: str, parent: str | None) -> str:
        return self.inner.join(name, parent)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        return self.inner.get_source(environment, template)

    def load(
        self,
        environment: jinja2.Environment,
        name: str,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        source, filename, uptodate = self.get_source(environment, name)
        analysis = self.analyze(environment, source, name, filename)
        code = environment.compile(source, name, filename)
        template = environment.template_class.from_code(
            environment, code, environment.make_globals(globals), uptodate
        )
        setattr(template, ANALYSIS_ATTRIBUTE, analysis)
        if analysis.reason is not None:
            poison(template, analysis.reason)
        return template

    def analyze(
        self, environment: jinja2.Environment, source: str, name: str | None, filename: str | None
    ) -> Analysis:
        """The analysis of ``source`` (a syntax error propagates, as compiling it would)."""
        tree = environment.parse(source, name, filename)
        return analyze(tree, environment, self.global_namespace())


ENVIRONMENT_KEY: web.AppKey[UrlEnvironment] = web.AppKey("ahcore_tmpl.environment", UrlEnvironment)
SYNC_ENVIRONMENT_KEY: web.AppKey[UrlEnvironment] = web.AppKey(
    "ahcore_tmpl.sync_environment", UrlEnvironment
)


def make_environment(site: SiteView) -> UrlEnvironment:
    """A fresh environment for ``site``: async rendering, per-file autoescape, reload checks.

    Its globals are Jinja2's own plus Python's builtins
    (:mod:`ahcore_tmpl.builtins`); Jinja2's ``range``, ``dict`` … are kept
    where both have a name. An undefined name is what
    ``plugins.tmpl.undefined`` says (:mod:`ahcore_tmpl.undefined`).
    """
    env = UrlEnvironment(
        loader=UrlLoader(site),
        enable_async=True,
        autoescape=autoescape_for,
        # Included templates stay in Jinja2's cache; auto_reload asks the
        # loader's ``uptodate`` so an edited include is used on the next request.
        auto_reload=True,
        undefined=undefined_class(site),
    )
    for name, value in template_builtins(site).items():
        env.globals.setdefault(name, value)
    return env


def make_sync_environment(env: UrlEnvironment, site: SiteView) -> UrlEnvironment:
    """The sync twin of ``env``: an overlay sharing its settings, with its own cache.

    Filters, tests and globals are the same dictionaries; the loader wraps
    ``env``'s (:class:`AnalyzingLoader`) and reads the site's global namespace
    when it analyses a template.
    """
    sync = env.overlay(
        loader=AnalyzingLoader(env.loader, lambda: site.global_namespace), enable_async=False
    )
    sync.is_async = False  # Jinja2 before 3.1.5 ignored overlay(enable_async=...)
    return sync


def install_environment(app: web.Application, site: SiteView) -> UrlEnvironment:
    """Create the site's environments and keep them on ``app`` (before the app starts).

    Returns the async environment; the sync one is under :data:`SYNC_ENVIRONMENT_KEY`.
    """
    env = make_environment(site)
    app[ENVIRONMENT_KEY] = env
    app[SYNC_ENVIRONMENT_KEY] = make_sync_environment(env, site)
    return env


def _app_of(site: SiteView) -> web.Application:
    app = site.app
    if app is None:
        raise RuntimeError("ahcore-tmpl needs the site's application (ahcore.create_app)")
    return app


def environment_for(site: SiteView) -> UrlEnvironment:
    """The async environment of ``site``'s app, created on first use if start-up did not."""
    app = _app_of(site)
    env = app.get(ENVIRONMENT_KEY)
    if env is None:
        env = install_environment(app, site)
    return env


def sync_environment_for(site: SiteView) -> UrlEnvironment:
    """The sync environment of ``site``'s application (made with the async one)."""
    app = _app_of(site)
    sync = app.get(SYNC_ENVIRONMENT_KEY)
    if sync is None:
        sync = make_sync_environment(environment_for(site), site)
        app[SYNC_ENVIRONMENT_KEY] = sync
    return sync
