"""``ServerEnv``: ahserver's global environment, one per application.

In ahserver ``ServerEnv()`` was a process-wide singleton ``DictObject``;
whatever an app module assigned to it (``env.get_module_dbname = f``) every
script could call. Here ``ServerEnv()`` is the environment of the
application being started or served (:func:`ahcore_compat.appstate.current_app`),
so two applications in one process never see each other's names:

- assigning an attribute or item adds a name to *that* application's script
  namespace: through the compat plugin's ``env_globals`` before the
  application starts, through :func:`ahcore.api.add_globals` after;
- reading falls back to the application's script namespace (``env.uuid``,
  ``env.configValue``), and a name that is nowhere reads as ``None``, as
  ahserver's ``DictObject`` did;
- ``env.event_dispatcher`` is the application's event dispatcher
  (``bind``/``unbind``/``dispatch``; the kernel dispatches ``hot_reload``).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, cast

from aiohttp import web

from ahcore.api import EventDispatcher, add_globals, get_site
from ahcore_compat.appstate import CompatState, current_app, state_of

_OWN = ("_app", "_state")


class ServerEnv(MutableMapping[str, Any]):
    """The environment of one application; ``ServerEnv()`` finds the current one.

    ``ServerEnv()`` called where no application is being started or served
    raises :class:`ahcore_compat.appstate.NoApplication`; code that holds the
    application uses :meth:`ServerEnv.of`.
    """

    __slots__ = _OWN

    _app: web.Application
    _state: CompatState

    def __new__(cls) -> ServerEnv:
        return cls.of(current_app("ServerEnv()"))

    @classmethod
    def of(cls, app: web.Application) -> ServerEnv:
        """The environment of ``app`` (the same object on every call)."""
        state = state_of(app)
        env = state.env
        if env is None:
            env = object.__new__(cls)
            object.__setattr__(env, "_app", app)
            object.__setattr__(env, "_state", state)
            state.env = env
        return cast("ServerEnv", env)

    # ---------------------------------------------------------------- events

    @property
    def event_dispatcher(self) -> EventDispatcher:
        """The application's event dispatcher (``hot_reload`` and the site's own events)."""
        return get_site(self._app).events

    # ---------------------------------------------------------------- names

    def _namespace(self) -> dict[str, Any]:
        # The script namespace is built when the app starts; until then only
        # the names assigned here are known.
        return {**get_site(self._app).global_namespace, **self._state.names}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _OWN:  # protocol probes, unset slots
            raise AttributeError(name)
        return self._namespace().get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN or name == "event_dispatcher":
            raise AttributeError(f"ServerEnv.{name} is the application's own and cannot be set")
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._namespace()[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._state.names[name] = value
        if self._state.started:
            add_globals(self._app, {name: value})

    def __delitem__(self, name: str) -> None:
        # Only the names assigned here can go; a started app's scripts keep
        # seeing the name until the app restarts.
        del self._state.names[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._namespace())

    def __len__(self) -> int:
        return len(self._namespace())

    def __repr__(self) -> str:
        return f"<ServerEnv of {get_site(self._app).workdir} ({len(self._state.names)} names set)>"


def get_serverenv(name: str) -> Any:
    """ahserver's ``get_serverenv(name)``: ``ServerEnv().get(name)``."""
    return ServerEnv().get(name)


def set_serverenv(name: str, value: Any) -> None:
    """ahserver's ``set_serverenv(name, value)``: ``ServerEnv()[name] = value``."""
    ServerEnv()[name] = value
