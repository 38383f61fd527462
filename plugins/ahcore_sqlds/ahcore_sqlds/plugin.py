"""The plugin module registered as ``sqlds`` in the ``ahcore`` entry-point group."""

from __future__ import annotations

from aiohttp import web

from ahcore.api import ProcessorSpec, SiteView, get_site, hookimpl
from ahcore_sqlds.processor import SqldsProcessor
from ahcore_sqlds.settings import PLUGIN_NAME, SqldsSettings


@hookimpl
def register_processor() -> ProcessorSpec:
    """``.sqlds`` files are served by :class:`SqldsProcessor`."""
    return ProcessorSpec(PLUGIN_NAME, (".sqlds",), SqldsProcessor, data=True)


@hookimpl
def check_settings(site: SiteView) -> list[str]:
    """``plugins.sqlds``: ``time_limit_ms``, ``row_cap``, ``batch_rows``, ``html``."""
    try:
        SqldsSettings.of(site)
    except ValueError as exc:
        return [str(exc)]
    return []


@hookimpl
def on_startup(app: web.Application) -> None:
    """Check ``plugins.sqlds`` at start, so a bad setting stops the server, not each request."""
    SqldsSettings.of(get_site(app))
