"""The plugin module registered as ``dspy`` in the ``ahcore`` entry-point group.

Only public hooks are used, so this file is the pattern for any processor
plugin: declare the processor, and check settings at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ahcore.api import ProcessorSpec, get_site, hookimpl
from ahcore_dspy.processor import (
    PLUGIN_NAME,
    RUNTIME,
    SCRIPT_METHODS,
    DspyProcessor,
    Runtime,
    parse_time_limit,
    time_limit,
)
from ahcore_dspy.watchdog import Watchdog


@hookimpl
def register_processor() -> ProcessorSpec:
    """``.dspy`` files are run by :class:`DspyProcessor`."""
    return ProcessorSpec(PLUGIN_NAME, (".dspy",), DspyProcessor, methods=SCRIPT_METHODS)


@hookimpl
def check_settings(settings: Mapping[str, Any]) -> list[str]:
    """``plugins.dspy``: ``time_limit`` must be a positive number of seconds."""
    try:
        parse_time_limit(settings)
    except ValueError as exc:
        return [str(exc)]
    return []


@hookimpl
def on_startup(app: web.Application) -> None:
    """Validate ``plugins.dspy`` at start, so a bad setting stops the server
    instead of failing every request."""
    app[RUNTIME] = Runtime(Watchdog(), time_limit(get_site(app)))
