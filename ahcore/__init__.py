"""ahcore: a file-driven application server for Python on aiohttp.

A site is a folder; a URL names a file; the file's suffix picks a processor
plugin. See ``ahcore.hookspecs`` for the plugin contract.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ahcore.appkeys import get_site
from ahcore.background import add_startup
from ahcore.context import RequestContext, current_context
from ahcore.dictobject import DictObject
from ahcore.errors import bad_request, server_error
from ahcore.jsonutil import dumps, json_response
from ahcore.plugins import hookimpl
from ahcore.processor import Processor, ProcessorSpec, to_response
from ahcore.site import Site

try:
    __version__ = version("ahcore")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "DictObject",
    "Processor",
    "ProcessorSpec",
    "RequestContext",
    "Site",
    "__version__",
    "add_startup",
    "bad_request",
    "current_context",
    "dumps",
    "json_response",
    "server_error",
    "create_app",
    "get_site",
    "hookimpl",
    "to_response",
    "webapp",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `import ahcore` stays light for plugin modules.
    if name == "create_app":
        from ahcore.app import create_app

        return create_app
    if name == "webapp":
        from ahcore.server import webapp

        return webapp
    raise AttributeError(name)
