"""The mysql driver plugin: config spellings, aliases, matched-row counts."""

from __future__ import annotations

from ahcore_mysql.driver import connect_kwargs

from ahcore.api import DatabaseConfig, get_site
from ahcore.testing.databases import database_config, reset_tables


def test_connect_kwargs_accepts_ahserver_spellings() -> None:
    config = DatabaseConfig(
        driver="mysql.connector",
        kwargs={"host": "h", "port": "3307", "user": "u", "password": "p", "dbname": "d", "x": 1},
        acquire_timeout=3,
    )
    assert connect_kwargs(config) == {
        "host": "h",
        "port": 3307,
        "user": "u",
        "password": "p",
        "db": "d",
        "charset": "utf8mb4",
        "connect_timeout": 3.0,
    }


async def test_ahserver_driver_names_reach_this_plugin(make_site, ahcore_client, tmp_path) -> None:
    db = await database_config("mysql", tmp_path)
    for alias in ("aiomysql", "mysql.connector", "pymysql"):
        site = make_site(
            config={
                "website": {"paths": [["$[workdir]$/wwwroot", ""]], "cookie_secret": "x" * 32},
                "databases": {"db1": {**db, "driver": alias}},
            }
        )
        client = await ahcore_client(site)
        pools = get_site(client.app).pools
        await reset_tables(pools)
        async with pools.sqlorContext("db1") as sor:
            assert sor.dialect.name == "mysql"
            await sor.C("tbl1", {"id": "a", "field1": 1})
            # An update that changes nothing still reports the matched row, as elsewhere.
            assert await sor.U("tbl1", {"id": "a", "field1": 1}) == 1
