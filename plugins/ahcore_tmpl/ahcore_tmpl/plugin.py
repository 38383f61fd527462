"""The ahcore plugin module of ahcore-tmpl (entry point ``tmpl``).

Only public hooks are used, so this file is also an example for third-party
processor plugins: declare the processor, build per-site state at start-up
and keep it on the application, drop caches on hot reload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ahcore.api import ProcessorSpec, get_site, hookimpl
from ahcore_tmpl.environment import ENVIRONMENT_KEY, SYNC_ENVIRONMENT_KEY, install_environment
from ahcore_tmpl.processor import PROCESSOR_NAME, SUFFIXES, TmplProcessor
from ahcore_tmpl.undefined import undefined_mode


@hookimpl
def register_processor() -> ProcessorSpec:
    """``.tmpl`` files (and ``.html.tmpl``, ``.tmpl.js``, ``.tmpl.css``) are Jinja2 templates."""
    return ProcessorSpec(name=PROCESSOR_NAME, suffixes=SUFFIXES, factory=TmplProcessor)


@hookimpl
def register_routes(app: web.Application) -> None:
    """No routes: check ``plugins.tmpl`` while the app is built, so a bad value stops start-up
    (and ``ahcore check``) with one clear line instead of failing at the first page."""
    undefined_mode(get_site(app))


@hookimpl
def on_startup(app: web.Application) -> None:
    """Give the site its own Jinja2 environments before the first request."""
    install_environment(app, get_site(app))


@hookimpl
def on_hot_reload(app: web.Application, data: Mapping[str, Any]) -> None:
    """Forget compiled includes and layouts (both modes); they are recompiled on next use."""
    for key in (ENVIRONMENT_KEY, SYNC_ENVIRONMENT_KEY):
        env = app.get(key)
        if env is not None and env.cache is not None:
            env.cache.clear()
