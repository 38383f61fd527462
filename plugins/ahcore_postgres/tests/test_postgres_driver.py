"""The postgres driver plugin: config spellings and the ahserver driver aliases."""

from __future__ import annotations

from ahcore_postgres.driver import connect_kwargs

from ahcore.api import DatabaseConfig, get_site
from ahcore.testing.databases import database_config


def test_connect_kwargs_accepts_ahserver_spellings() -> None:
    config = DatabaseConfig(
        driver="aiopg",
        kwargs={"host": "h", "port": 5433, "user": "u", "password": "p", "db": "d", "junk": 1},
        acquire_timeout=7,
    )
    assert connect_kwargs(config) == {
        "host": "h",
        "port": 5433,
        "user": "u",
        "password": "p",
        "dbname": "d",
        "connect_timeout": 7,
    }


async def test_ahserver_driver_names_reach_this_plugin(make_site, ahcore_client, tmp_path) -> None:
    db = await database_config("postgres", tmp_path)
    for alias in ("aiopg", "psycopg2", "postgresql"):
        site = make_site(
            config={
                "website": {"paths": [["$[workdir]$/wwwroot", ""]], "cookie_secret": "x" * 32},
                "databases": {"db": {**db, "driver": alias}},
            }
        )
        client = await ahcore_client(site)
        async with get_site(client.app).pools.sqlorContext("db") as sor:
            assert sor.dialect.name == "postgres"
            assert (await sor.sqlExe("select ${x}$::int + 1 as y", {"x": 41}))[0].y == 42
