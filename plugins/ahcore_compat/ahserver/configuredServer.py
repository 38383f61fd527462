"""``from ahserver.configuredServer import add_startup``: start-up and clean-up work.

Bound to the application being started (see ``ahcore_compat.lifecycle``):
``add_startup(func)`` runs ``func(app)`` at start (a coroutine object runs in
the background), ``add_cleanupctx(gen)`` is aiohttp's ``cleanup_ctx``,
``add_cleanup(func)`` runs ``func(app)`` at shutdown.
"""

from ahcore_compat.functions import RegisterFunction
from ahcore_compat.lifecycle import add_cleanup, add_cleanupctx, add_startup

__all__ = ["RegisterFunction", "add_cleanup", "add_cleanupctx", "add_startup"]
