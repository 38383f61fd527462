"""The data layer as a kernel plugin: per-app pools, script names, the SQLite driver."""

from __future__ import annotations

from ahcore import get_site
from ahcore.db.pools import DBPOOLS_KEY, get_pools


def sqlite_site(make_site, dbname="app.db", maxconn=2):
    return make_site(
        config={
            "website": {"paths": [["$[workdir]$/wwwroot", ""]], "cookie_secret": "x" * 32},
            "databases": {
                "db": {"driver": "sqlite3", "kwargs": {"dbname": dbname}, "maxconn": maxconn}
            },
        }
    )


async def test_each_app_has_its_own_pools_and_script_names(make_site, ahcore_client) -> None:
    one = await ahcore_client(sqlite_site(make_site))
    two = await ahcore_client(sqlite_site(make_site, dbname="app.db"))
    assert get_pools(one.app) is not get_pools(two.app)
    ns = get_site(one.app).global_namespace
    assert ns["DBPools"]() is one.app[DBPOOLS_KEY]
    assert ns["DBPools"]({"ignored": True}) is one.app[DBPOOLS_KEY]
    async with ns["get_sor_context"]({}, "db") as sor:
        await sor.sqlExe("create table t (id integer primary key, v text)", {})
        await sor.C("t", {"id": 1, "v": "x"})
    async with get_pools(one.app).sqlorContext("db") as sor:
        assert [dict(r) for r in await sor.R("t", {})] == [{"id": 1, "v": "x"}]


async def test_sqlite_file_is_relative_to_the_site_and_in_wal_mode(
    make_site, ahcore_client
) -> None:
    site = sqlite_site(make_site, dbname="app.db")
    client = await ahcore_client(site)
    async with get_pools(client.app).sqlorContext("db") as sor:
        mode = await sor.sqlExe("PRAGMA journal_mode", {})
    assert list(mode[0].values()) == ["wal"]
    assert (site / "app.db").exists()


async def test_sqlite_pool_is_bounded(make_site, ahcore_client) -> None:
    client = await ahcore_client(sqlite_site(make_site, dbname="app.db", maxconn=2))
    pools = get_pools(client.app)
    pool = await pools.database("db").pool()
    async with pools.sqlorContext("db"), pools.sqlorContext("db"):
        assert pool._slots.locked()
    assert len(pool._idle) == 2


async def test_pools_close_at_shutdown(make_site, ahcore_client) -> None:
    client = await ahcore_client(sqlite_site(make_site, dbname="app.db"))
    pools = get_pools(client.app)
    async with pools.sqlorContext("db") as sor:
        await sor.sqlExe("select 1", {})
    await client.close()
    assert pools.database("db")._pool is None
