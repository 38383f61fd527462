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
from ahcore_tmpl.engine import TemplateEngine
from ahcore_tmpl.environment import ENVIRONMENT_KEY, SYNC_ENVIRONMENT_KEY, install_environment
from ahcore_tmpl.processor import PROCESSOR_NAME, SUFFIXES, TmplProcessor
from ahcore_tmpl.undefined import UNDEFINED_MODES


@hookimpl
def register_processor() -> ProcessorSpec:
    """``.tmpl`` files (and ``.html.tmpl``, ``.tmpl.js``, ``.tmpl.css``) are Jinja2 templates."""
    return ProcessorSpec(name=PROCESSOR_NAME, suffixes=SUFFIXES, factory=TmplProcessor)


@hookimpl
def check_settings(settings: Mapping[str, Any]) -> list[str]:
    """``plugins.tmpl.undefined`` must be one of :data:`UNDEFINED_MODES` (checked
    while the app is built: ``serve`` and ``ahcore check`` stop with one line)."""
    mode = settings.get("undefined", "empty")
    if mode in UNDEFINED_MODES:
        return []
    return [
        f"plugins.tmpl.undefined: {mode!r} is not one of {', '.join(repr(m) for m in UNDEFINED_MODES)} "
        "(\"empty\": an undefined name renders as ''; \"strict\": it is an error)"
    ]


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


@hookimpl
def env_globals(app: web.Application) -> dict[str, Any]:
    """ahserver's ``tmpl_engine`` (``render(url, **names)``, ``renders(text, data)``) for scripts."""
    return {"tmpl_engine": TemplateEngine(get_site(app))}
