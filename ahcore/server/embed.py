"""Embedding: ahserver's ``webapp(init)``, a script that serves its site.

A site's own ``run.py`` calls :func:`webapp` (``ahcore.api.webapp`` for
plugins, ``ahcore.server.webapp`` for scripts): the same flags as
``ahcore serve`` (defined once, in :mod:`ahcore.server.options`), then
``init(app)`` in each worker before it starts, then serving.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from ahcore.server.options import serve_options, without_dev
from ahcore.server.supervisor import serve_main


@dataclass(frozen=True)
class _IgnoreApp:
    """Adapts ahserver's ``init()`` (no argument); picklable for spawned workers."""

    init: Callable[[], Any]

    def __call__(self, app: web.Application) -> Any:
        return self.init()


def webapp(
    init: Callable[..., Any] | None = None,
    argv: list[str] | None = None,
    plugins: dict[str, str] | None = None,
) -> None:
    """Embed ahcore as ahserver's ``webapp(init)`` did: parse the serve flags, run ``init``, serve.

    ``init`` is called in each worker with the application before it starts
    (ahserver's ``init()`` with no argument is accepted too), so it can bind
    events or add start-up tasks with ``app.on_startup``. ``plugins`` maps
    plugin names to importable module paths for plugins that are not
    installed as distributions; the site config must still enable them.
    Exits the process: 0 after a clean stop, 1 or 2 (one line on stderr)
    when the site cannot start.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    wrapped = None
    if init is not None:
        takes_app = bool(inspect.signature(init).parameters)
        wrapped = init if takes_app else _IgnoreApp(init)
    program = Path(sys.argv[0]).resolve().parent if sys.argv and sys.argv[0] else None
    # --dev reruns this very script; ``argv`` given in code is not on its command line.
    script = [sys.executable, *sys.argv[:1]] if sys.argv and sys.argv[0] else [sys.executable]
    opts = serve_options(
        argv,
        program_path=program,
        init=wrapped,
        plugin_modules=dict(plugins or {}),
        command=(*script, *without_dev(argv)),
    )
    sys.exit(serve_main(opts))
