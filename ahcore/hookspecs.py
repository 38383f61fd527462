"""The plugin contract of ahcore.

This file *is* the plugin API. Every hook below may be implemented by a plugin
module (or object) registered under the ``ahcore`` entry-point group and
switched on in the site's ``plugins`` config section. The built-in processors
and database drivers use nothing but these hooks.

Implement a hook with the marker from :mod:`ahcore`::

    from ahcore import hookimpl

    @hookimpl
    def register_processor():
        return ProcessorSpec(name="csv", suffixes=(".csv",), factory=CsvProcessor)

Any implementation may be a plain function or an ``async def``; the kernel
awaits whatever comes back (see :func:`ahcore.plugins.await_me_maybe`).
Every hook is dispatched by pluggy, so its rules hold as documented there:
implementations are called last-registered first, ``@hookimpl(tryfirst=True)``
and ``trylast`` move one, ``wrapper=True`` implementations wrap the others,
and ``AHCORE_TRACE_PLUGINS=1`` logs every call.
Hook arguments are passed by name, so an implementation may accept only the
arguments it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from aiohttp import web

    from ahcore.api import SiteView
    from ahcore.context import RequestContext
    from ahcore.db.driver import DriverSpec
    from ahcore.problems import Problem
    from ahcore.processor import ProcessorSpec

PROJECT_NAME = "ahcore"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def register_processor() -> ProcessorSpec | Iterable[ProcessorSpec] | None:
    """Declare file processors.

    Returns one :class:`ahcore.processor.ProcessorSpec` or a list of them: the
    processor ``name`` (used in ``website.processors``), its default
    ``suffixes`` and the ``factory`` that builds one processor object per file.
    Called once at application start. Results of all plugins are merged; two
    plugins declaring the same processor name is a start-up error.
    """


@hookspec
def register_db_driver() -> DriverSpec | Iterable[DriverSpec] | None:
    """Declare database drivers.

    Returns one :class:`ahcore.db.driver.DriverSpec` or a list: the canonical
    driver ``name`` (``sqlite``, ``mysql``, ``postgres`` …), the ahserver
    ``aliases`` it answers to and the ``create_pool`` coroutine factory.
    Called once at application start; results are merged by name.
    """


@hookspec
def env_globals(app: web.Application) -> Mapping[str, Any] | None:
    """Names added to every processor namespace, computed once per application.

    ``app`` is the aiohttp application; ``ahcore.get_site(app)`` gives the
    site (config, workdir, plugin settings). Return a mapping of names to
    values. Results are merged in plugin-registration order with the kernel's
    names first, so a plugin may add names or deliberately replace one.
    """


@hookspec
def request_namespace(context: RequestContext) -> Mapping[str, Any] | None:
    """Per-request names added to a processor namespace.

    Called once per request that builds a namespace (scripts and templates;
    static files never do). ``context`` is the request's
    :class:`ahcore.context.RequestContext`; bind anything request-specific to
    it, never to the plugin object. Results are merged after the kernel's own
    per-request names.

    Meant for per-request *values*. A function that needs its request is
    better offered once through ``env_globals`` and made to call
    :func:`ahcore.current_context`: a closure per request costs every script
    request an allocation per name (see docs/plugins.md).
    """


@hookspec
def auth_check(request: web.Request, user: str | None, path: str) -> bool | None:
    """Decide whether ``user`` may reach the canonical URL ``path``.

    ``path`` is the normalised path the resolver serves (decoded, ``.`` and
    ``//`` removed), never the raw request text. Return ``True`` to allow,
    ``False`` to deny, ``None`` to abstain. Any ``False`` denies; otherwise any
    ``True`` allows; when every plugin abstains the site default applies
    (allow). A denial is answered with 401 for an anonymous visitor and 403
    for a logged-in user. May be async.
    """


@hookspec(firstresult=True)
def identify_user(request: web.Request) -> str | None:
    """Who makes this request when the session has no logged-in user.

    For login methods that do not use the session: HTTP Basic, bearer API
    keys, client certificates. Return a user id, or ``None`` to pass.
    ``firstresult``: plugins are asked in pluggy's call order and the first
    user id wins (the kernel awaits an async answer before asking the next); the answer is cached for
    the request and is what ``get_user()`` and ``auth_check`` see. May be
    async.
    """


@hookspec
def on_hot_reload(app: web.Application, data: Mapping[str, Any]) -> None:
    """Clear caches after a hot reload.

    ``data`` says what triggered it: ``{'i18n': True}``, ``{'signal': True}``,
    ``{'source': 'http_endpoint'}`` (several keys may be present). Called in
    every worker. May be async. Called one plugin at a time in pluggy's call
    order, each through pluggy; an exception is logged and does not stop the
    other plugins.
    """


@hookspec
def on_startup(app: web.Application) -> None:
    """Start resources and background tasks when the application starts.

    Runs after the kernel's own start-up (sessions set up, namespace built,
    database pools made, so every plugin finds them), as one pluggy call in
    its call order (the last registered first; ``tryfirst``/``trylast`` move
    an implementation): sync implementations run during the call, and the
    coroutines of async ones are then awaited one after another in the same
    order. May be async. Keep task handles on the app (an ``AppKey``), not
    on the module, and stop them in :func:`on_shutdown`. A route added here
    goes behind the kernel's error guard like one of :func:`register_routes`.

    An exception aborts start-up: no plugin's :func:`on_shutdown` runs for a
    start-up that did not finish, and the kernel stops what it had started
    (sessions, pools) when the runner cleans up.
    """


@hookspec
def on_shutdown(app: web.Application) -> None:
    """Stop what :func:`on_startup` started; runs at application cleanup.

    May be async. Called one plugin at a time in pluggy's call order, each
    through pluggy (so a wrapper wraps each plugin's call), after background
    tasks are cancelled and before the kernel closes the database pools and
    sessions. An exception is logged and does not stop the other plugins'
    shutdown.
    """


@hookspec
def register_routes(app: web.Application) -> None:
    """Add aiohttp routes that are not files (login endpoints, health checks).

    Called once while the application is built, before it is frozen. Routes
    added here take precedence over URL-to-file resolution. Must be sync.
    Each route is wrapped in the kernel's error guard when the application
    is built (CSRF and forwarded-header refusals; errors raised in the
    handler answered as the catch-all answers them): raise
    ``bad_request``/``not_found``/``server_error`` or any ``web.HTTPException``.
    """


@hookspec
def check_settings(
    name: str, settings: Mapping[str, Any], site: SiteView
) -> Iterable[Problem | str] | None:
    """Check this plugin's settings: what is wrong, each with what to do.

    Called once for each enabled plugin that implements it, with that
    plugin's own entry-point ``name`` and its settings object from the
    ``plugins`` section (``{}`` for ``true`` or when the section does not
    name it); ``site`` is the site being built, for settings that name files
    (:meth:`SiteView.resolve`), databases (``site.config.databases``) or
    other parts of the config. Runs when the application is built, before
    any start-up hook, by ``ahcore serve`` and by ``ahcore check`` alike.

    Return :class:`ahcore.api.Problem` objects (or plain strings, each an
    error), or ``None`` when all is well. Name the key in the message
    (``plugins.dspy.time_limit: expected a positive number of seconds, got
    -1``). Any error stops ``ahcore serve`` with that one line and makes
    ``ahcore check`` exit non-zero; a warning is logged at start and
    listed by ``check``. Must be sync, must not touch the network or a
    database, and should check exactly the keys the plugin reads.
    """
