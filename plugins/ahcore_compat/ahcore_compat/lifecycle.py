"""ahserver's ``add_startup``/``add_cleanupctx`` (and ``add_cleanup``) for one application.

ahserver 1.1–1.2 kept module-level lists that ``ConfiguredServer.run``
appended to aiohttp's ``on_startup`` and ``cleanup_ctx``. Here each
application keeps its own lists (:class:`ahcore_compat.appstate.CompatState`)
and the compat plugin runs them from its ``on_startup``/``on_shutdown``
hooks, so they find the database pools and every other plugin ready:

- at start: each ``add_cleanupctx`` generator up to its ``yield``, then each
  ``add_startup`` function, in registration order, each finished before the
  next (aiohttp's order: cleanup contexts are start-up signals that come
  first). ``func(app)`` — or ``func()`` — may be sync or async;
- a coroutine *object* given to ``add_startup`` (the ahserver README's
  ``add_startup(bgwork(10))``) runs as a background task for as long as the
  application, cancelled at shutdown (aiohttp could not run it at all); if
  it fails, the error is logged at once;
- at shutdown: the generators resume in reverse order, then each
  ``add_cleanup`` function runs in registration order; one failing is logged
  and does not stop the others.

While any of them runs, ``ServerEnv()`` and these functions refer to the
application being started.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from ahcore.api import add_startup as background_startup
from ahcore_compat.appstate import (
    Func,
    NoApplication,
    _starting,
    call_with_app,
    log,
    starting,
    state_of,
)


def _app_being_started(what: str) -> web.Application:
    app = _starting.get()
    if app is None:
        raise NoApplication(
            f"{what} registers work for the application being started: call it inside "
            "the init() given to ahserver.webapp.webapp (or in a module imported there) "
            "or in a start-up function"
        )
    return app


def add_startup(func: Func | Awaitable[Any]) -> None:
    """Run ``func(app)`` when the application starts (a coroutine object: in the background)."""
    app = _app_being_started("add_startup()")
    if inspect.isawaitable(func):
        awaitable = func

        async def in_background(_app: web.Application) -> Any:
            with starting(app):
                try:
                    return await awaitable
                except Exception:  # logged when it happens, not at shutdown
                    log.exception("background task %r (add_startup) failed", awaitable)
                    return None

        background_startup(app, in_background)
        return
    if not callable(func):
        raise TypeError(f"add_startup() takes a function or a coroutine, not {type(func).__name__}")
    state_of(app).startups.append(func)


def add_cleanupctx(func: Func) -> None:
    """aiohttp's ``cleanup_ctx``: ``async def f(app): set up; yield; tear down``."""
    app = _app_being_started("add_cleanupctx()")
    if not inspect.isasyncgenfunction(func):
        raise TypeError("add_cleanupctx() takes an async generator function: async def f(app): ... yield ...")
    state_of(app).cleanup_contexts.append(func)


def add_cleanup(func: Func) -> None:
    """Run ``func(app)`` when the application shuts down (sync or async)."""
    app = _app_being_started("add_cleanup()")
    if not callable(func):
        raise TypeError(f"add_cleanup() takes a function, not {type(func).__name__}")
    state_of(app).cleanups.append(func)


async def run_startup(app: web.Application) -> None:
    """Cleanup contexts up to their ``yield``, then start-up functions; an error aborts start-up."""
    state = state_of(app)
    with starting(app):
        for ctx in state.cleanup_contexts:
            gen = ctx(app)
            await gen.__anext__()
            state.running_contexts.append(gen)
        # A start-up function may register another: the loop reaches it too.
        for func in state.startups:
            await call_with_app(func, app)


async def run_cleanup(app: web.Application) -> None:
    """Resume cleanup contexts (last first), then clean-up functions; errors are logged."""
    state = state_of(app)
    with starting(app):
        while state.running_contexts:
            gen = state.running_contexts.pop()
            try:
                await gen.__anext__()
            except StopAsyncIteration:
                continue
            except Exception:
                log.exception("cleanup context %r failed", gen)
                continue
            log.error("cleanup context %r yielded twice; closing it", gen)
            await gen.aclose()
        for func in state.cleanups:
            try:
                await call_with_app(func, app)
            except Exception:
                log.exception("clean-up function %r failed", func)
