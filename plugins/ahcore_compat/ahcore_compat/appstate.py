"""What ahserver kept in process-wide singletons, kept per application here.

ahserver's ``ServerEnv()``, ``RegisterFunction()`` and the start-up lists of
``configuredServer`` were module-level singletons: two applications in one
process would share them. Here each application has a :class:`CompatState`
under an ``AppKey``, and the one-argument calls app code makes
(``ServerEnv()``, ``add_startup(f)``) find *their* application through
:func:`current_app`:

1. the application being initialised or started: set (a context variable,
   so per task) while ``webapp(init)`` runs ``init`` and while the start-up
   and clean-up functions registered here run — background tasks they start
   inherit it;
2. else the application serving the request being processed (a script, or
   a function a script calls);
3. else there is none, and the call raises :class:`NoApplication` saying
   what to do.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ahcore.api import SiteView, current_context

log = logging.getLogger("ahcore_compat")

PLUGIN_NAME = "compat"

Func = Callable[..., Any]


class NoApplication(RuntimeError):
    """An ahserver-style call made where no application is being started or served."""


@dataclass
class CompatState:
    """One application's ahserver-era registrations."""

    # ServerEnv attribute assignments: names for this app's script namespace.
    names: dict[str, Any] = field(default_factory=dict)
    # add_startup / add_cleanupctx / add_cleanup, in registration order.
    startups: list[Func] = field(default_factory=list)
    cleanup_contexts: list[Func] = field(default_factory=list)
    cleanups: list[Func] = field(default_factory=list)
    # cleanup_ctx generators that got past their yield, to finish at shutdown.
    running_contexts: list[Any] = field(default_factory=list)
    # RegisterFunction registrations (see functions.py).
    functions: dict[str, Func] = field(default_factory=dict)
    # True once the namespace is built: ServerEnv writes then go live.
    started: bool = False
    # The app's ServerEnv object (one per app, made on first use).
    env: Any = None


STATE: web.AppKey[CompatState] = web.AppKey("ahcore_compat.state", CompatState)

# The application being initialised or started in this task (see the module
# docstring). A ContextVar is a key, not shared state: each task has its own.
_starting: contextvars.ContextVar[web.Application | None] = contextvars.ContextVar(
    "ahcore_compat_starting", default=None
)

HOW_TO = (
    "call it inside the init() given to ahserver.webapp.webapp (or in a module "
    "imported there), in a start-up or clean-up function, or while a request is "
    "processed; elsewhere use ahserver.serverenv.ServerEnv.of(app)"
)


@contextlib.contextmanager
def starting(app: web.Application) -> Iterator[None]:
    """Make ``app`` the application ahserver-style calls in this block refer to."""
    token = _starting.set(app)
    try:
        yield
    finally:
        _starting.reset(token)


def current_app(what: str) -> web.Application:
    """The application ``what`` (``"ServerEnv()"`` …) refers to here (module docstring)."""
    app = _starting.get()
    if app is not None:
        return app
    try:
        app = current_context().site.app
    except RuntimeError:
        app = None
    if app is None:
        raise NoApplication(f"{what} is bound to the application being started: {HOW_TO}")
    return app


def compat_enabled(site: SiteView) -> bool:
    """Whether the site enables this plugin: no ``plugins`` section (every ahserver
    config: enabled when installed), or ``"compat"`` set in it."""
    plugins = site.config.plugins
    return plugins is None or plugins.get(PLUGIN_NAME, False) is not False


def state_of(app: web.Application) -> CompatState:
    """The application's :class:`CompatState`, made on first use (before the app is frozen)."""
    state = app.get(STATE)
    if state is None:
        if app.frozen:
            raise NoApplication(
                "this site does not enable the 'compat' plugin; add \"compat\": true "
                "to the plugins section of conf/config.json"
            )
        state = app[STATE] = CompatState()
    return state


async def call_with_app(func: Func, app: web.Application) -> Any:
    """``func(app)`` — or ``func()`` if it takes no argument — awaited if it returns an awaitable."""
    result = func(app) if _takes_argument(func) else func()
    if inspect.isawaitable(result):
        result = await result
    return result


def _takes_argument(func: Func) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: give it the app
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )
