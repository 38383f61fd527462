"""``from ahserver.webapp import webapp``: serve a site after ``init()`` registered its names."""

from ahcore_compat.launcher import webapp, webserver
from ahcore_compat.serverenv import ServerEnv

__all__ = ["ServerEnv", "webapp", "webserver"]
