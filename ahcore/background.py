"""Background work: start-up tasks that live as long as the application.

``add_startup(app, func)`` (or ahserver's ``add_startup(func)`` inside
``webapp(init)``) registers ``func(app)``; when the application starts, a
returned coroutine runs as a background task, and every such task is
cancelled and awaited at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("ahcore.background")

StartupFunc = Callable[..., Any]
TASKS: web.AppKey[list[asyncio.Task[Any]]] = web.AppKey("ahcore.background_tasks", list)
FUNCS: web.AppKey[list[StartupFunc]] = web.AppKey("ahcore.startup_funcs", list)

# The application being initialised by webapp(init), so that ahserver's
# one-argument add_startup(func) knows where to attach. Scoped to the init
# call, not a process-wide registry.
initialising: contextvars.ContextVar[web.Application | None] = contextvars.ContextVar(
    "ahcore_initialising", default=None
)


def add_startup(app_or_func: Any, func: StartupFunc | None = None) -> None:
    """Run ``func(app)`` when the app starts; a coroutine it returns runs in the background.

    Accepts ``add_startup(app, func)``, or ``add_startup(func)`` while
    ``webapp(init)`` runs ``init``.
    """
    if func is None:
        func = app_or_func
        app = initialising.get()
        if app is None:
            raise RuntimeError("add_startup(func) needs the app: call add_startup(app, func)")
    else:
        app = app_or_func
    if inspect.iscoroutine(func):
        coro = func
        func = lambda _app: coro  # noqa: E731  (ahserver passed a coroutine object)
    if FUNCS not in app:
        app[FUNCS] = []
    app[FUNCS].append(func)


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    """Run the start-up functions; cancel the tasks they started when the application stops."""
    await start_background(app)
    yield
    await stop_background(app)


async def start_background(app: web.Application) -> None:
    tasks: list[asyncio.Task[Any]] = []
    for func in app.get(FUNCS, []):
        params = inspect.signature(func).parameters
        result = func(app) if params else func()
        if inspect.isawaitable(result):
            tasks.append(asyncio.ensure_future(result))
    app[TASKS] = tasks


async def stop_background(app: web.Application) -> None:
    tasks = app.get(TASKS, [])
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await task
            except Exception:
                log.exception("background task %r failed", task)
