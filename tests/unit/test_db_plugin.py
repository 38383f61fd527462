"""ahcore.db.plugin: the data layer's hooks and its pools' lifecycle, on a built application."""

from __future__ import annotations

import contextlib

import pytest

from ahcore.appkeys import get_site
from ahcore.db import plugin
from ahcore.db.errors import DatabaseUnavailable
from ahcore.db.pools import DBPOOLS_KEY, DBPools


def sqlite_app(make_app):
    return make_app({"databases": {"db": {"driver": "sqlite3", "kwargs": {"dbname": "app.db"}}}})


def pools_of(app):
    """The pools' cleanup context, entered as aiohttp enters it."""
    return contextlib.asynccontextmanager(plugin.pools_lifecycle)(app)


async def test_the_pools_are_made_at_start_and_closed_at_the_end(make_app) -> None:
    app = sqlite_app(make_app)
    assert DBPOOLS_KEY not in app  # made at start, not when the app is built
    async with pools_of(app):
        pools = app[DBPOOLS_KEY]
        assert isinstance(pools, DBPools) and "db" in pools
        async with pools.sqlorContext("db") as sor:
            await sor.sqlExe("CREATE TABLE t (id INTEGER)", {})
        pool = await pools.database("db").pool()
    with pytest.raises(DatabaseUnavailable, match="is shut down"):
        async with pool.acquire():
            pass


async def test_pools_made_earlier_are_kept(make_app) -> None:
    app = sqlite_app(make_app)
    app[DBPOOLS_KEY] = pools = DBPools(get_site(app))
    async with pools_of(app):
        assert app[DBPOOLS_KEY] is pools


async def test_hot_reload_forgets_learnt_tables(make_app) -> None:
    app = sqlite_app(make_app)
    plugin.on_hot_reload(app, {})  # before start: nothing to forget
    async with pools_of(app):
        await learn_and_forget(app)


async def learn_and_forget(app) -> None:
    pools = app[DBPOOLS_KEY]
    async with pools.sqlorContext("db") as sor:
        await sor.sqlExe("CREATE TABLE t (id INTEGER PRIMARY KEY)", {})
        await sor.C("t", {"id": 1})
    async with pools.sqlorContext("db") as sor:
        await sor.sqlExe("ALTER TABLE t ADD COLUMN v TEXT", {})
        await sor.C("t", {"id": 2, "v": "ignored: the cached table has no v"})
        assert (await sor.R("t", {"id": 2}))[0].v is None
    plugin.on_hot_reload(app, {"source": "http_endpoint"})
    async with pools.sqlorContext("db") as sor:
        await sor.C("t", {"id": 3, "v": "seen after the reload"})
        assert (await sor.R("t", {"id": 3}))[0].v == "seen after the reload"


async def test_script_names_find_the_pools_when_called(make_app) -> None:
    app = sqlite_app(make_app)
    names = plugin.env_globals(app)  # offered before the pools exist
    async with pools_of(app):
        assert names["DBPools"]() is app[DBPOOLS_KEY]
        assert names["DBPools"]("any", "args", ignored=True) is app[DBPOOLS_KEY]
        async with names["get_sor_context"](None, "db") as sor:
            assert await sor.sqlExe("SELECT 1 AS one", {}) == [{"one": 1}]


def test_the_plugin_is_one_of_the_kernels(make_app) -> None:
    site = get_site(make_app())
    assert site.pm.get_plugin("ahcore.db") is plugin
