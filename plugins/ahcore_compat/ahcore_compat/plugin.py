"""The ahcore plugin module of ahcore-compat (entry point ``compat``).

Enabled whenever it is installed on a site whose config has no ``plugins``
section (every ahserver config; see ``AHSERVER_BUILTINS`` in the kernel); a
site with the section lists ``"compat": true``. For each application it

- adds the script names of older ahserver versions (``absurl``, ``runSQL``,
  ``runSQLIterator``, ``runSQLPaging``, ``runSQLResultFields``, ``CRUD``)
  and the names app code assigned to ``ServerEnv()`` (``env_globals``);
- runs the ``add_cleanupctx``/``add_startup`` functions at start, last of
  all plugins so that everything they use is ready, and the clean-up side
  at shutdown, first of all plugins so that databases are still open.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ahcore.api import add_globals, get_site, hookimpl
from ahcore_compat.appstate import state_of
from ahcore_compat.lifecycle import run_cleanup, run_startup
from ahcore_compat.oldnames import old_names


@hookimpl
def env_globals(app: web.Application) -> dict[str, Any]:
    """Old ahserver names, then what app code assigned to ``ServerEnv()`` (it wins)."""
    state = state_of(app)
    return {**old_names(get_site(app)), **state.names}


@hookimpl(trylast=True)
async def on_startup(app: web.Application) -> None:
    """From here on ``ServerEnv`` writes reach the live namespace; run the start-up functions."""
    state = state_of(app)
    state.started = True
    if state.names:  # assigned between the namespace build and now
        add_globals(app, state.names)
    await run_startup(app)


@hookimpl(tryfirst=True)
async def on_shutdown(app: web.Application) -> None:
    """Finish cleanup contexts and run the clean-up functions."""
    await run_cleanup(app)
