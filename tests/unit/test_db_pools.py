"""ahcore.db.pools: each app's databases and the sqlorContext transaction scope.

Pools under stress (exhaustion, outages, killed connections) are tested in
``tests/db/test_pools.py``; this file drives :class:`DBPools` with a
recording driver and with the real SQLite one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3

import pytest
from aiohttp import web

from ahcore import hookimpl
from ahcore.appkeys import get_site
from ahcore.config import DatabaseConfig
from ahcore.db.driver import DriverSpec
from ahcore.db.errors import BadQuery, DatabaseUnavailable, DataConflict
from ahcore.db.pools import DBPOOLS_KEY, DBPools, get_pools
from ahcore.db.sqlite import SQLITE
from ahcore.db.sqlor import SQLor


class RecordingConnection:
    dialect = SQLITE

    def __init__(self, log: list, commit_error: BaseException | None) -> None:
        self.log = log
        self.commit_error = commit_error

    async def begin(self, *, read_only=False):
        self.log.append(("begin", read_only))

    async def set_time_limit(self, ms):
        self.log.append(("limit", ms))

    async def commit(self):
        self.log.append("commit")
        if self.commit_error is not None:
            raise self.commit_error

    async def rollback(self):
        self.log.append("rollback")


class RecordingPool:
    dialect = SQLITE

    def __init__(self, driver: RecordingDriver) -> None:
        self.driver = driver

    @contextlib.asynccontextmanager
    async def acquire(self):
        self.driver.log.append("acquire")
        try:
            yield RecordingConnection(self.driver.log, self.driver.commit_error)
        finally:
            self.driver.log.append("release")

    async def close(self):
        self.driver.log.append("close")
        if self.driver.close_error:
            raise RuntimeError("close failed")


class RecordingDriver:
    def __init__(self) -> None:
        self.log: list = []
        self.commit_error: BaseException | None = None
        self.close_error = False
        self.fail_creations = 0
        self.created = 0

    async def create_pool(self, name, config, site):
        await asyncio.sleep(0)
        if self.fail_creations:
            self.fail_creations -= 1
            raise ConnectionRefusedError("server down")
        self.created += 1
        return RecordingPool(self)

    @hookimpl
    def register_db_driver(self):
        return DriverSpec("rec", self.create_pool, aliases=("recorder",))


@pytest.fixture
def driver():
    return RecordingDriver()


@pytest.fixture
def pools(make_app, driver) -> DBPools:
    app = make_app(
        {"databases": {"main": {"driver": "rec"}, "alias": {"driver": "Recorder"},
                       "lite": {"driver": "sqlite3", "kwargs": {"dbname": "lite.db"}}}},
        plugins={"rec": driver},
    )
    return DBPools(get_site(app))


def test_each_configured_database_with_its_driver(pools) -> None:
    assert set(pools.databases) == {"main", "alias", "lite"}
    assert "main" in pools and "nope" not in pools
    assert pools.database("alias").driver.name == "rec"
    with pytest.raises(LookupError, match="no database 'nope' in the config's 'databases'"):
        pools.database("nope")


def test_add_database_never_replaces_and_needs_a_driver(pools) -> None:
    pools.add_database("plugin_store", DatabaseConfig(driver="sqlite", kwargs={"dbname": "p.db"}))
    assert "plugin_store" in pools
    with pytest.raises(ValueError, match="database 'main' already exists"):
        pools.add_database("main", DatabaseConfig(driver="sqlite"))
    with pytest.raises(LookupError, match="no enabled driver for 'oracle'"):
        pools.add_database("x", DatabaseConfig(driver="oracle"))


async def test_the_pool_is_made_on_first_use_once_even_when_asked_at_once(pools, driver) -> None:
    assert driver.created == 0  # a site starts while its database is down
    db = pools.database("main")
    first, second = await asyncio.gather(db.pool(), db.pool())
    assert first is second and driver.created == 1


async def test_a_failed_creation_is_503_and_retried_by_the_next_request(pools, driver, caplog) -> None:
    driver.fail_creations = 1
    with caplog.at_level(logging.ERROR, logger="ahcore.db"):
        with pytest.raises(DatabaseUnavailable) as info:
            async with pools.sqlorContext("main"):
                pass
    assert str(info.value) == "database 'main' is unavailable"
    assert "server down" not in info.value.text  # the detail goes to the log
    assert "server down" in caplog.text
    async with pools.sqlorContext("main") as sor:
        assert isinstance(sor, SQLor) and sor.dbname == "main"
    assert driver.created == 1


async def test_normal_exit_commits(pools, driver) -> None:
    async with pools.sqlorContext("main", read_only=True, time_limit_ms=250):
        pass
    assert driver.log == ["acquire", ("begin", True), ("limit", 250), "commit", "release"]


async def test_an_exception_rolls_back_and_propagates(pools, driver) -> None:
    with pytest.raises(KeyError):
        async with pools.sqlorContext("main"):
            raise KeyError("script bug")
    assert driver.log == ["acquire", ("begin", False), "rollback", "release"]


async def test_cancellation_rolls_back(pools, driver) -> None:
    with pytest.raises(asyncio.CancelledError):
        async with pools.sqlorContext("main"):
            raise asyncio.CancelledError
    assert "rollback" in driver.log and "commit" not in driver.log


async def test_a_redirect_commits_and_an_http_error_rolls_back(pools, driver) -> None:
    with pytest.raises(web.HTTPFound):
        async with pools.sqlorContext("main"):
            raise web.HTTPFound("/done")
    assert driver.log[-2:] == ["commit", "release"]
    driver.log.clear()
    with pytest.raises(web.HTTPBadRequest):
        async with pools.sqlorContext("main"):
            raise web.HTTPBadRequest()
    assert driver.log[-2:] == ["rollback", "release"]


async def test_no_time_limit_unless_asked(pools, driver) -> None:
    async with pools.sqlorContext("main", time_limit_ms=0):
        pass
    assert not any(isinstance(e, tuple) and e[0] == "limit" for e in driver.log)


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (sqlite3.IntegrityError("FOREIGN KEY constraint failed"), DataConflict),
        (sqlite3.IntegrityError("NOT NULL constraint failed: t.secret_column"), BadQuery),
    ],
)
async def test_a_commit_refused_by_the_database_is_a_clean_4xx(pools, driver, error, answer) -> None:
    if answer is DataConflict:
        error.sqlite_errorname = "SQLITE_CONSTRAINT_FOREIGNKEY"
    driver.commit_error = error
    with pytest.raises(answer) as info:
        async with pools.sqlorContext("main"):
            pass
    assert "secret_column" not in info.value.text
    assert driver.log[-3:] == ["commit", "rollback", "release"]


async def test_a_commit_failing_otherwise_propagates_after_rollback(pools, driver) -> None:
    driver.commit_error = sqlite3.OperationalError("disk I/O error")
    with pytest.raises(sqlite3.OperationalError):
        async with pools.sqlorContext("main"):
            pass
    assert driver.log[-3:] == ["commit", "rollback", "release"]


async def test_close_closes_every_pool_and_survives_a_failing_one(pools, driver, caplog) -> None:
    await pools.database("main").pool()
    await pools.database("alias").pool()
    driver.close_error = True
    with caplog.at_level(logging.ERROR, logger="ahcore.db"):
        await pools.close()
    assert driver.log.count("close") == 2
    assert "closing the pool of database" in caplog.text


async def test_with_the_real_sqlite_driver(pools) -> None:
    async with pools.sqlorContext("lite") as sor:
        await sor.sqlExe("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", {})
    pools.clear_schema_cache()
    async with pools.sqlorContext("lite") as sor:
        await sor.C("t", {"id": 1, "v": "a"})
    with pytest.raises(RuntimeError):
        async with pools.sqlorContext("lite") as sor:
            await sor.C("t", {"id": 2, "v": "b"})
            raise RuntimeError("rolled back")
    async with pools.sqlorContext("lite", read_only=True) as sor:
        assert [r.v for r in await sor.R("t")] == ["a"]
    await pools.close()


def test_get_pools(make_app) -> None:
    app = make_app()
    app[DBPOOLS_KEY] = pools = DBPools(get_site(app))
    assert get_pools(app) is pools
