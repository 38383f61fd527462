"""The data layer as a kernel plugin: pools per application, names for scripts.

Registered in :data:`ahcore.app.BUILTIN_PLUGINS`, it uses only public hooks:
``env_globals`` offers ahserver's ``DBPools()`` and ``get_sor_context``, and
``on_hot_reload`` forgets learnt schemas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiohttp import web

from ahcore.db.pools import DBPOOLS_KEY, DBPools
from ahcore.db.sqlor import SQLor
from ahcore.plugins import hookimpl


async def pools_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """The application's :class:`DBPools`, for as long as it runs (an aiohttp cleanup context).

    Made before any plugin's ``on_startup`` runs and closed after every
    plugin's ``on_shutdown`` — also when a later start-up step fails.
    Connections are made on demand, so nothing here needs a database up.
    """
    from ahcore.appkeys import get_site

    if DBPOOLS_KEY not in app:
        app[DBPOOLS_KEY] = DBPools(get_site(app))
    pools = app[DBPOOLS_KEY]
    yield
    await pools.close()


@hookimpl
def on_hot_reload(app: web.Application, data: Mapping[str, Any]) -> None:
    pools = app.get(DBPOOLS_KEY)
    if pools is not None:
        pools.clear_schema_cache()


@hookimpl
def env_globals(app: web.Application) -> dict[str, Any]:
    # Looked up on call: env_globals runs before on_startup has made the pools.
    def db_pools(*args: Any, **kwargs: Any) -> DBPools:
        """ahserver's ``DBPools()``: the application's pools (arguments are ignored)."""
        return app[DBPOOLS_KEY]

    def get_sor_context(env: Any, name: str) -> AbstractAsyncContextManager[SQLor]:
        """ahserver's ``get_sor_context(env, dbname)``; ``env`` is not needed."""
        # The app's pools, looked up once (an app's state lookup is a Python call);
        # they are made once, before any script runs, and live as long as the app.
        if not known:
            known.append(app[DBPOOLS_KEY])
        return known[0].sqlorContext(name)

    known: list[DBPools] = []
    return {"DBPools": db_pools, "get_sor_context": get_sor_context}
