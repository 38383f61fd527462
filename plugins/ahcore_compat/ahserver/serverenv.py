"""``from ahserver.serverenv import ServerEnv``: the environment of the application being started."""

from ahcore_compat.serverenv import ServerEnv, get_serverenv, set_serverenv

__all__ = ["ServerEnv", "get_serverenv", "set_serverenv"]
