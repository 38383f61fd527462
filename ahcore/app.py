"""Building an ahcore application for a site folder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from ahcore import namespace, session
from ahcore.appkeys import SITE_KEY
from ahcore.background import start_background, stop_background
from ahcore.config import CONFIG_RELPATH, ConfigError, SiteConfig, load_config
from ahcore.db import plugin as db_plugin
from ahcore.errors import error_middleware, guarded
from ahcore.functions import install_registry, report_unregistered
from ahcore.headers import apply_security_headers
from ahcore.hotreload import ENDPOINT, HotReloader
from ahcore.pipeline import site_handler
from ahcore.plugins import await_me_maybe, call_each, load_plugins
from ahcore.site import Site
from ahcore.uploads import janitor

log = logging.getLogger("ahcore.app")

UPLOAD_JANITOR: web.AppKey[asyncio.Task[None]] = web.AppKey("ahcore.upload_janitor", asyncio.Task)
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

    app = web.Application(
        client_max_size=config.website.client_max_size,
        handler_args={"max_field_size": 8190, "max_line_size": 8190},
    )
    app[SITE_KEY] = site
    site.app = app
    install_registry(app)  # before register_routes and init(app) may register functions

    for result in pm.hook.register_routes(app=app):
        if result is not None and hasattr(result, "__await__"):
            raise TypeError("register_routes must be synchronous")
    # Routes of plugins need the error/CSRF guard as a middleware; without
    # them the catch-all calls the guard itself and the app has no
    # middleware layers at all (see ahcore.errors.guard).
    with_middleware = len(app.router.routes()) > 0
    if with_middleware:
        app.middlewares.append(error_middleware)
    own = (lambda handler: handler) if with_middleware else guarded
    if config.hot_reload_settings.enabled:
        reloader = HotReloader(site)
        app[HOT_RELOADER] = reloader
        # Every method: the endpoint answers 405 itself, so a GET never falls
        # through to the catch-all (and a file of that name).
        app.router.add_route("*", ENDPOINT, own(reloader.endpoint))
    app.router.add_route("*", "/{tail:.*}", site_handler(site, guarded=not with_middleware))

    app.on_response_prepare.append(_prepare_response)
    app.on_startup.append(_startup)
    app.on_startup.append(report_unregistered)  # after every start-up hook and starter
    app.on_cleanup.append(_cleanup)
    return app


async def _prepare_response(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: save the session if needed, then the security headers.

    One signal handler for both, the session's coroutine only when a session
    may need saving: this runs for every response.
    """
    if session.may_need_saving(request):
        await session.on_response_prepare(request, response)
    apply_security_headers(request, response)


async def _startup(app: web.Application) -> None:
    site = app[SITE_KEY]
    site.log_problems()
    await session.setup_sessions(app, site)
    await site.build_namespace(app)
    # One pluggy call (wrappers wrap it once); async implementations return
    # coroutines that are awaited here one after another, in call order.
    for result in site.pm.hook.on_startup(app=app):
        await await_me_maybe(result)
    if HOT_RELOADER in app:
        await app[HOT_RELOADER].start()
    await start_background(app)
    if site.uploads is not None:
        settings = site.config.raw.get("uploads", {}) if isinstance(site.config.raw, dict) else {}
        app[UPLOAD_JANITOR] = asyncio.create_task(
            janitor(
                site.uploads,
                float(settings.get("part_max_age", 3600)),
                float(settings.get("sweep_every", 600)),
            )
        )


async def _cleanup(app: web.Application) -> None:
    site = app[SITE_KEY]
    await stop_background(app)
    task = app.get(UPLOAD_JANITOR)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if HOT_RELOADER in app:
        await app[HOT_RELOADER].stop()
    await call_each(site.pm, "on_shutdown", isolate=True, app=app)
    await session.close_sessions(app)
