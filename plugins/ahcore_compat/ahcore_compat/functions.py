"""``RegisterFunction``: appPublic's function registry, one per application.

ahserver 1.2.0 uses ``appPublic.registerfunction.RegisterFunction`` (a
process-wide singleton) for its function routes (``website.startswiths``:
``{leading, registerfunction}``) and for ``rf.exe('ahapp_built', app)``.
App code registers with ``RegisterFunction().register(name, func)``. Here
``RegisterFunction()`` is the registry of the application being started or
served: the kernel's per-application function registry
(:func:`ahcore.api.register_function`, :func:`ahcore.api.registered_function`),
the one function routes call.
"""

from __future__ import annotations

import inspect
from typing import Any

from aiohttp import web

from ahcore.api import register_function, registered_function
from ahcore_compat.appstate import Func, current_app, log, state_of


class RegisterFunction:
    """The named functions of one application (``register``, ``get``, ``exe``)."""

    __slots__ = ("_app",)

    _app: web.Application

    def __new__(cls) -> RegisterFunction:
        return cls.of(current_app("RegisterFunction()"))

    @classmethod
    def of(cls, app: web.Application) -> RegisterFunction:
        """The registry of ``app``."""
        registry = object.__new__(cls)
        registry._app = app
        return registry

    @property
    def registKW(self) -> dict[str, Func]:  # noqa: N802 - appPublic's name
        """The functions registered through ``RegisterFunction`` by name (a copy)."""
        return dict(state_of(self._app).functions)

    def register(self, name: str, func: Func) -> None:
        """Register ``func`` as ``name`` for this application (a later one replaces it)."""
        if not callable(func):
            raise TypeError(f"register({name!r}, ...) needs a function, not {type(func).__name__}")
        register_function(self._app, name, func)
        state_of(self._app).functions[name] = func

    def get(self, name: str) -> Func | None:
        """The function registered as ``name`` (by app code or the kernel), or ``None``."""
        return registered_function(self._app, name)

    async def exe(self, name: str, *args: Any, **kw: Any) -> Any:
        """Call the function ``name`` (awaited if async); ``None`` if nothing is registered."""
        func = self.get(name)
        if func is None:
            log.error("no function registered as %r", name)
            return None
        result = func(*args, **kw)
        if inspect.isawaitable(result):
            result = await result
        return result
