"""Building an ahcore application for a site folder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path

from aiohttp import web

from ahcore import namespace, session
from ahcore.appkeys import SITE_KEY
from ahcore.background import background_tasks
from ahcore.config import CONFIG_RELPATH, ConfigError, SiteConfig, load_config, typo_warnings
from ahcore.db import plugin as db_plugin
from ahcore.db.plugin import pools_lifecycle
from ahcore.errors import guard, guard_routes
from ahcore.functions import install_registry, report_unregistered
from ahcore.headers import set_site_headers
from ahcore.hotreload import ENDPOINT, HotReloader
from ahcore.outbound import OUTBOUND, Outbound
from ahcore.pipeline import serve
from ahcore.plugins import PluginError, await_me_maybe, call_each, load_plugins
from ahcore.problems import Problem
from ahcore.site import Site
from ahcore.uploads import janitor

log = logging.getLogger("ahcore.app")

UPLOAD_JANITOR: web.AppKey[asyncio.Task[None]] = web.AppKey("ahcore.upload_janitor", asyncio.Task)
#: Settings and config warnings found while the app was built, logged at start.
START_WARNINGS: web.AppKey[list[str]] = web.AppKey("ahcore.start_warnings", list)
#: What the plugins' ``check_settings`` hooks found (``ahcore check`` lists it).
SETTINGS_PROBLEMS: web.AppKey[list[Problem]] = web.AppKey("ahcore.settings_problems", list)
HOT_RELOADER: web.AppKey[HotReloader] = web.AppKey("ahcore.hot_reloader", HotReloader)

# Kernel plugins: always on, registered through the same hooks as any plugin.
BUILTIN_PLUGINS: tuple[tuple[str, object], ...] = (
    ("ahcore.namespace", namespace),
    ("ahcore.session", session),
    ("ahcore.db", db_plugin),
)


def create_app(
    workdir: str | Path = ".",
    *,
    config: SiteConfig | None = None,
    debug: bool = False,
    extra_plugins: Mapping[str, object] | None = None,
    program_path: Path | None = None,
    check_secret: bool = True,
    check_settings: bool = True,
) -> web.Application:
    """Build (but do not start) the aiohttp application serving ``workdir``.

    Raises :class:`ahcore.config.ConfigError` or
    :class:`ahcore.plugins.PluginError` listing every problem when the site
    cannot start. ``extra_plugins`` supplies plugin objects in-process
    (tests, embedding); the config must still enable them by name.

    Without ``debug`` a ``website.cookie_secret`` under 32 bytes is such a
    problem (SPEC §14); every way of serving a site comes through here, so
    none can skip it. ``check_secret=False`` is for ``ahcore check``, which
    reports the weak secret itself and goes on checking the rest.

    Each enabled plugin's ``check_settings`` hook is asked about its
    settings here, before any start-up hook: an error is a
    :class:`~ahcore.plugins.PluginError` (``ahcore serve`` stops with that
    line), a warning is logged when the application starts.
    ``check_settings=False`` is for ``ahcore check``: the problems are kept
    in ``app[SETTINGS_PROBLEMS]`` and, when one is an error, no plugin's
    ``register_routes`` is called (the app is only for checking).
    """
    workdir = Path(workdir).resolve()
    if config is None:
        config = load_config(workdir, program_path=program_path)
    weak = session.weak_secret_problem(config)
    if weak is not None and check_secret:
        if not debug:
            raise ConfigError([weak], source=workdir / CONFIG_RELPATH)
        log.warning("%s; accepted because of --debug", weak)
    loaded = load_plugins(config, builtins=BUILTIN_PLUGINS, extra=extra_plugins)
    pm = loaded.pm
    site = Site(
        workdir, config, pm, debug=debug, offers=loaded.offers, plugin_warnings=loaded.warnings
    )

    found = site.settings_problems()
    errors = [p.render(workdir) for p in found if p.is_error]
    if errors and check_settings:
        raise PluginError(errors)
    warnings = [p.render(workdir) for p in found if not p.is_error] + typo_warnings(config.raw)

    app = web.Application(
        client_max_size=config.website.client_max_size,
        handler_args={"max_field_size": 8190, "max_line_size": 8190},
    )
    app[SITE_KEY] = site
    app[START_WARNINGS] = warnings
    app[SETTINGS_PROBLEMS] = found
    site.app = app
    install_registry(app)  # before register_routes and init(app) may register functions

    # Plugins build their routes from their settings: with a settings error
    # (only ever here for `ahcore check`, which serves nothing) they are left out.
    for result in [] if errors else pm.hook.register_routes(app=app):
        if result is not None and hasattr(result, "__await__"):
            raise TypeError("register_routes must be synchronous")
    # One request path: every route behind the same guard, wrapped once
    # when it is registered; no middleware layer (see ahcore.errors.guard).
    guard_routes(app)
    if config.hot_reload_settings.enabled:
        reloader = HotReloader(site)
        app[HOT_RELOADER] = reloader
        # Every method: the endpoint answers 405 itself, so a GET never falls
        # through to the catch-all (and a file of that name).
        app.router.add_route("*", ENDPOINT, guard(reloader.endpoint, site))
    catch_all = CatchAllResource("/{tail:.*}")
    app.router.register_resource(catch_all)
    catch_all.add_route("*", guard(partial(serve, site), site))

    app[OUTBOUND] = Outbound()  # scripts' HttpClient/StreamHttpClient: one session, closed at cleanup
    app.on_response_prepare.append(response_preparer(site))
    # One async generator per resource: started in this order, stopped in
    # the reverse one, and a failure at start-up stops exactly what had
    # started (aiohttp unwinds the contexts entered so far when the runner
    # cleans up after a failed setup, as run_app does).
    app.cleanup_ctx.append(_routes_sealed)
    app.cleanup_ctx.append(session.sessions_lifecycle)
    app.cleanup_ctx.append(_outbound)
    app.cleanup_ctx.append(_namespace)
    app.cleanup_ctx.append(pools_lifecycle)
    app.cleanup_ctx.append(_plugins)
    if config.hot_reload_settings.enabled:
        app.cleanup_ctx.append(_hot_reloader)
    app.cleanup_ctx.append(background_tasks)
    if site.uploads is not None:
        app.cleanup_ctx.append(_upload_janitor)
    app.on_startup.append(report_unregistered)  # after every start-up hook and starter
    return app


class CatchAllResource(web.DynamicResource):
    """The catch-all route's resource: it matches every path without a pattern.

    aiohttp's ``/{tail:.*}`` runs a regular expression and decodes the
    path into ``match_info["tail"]`` on every request; the pipeline reads
    the raw path itself and never looks at ``match_info``, so the match is
    empty. Registered last, it is tried only after every other route.
    """

    def _match(self, path: str) -> dict[str, str] | None:
        return {}


def response_preparer(site: Site) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """The ``on_response_prepare`` handler: save the session if needed, then the security headers.

    One signal handler for both, bound to ``site`` (no app lookup per
    response, and a sub-application's answers get the headers too), the
    session's coroutine only when a session may need saving: this runs for
    every response.
    """
    may_need_saving, save = session.may_need_saving, session.on_response_prepare

    async def prepare_response(request: web.Request, response: web.StreamResponse) -> None:
        if may_need_saving(request):
            await save(request, response)
        snapshot = site.snapshot
        set_site_headers(response, snapshot.response_headers, snapshot.server_header)

    return prepare_response


async def _routes_sealed(app: web.Application) -> AsyncIterator[None]:
    """Problems of the config logged; routes added since create_app (``init(app)``) guarded."""
    app[SITE_KEY].log_problems()
    for warning in app[START_WARNINGS]:
        log.warning("%s", warning)
    guard_routes(app)
    yield


async def _outbound(app: web.Application) -> AsyncIterator[None]:
    """Scripts' ``HttpClient``/``StreamHttpClient`` session: closed after every plugin stopped."""
    yield
    await app[OUTBOUND].close()


async def _namespace(app: web.Application) -> AsyncIterator[None]:
    """The script namespace (``env_globals``), before any plugin starts."""
    await app[SITE_KEY].build_namespace(app)
    yield


async def _plugins(app: web.Application) -> AsyncIterator[None]:
    """The plugins' ``on_startup`` hooks; their ``on_shutdown`` hooks once they all ran.

    One pluggy call (wrappers wrap it once); async implementations return
    coroutines awaited here one after another, in call order. A route a
    hook adds goes behind the guard like the others. An exception stops
    start-up, and no ``on_shutdown`` runs for a start-up that did not
    finish; what started before (sessions, pools) is still stopped.
    """
    pm = app[SITE_KEY].pm
    for result in pm.hook.on_startup(app=app):
        await await_me_maybe(result)
    guard_routes(app)
    yield
    await call_each(pm, "on_shutdown", isolate=True, app=app)


async def _hot_reloader(app: web.Application) -> AsyncIterator[None]:
    """The file watcher and the reload listener of ``hot_reload``."""
    reloader = app[HOT_RELOADER]
    await reloader.start()
    yield
    await reloader.stop()


async def _upload_janitor(app: web.Application) -> AsyncIterator[None]:
    """The task that sweeps stale partial uploads."""
    site = app[SITE_KEY]
    assert site.uploads is not None
    settings = site.config.raw.get("uploads", {}) if isinstance(site.config.raw, dict) else {}
    task = asyncio.create_task(
        janitor(
            site.uploads,
            float(settings.get("part_max_age", 3600)),
            float(settings.get("sweep_every", 600)),
        )
    )
    app[UPLOAD_JANITOR] = task
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
