"""ahserver's ``webapp(init)`` and ``webserver(...)`` on ahcore's serving.

ahserver 1.2.0 parsed ``-w/--workdir`` and ``-p/--port``, loaded the
config, called ``init()`` with no argument so the app module could register
names (``ServerEnv()``, ``add_startup``), then served. Here the command
line and the serving are ahcore's (:func:`ahcore.api.webapp`: the same two
flags, plus ``--host``, ``--workers N``, ``--debug``); ``init`` is called in
each worker with the application being started made current, so
``ServerEnv()`` and ``add_startup`` inside it bind to that application.
``init(app)`` (one argument) is accepted as well.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ahcore.api import PluginError, get_site, serve_options
from ahcore.api import webapp as serve
from ahcore_compat.appstate import compat_enabled, starting
from ahcore_compat.serverenv import ServerEnv


@dataclass(frozen=True)
class CompatInit:
    """The ``init`` handed to ahcore: picklable, so spawned workers can run it too."""

    init: Callable[..., Any] | None
    port: str | None = None

    def __call__(self, app: web.Application) -> None:
        site = get_site(app)
        if not compat_enabled(site):
            raise PluginError(
                [
                    "ahserver.webapp needs the 'compat' plugin: add \"compat\": true "
                    f"to the plugins section of {site.workdir / 'conf' / 'config.json'}"
                ]
            )
        env = ServerEnv.of(app)
        # ahserver set these on its ServerEnv (after init; they are known before).
        env.workdir = str(site.workdir)
        env.port = self.port
        self.init_module_names()
        if self.init is None:
            return
        with starting(app):
            if _takes_argument(self.init):
                self.init(app)
            else:
                self.init()

    def init_module_names(self) -> None:
        # The ahserver README's example calls ServerEnv() in init without
        # importing it (it worked nowhere); give init's module the name if,
        # and only if, it has none of its own.
        module_globals = getattr(self.init, "__globals__", None)
        if isinstance(module_globals, dict):
            module_globals.setdefault("ServerEnv", ServerEnv)


def _takes_argument(func: Callable[..., Any]) -> bool:
    try:
        return bool(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return False


def _port_of(argv: list[str]) -> str | None:
    port = serve_options(argv).port
    return None if port is None else str(port)


def webapp(init_func: Callable[..., Any] | None = None, app: Any = None) -> None:
    """Serve the site named by ``-w``/``-p`` after ``init_func()`` registered its names.

    ahserver's ``app=`` (a prepared aiohttp application) has no ahcore
    equivalent: ahcore builds the application from the site; add routes and
    middleware in ``init(app)`` instead.
    """
    if app is not None:
        raise TypeError(
            "webapp(init, app=...) is not supported: ahcore builds the application "
            "from the site; take it as init(app) and add to it there"
        )
    argv = sys.argv[1:]
    serve(CompatInit(init_func, _port_of(argv)), argv=argv)


def webserver(
    init_func: Callable[..., Any] | None, workdir: str, port: int | str | None = None, app: Any = None
) -> None:
    """ahserver's ``webserver(init, workdir, port=None)``: :func:`webapp` without a command line."""
    if app is not None:
        raise TypeError("webserver(..., app=...) is not supported; see webapp()")
    argv = ["-w", str(workdir)] + ([] if port is None else ["-p", str(port)])
    serve(CompatInit(init_func, None if port is None else str(port)), argv=argv)
