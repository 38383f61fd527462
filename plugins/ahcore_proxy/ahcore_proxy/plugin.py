"""The plugin module registered as ``proxy`` in the ``ahcore`` entry-point group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ahcore.api import ProcessorSpec, get_site, hookimpl
from ahcore_proxy.description import METHODS
from ahcore_proxy.environment import ENVIRONMENT, make_environment
from ahcore_proxy.processor import STATE, ProxyProcessor, ProxyState, make_client_session
from ahcore_proxy.settings import PLUGIN_NAME, parse_settings

#: The suffix used when the site config does not list processors.
SUFFIXES = (".proxy",)


@hookimpl
def register_processor() -> ProcessorSpec:
    """Proxy files are templates describing an upstream request (:class:`ProxyProcessor`)."""
    return ProcessorSpec(PLUGIN_NAME, SUFFIXES, ProxyProcessor, methods=METHODS)


@hookimpl
def check_settings(settings: Mapping[str, Any]) -> list[str]:
    """``plugins.proxy``: ``allow_hosts`` entries and ``time_limit``, as start-up reads them."""
    try:
        parse_settings(settings)
    except ValueError as exc:
        return [str(exc)]
    return []


@hookimpl
def on_startup(app: web.Application) -> None:
    """Check ``plugins.proxy``; make the app's template environment and its one client session."""
    site = get_site(app)
    settings = parse_settings(site.plugin_settings(PLUGIN_NAME))
    app[ENVIRONMENT] = make_environment(site)
    app[STATE] = ProxyState(settings, make_client_session(settings))


@hookimpl
async def on_shutdown(app: web.Application) -> None:
    """Close the client session (and its pooled upstream connections)."""
    state = app.get(STATE)
    if state is not None:
        await state.session.close()
