"""The plugin module registered as ``ws`` in the ``ahcore`` entry-point group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ahcore.api import ProcessorSpec, get_site, hookimpl
from ahcore_ws.processor import METHODS, STATE, WsProcessor, WsState, close_all
from ahcore_ws.settings import PLUGIN_NAME, parse_settings

#: ahserver's suffix for websocket scripts (its ``websocket_url`` turns
#: ``.ws`` URLs into ``ws://``/``wss://`` ones).
SUFFIXES = (".ws",)


@hookimpl
def register_processor() -> ProcessorSpec:
    """``.ws`` files are websocket scripts run by :class:`WsProcessor`."""
    return ProcessorSpec(PLUGIN_NAME, SUFFIXES, WsProcessor, methods=METHODS)


@hookimpl
def check_settings(settings: Mapping[str, Any]) -> list[str]:
    """``plugins.ws``: ``max_message_size``, ``heartbeat``, ``allowed_origins``."""
    try:
        parse_settings(settings)
    except ValueError as exc:
        return [str(exc)]
    return []


@hookimpl
def on_startup(app: web.Application) -> None:
    """Check ``plugins.ws``, give the app its connection registry, close connections at stop.

    ahcore's own ``on_shutdown`` hook runs at application *cleanup*, after
    aiohttp has waited ``shutdown_timeout`` for handlers: too late for
    websockets, whose handlers run until the connection closes. aiohttp's
    ``on_shutdown`` signal runs before that wait, and is still open to
    additions while ``on_startup`` runs (the app is frozen after start-up).
    """
    app[STATE] = WsState(parse_settings(get_site(app).plugin_settings(PLUGIN_NAME)))
    app.on_shutdown.append(close_all)
