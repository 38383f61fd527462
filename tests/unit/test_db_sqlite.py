"""ahcore.db.sqlite: the embedded driver's pool, transactions, limits and concurrency."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from types import SimpleNamespace

import pytest

from ahcore.config import DatabaseConfig
from ahcore.db.errors import DatabaseUnavailable, StatementTimeout
from ahcore.db.sqlite import SqlitePool, create_pool, database_path, register_db_driver
from ahcore.db.sqlitethread import ConnectionClosed

#: Runs for minutes unless stopped (the time limit, or an interrupt).
ENDLESS = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000000)"
    " SELECT count(*) FROM c"
)


@pytest.fixture
async def pool(tmp_path):
    pool = SqlitePool("db", str(tmp_path / "app.db"), maxconn=2, acquire_timeout=5.0)
    async with pool.acquire() as conn:
        await conn.begin()
        await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", [])
        await conn.commit()
    yield pool
    await pool.close()


async def values(pool) -> list[str]:
    async with pool.acquire() as conn:
        await conn.begin(read_only=True)
        rows = (await conn.fetch("SELECT v FROM t ORDER BY id", [])).rows
        await conn.commit()
    return [r[0] for r in rows]


# ---------------------------------------------------------------- the database file


def test_database_path(tmp_path) -> None:
    site = SimpleNamespace(workdir=tmp_path)
    cfg = DatabaseConfig(driver="sqlite3", kwargs={"dbname": "data/app.db"})
    assert database_path(cfg, site) == str(tmp_path / "data" / "app.db")
    assert database_path(DatabaseConfig(driver="sqlite3", dbname="/abs/x.db"), site) == "/abs/x.db"
    assert database_path(DatabaseConfig(driver="sqlite3", kwargs={"database": "d.db"}), site) == str(
        tmp_path / "d.db"
    )
    uri = "file:x.db?mode=ro"
    assert database_path(DatabaseConfig(driver="sqlite3", kwargs={"dbname": uri}), site) == uri
    memory = DatabaseConfig(driver="sqlite3", kwargs={"dbname": ":memory:"})
    shared = database_path(memory, site)
    assert shared.startswith("file:") and "mode=memory&cache=shared" in shared
    assert database_path(memory, SimpleNamespace(workdir=tmp_path)) != shared  # per site
    with pytest.raises(ValueError, match="needs kwargs.dbname"):
        database_path(DatabaseConfig(driver="sqlite3"), site)


def test_the_driver_spec() -> None:
    spec = register_db_driver()
    assert spec.name == "sqlite" and set(spec.aliases) == {"sqlite3", "aiosqlite"}
    assert spec.create_pool is create_pool


async def test_a_new_database_is_in_wal_mode(pool) -> None:
    async with pool.acquire() as conn:
        await conn.begin()
        assert (await conn.fetch("PRAGMA journal_mode", [])).rows == [("wal",)]
        await conn.commit()


def rollback_mode_file(path) -> sqlite3.Connection:
    """A database in SQLite's default rollback-journal mode (as ahserver left them), open."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("INSERT INTO t (v) VALUES ('old')")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    return db


async def test_a_writer_elsewhere_does_not_fail_the_connection_that_would_switch_to_wal(
    tmp_path, caplog
) -> None:
    # Switching a rollback-mode file to WAL needs an exclusive lock, which
    # SQLite refuses at once while another connection (another worker, a
    # script, a cron job) has a write transaction open. That used to raise
    # "database is locked" out of the pool, a 500 for the request.
    path = tmp_path / "old.db"
    other = rollback_mode_file(path)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES ('uncommitted')")
    pool = SqlitePool("db", str(path), maxconn=2, acquire_timeout=5.0)
    try:
        async with pool.acquire() as conn:
            await conn.begin(read_only=True)
            assert (await conn.fetch("SELECT v FROM t", [])).rows == [("old",)]
            assert (await conn.fetch("PRAGMA journal_mode", [])).rows == [("delete",)]
            await conn.commit()
        assert "not switched to WAL mode now" in caplog.text
        other.execute("COMMIT")
        # The next connection opened switches the file, and the first one,
        # still in the pool, follows it: the mode belongs to the file.
        async with pool.acquire() as one, pool.acquire() as two:
            for conn in (one, two):
                await conn.begin()
                assert (await conn.fetch("SELECT count(*) FROM t", [])).rows == [(2,)]
                await conn.commit()
        # The file header says WAL (bytes 18 and 19, the read and write versions: 2).
        assert path.read_bytes()[18:20] == b"\x02\x02"
    finally:
        other.close()
        await pool.close()


async def test_concurrent_first_connections_of_a_rollback_mode_file_all_answer(tmp_path) -> None:
    # A burst of first requests opens every connection of the pool at once,
    # each trying the switch to WAL while the others hold the file.
    path = tmp_path / "old.db"
    rollback_mode_file(path).close()
    pool = SqlitePool("db", str(path), maxconn=8, acquire_timeout=5.0)

    async def read() -> list[tuple[str]]:
        async with pool.acquire() as conn:
            await conn.begin()
            rows = (await conn.fetch("SELECT v FROM t", [])).rows
            await asyncio.sleep(0.01)  # hold it, so the next opens a connection of its own
            await conn.commit()
            return rows

    try:
        assert await asyncio.gather(*(read() for _ in range(8))) == [[("old",)]] * 8
    finally:
        await pool.close()


async def test_a_file_that_is_not_a_database_is_503_and_leaves_no_thread(tmp_path) -> None:
    path = tmp_path / "not.db"
    path.write_bytes(b"this is not an sqlite database file, it is text " * 40)
    threads = {t.name for t in threading.enumerate()}
    pool = SqlitePool("db", str(path), 1, 1.0)
    with pytest.raises(DatabaseUnavailable, match="database 'db' cannot be opened"):
        async with pool.acquire():
            pass
    await asyncio.sleep(0.05)
    assert {t.name for t in threading.enumerate()} <= threads


async def test_a_shared_memory_database_is_one_database_for_the_pool(tmp_path) -> None:
    site = SimpleNamespace(workdir=tmp_path)
    cfg = DatabaseConfig(driver="sqlite3", kwargs={"dbname": ":memory:"}, maxconn=2)
    pool = await create_pool("mem", cfg, site)
    try:
        async with pool.acquire() as one, pool.acquire() as two:
            assert one is not two
            await one.begin()
            await one.execute("CREATE TABLE m (x)", [])
            await one.commit()
            await two.begin()
            assert (await two.fetch("SELECT count(*) FROM m", [])).rows == [(0,)]
            await two.commit()
    finally:
        await pool.close()


async def test_an_unopenable_database_is_503(tmp_path) -> None:
    pool = SqlitePool("db", str(tmp_path / "missing-dir" / "x.db"), 1, 1.0)
    with pytest.raises(DatabaseUnavailable, match="database 'db' cannot be opened"):
        async with pool.acquire():
            pass
    # The slot was given back: the next attempt fails the same way instead of waiting.
    with pytest.raises(DatabaseUnavailable, match="cannot be opened"):
        async with pool.acquire():
            pass


# ---------------------------------------------------------------- the pool


async def test_connections_are_made_on_demand_and_reused(pool) -> None:
    async with pool.acquire() as first:
        pass
    async with pool.acquire() as again:
        assert again is first
    async with pool.acquire() as a, pool.acquire() as b:
        assert a is not b


async def test_an_exhausted_pool_is_503_after_the_acquire_timeout(tmp_path) -> None:
    pool = SqlitePool("db", str(tmp_path / "x.db"), maxconn=1, acquire_timeout=0.05)
    async with pool.acquire():
        with pytest.raises(DatabaseUnavailable) as info:
            async with pool.acquire():
                pass
    assert info.value.status == 503
    assert str(info.value) == "database 'db': no free connection within 0.05 s (pool of 1)"
    async with pool.acquire():  # released: free again
        pass
    await pool.close()


async def test_a_closed_pool_refuses_and_closes_what_comes_back(pool) -> None:
    async with pool.acquire() as conn:
        await pool.close()
    with pytest.raises(ConnectionClosed):  # returned after close: closed, not kept
        await conn.raw.run(lambda: None)
    with pytest.raises(DatabaseUnavailable, match="is shut down"):
        async with pool.acquire():
            pass


# ---------------------------------------------------------------- transactions


async def test_commit_keeps_and_rollback_discards(pool) -> None:
    async with pool.acquire() as conn:
        await conn.begin()
        assert await conn.execute("INSERT INTO t (v) VALUES (?)", ["kept"]) == 1
        assert conn.in_transaction
        await conn.commit()
        assert not conn.in_transaction
        await conn.begin()
        await conn.execute("INSERT INTO t (v) VALUES (?)", ["dropped"])
        await conn.rollback()
    assert await values(pool) == ["kept"]


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(pool) -> None:
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn:
            await conn.begin()
            await conn.execute("INSERT INTO t (v) VALUES (?)", ["half-done"])
            raise RuntimeError("the script failed")
    assert not conn.in_transaction
    assert await values(pool) == []


async def test_a_begun_transaction_without_statements_costs_nothing(pool) -> None:
    async with pool.acquire() as conn:
        await conn.begin()
        assert not conn.in_transaction  # BEGIN rides along with the first statement
        await conn.commit()


async def test_read_only_refuses_writes_and_does_not_stick(pool) -> None:
    async with pool.acquire() as conn:
        await conn.begin(read_only=True)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await conn.execute("INSERT INTO t (v) VALUES (?)", ["no"])
        await conn.rollback()
        await conn.begin()  # the next transaction on this connection may write
        await conn.execute("INSERT INTO t (v) VALUES (?)", ["yes"])
        await conn.commit()
    assert await values(pool) == ["yes"]


async def test_a_standalone_first_read_keeps_the_transaction_read_only(pool) -> None:
    async with pool.acquire() as conn:
        await conn.begin(read_only=True)
        assert (await conn.fetch("SELECT count(*) FROM t", [], standalone=True)).rows == [(0,)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await conn.execute("DELETE FROM t", [])
        await conn.rollback()


async def test_fetch_max_rows_reads_no_further(pool) -> None:
    async with pool.acquire() as conn:
        await conn.begin()
        result = await conn.fetch(ENDLESS.replace("count(*)", "x"), [], max_rows=3)
        assert result.rows == [(1,), (2,), (3,)] and result.columns == ["x"]
        await conn.commit()


async def test_values_sqlite_cannot_bind_are_converted(pool) -> None:
    import datetime
    import decimal
    import uuid

    async with pool.acquire() as conn:
        await conn.begin()
        row = await conn.fetch(
            "SELECT ?, ?, ?, ?", [datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4, 5),
                                  decimal.Decimal("1.50"), uuid.UUID(int=1)]
        )
        await conn.commit()
    assert row.rows == [("2024-01-02", "2024-01-02 03:04:05", "1.50", str(uuid.UUID(int=1)))]


async def test_table_columns_in_any_case(pool) -> None:
    async with pool.acquire() as conn:
        await conn.begin()
        real, columns = await conn.table_columns("T")
        assert real == "t" and [(c.name, c.type) for c in columns] == [("id", "INTEGER"), ("v", "TEXT")]
        assert await conn.table_columns("nope") is None
        await conn.commit()


# ---------------------------------------------------------------- time limit and cancellation


async def test_the_time_limit_stops_a_statement_and_the_connection_stays_usable(pool) -> None:
    async with pool.acquire() as conn:
        await conn.begin()
        await conn.set_time_limit(50)
        with pytest.raises(StatementTimeout) as info:
            await conn.fetch(ENDLESS, [])
        assert info.value.status == 504
        assert str(info.value) == "the query ran longer than the time limit of 50 ms"
        await conn.rollback()
        await conn.begin()
        assert (await conn.fetch("SELECT 1", [])).rows == [(1,)]  # limit gone with the transaction
        await conn.commit()


async def test_an_interrupt_without_a_time_limit_is_not_called_a_timeout(pool) -> None:
    async with pool.acquire() as conn:
        await conn.begin()
        running = asyncio.ensure_future(conn.fetch(ENDLESS, []))
        await asyncio.sleep(0.05)
        conn.raw.db.interrupt()  # thread-safe: what sqlite offers to stop a statement
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            await running
        await conn.rollback()


async def test_cancelling_a_running_statement_stops_it_and_frees_the_connection(pool) -> None:
    conns = []

    async def request() -> None:
        async with pool.acquire() as conn:
            conns.append(conn)
            await conn.begin()
            await conn.fetch(ENDLESS, [])

    task = asyncio.ensure_future(request())
    while not conns and not task.done():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the statement is running on the connection's thread
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=3)  # a guard against a hang, not a measurement
    stopped_by_cancel = bool(done)
    if not stopped_by_cancel:
        conns[0].raw.db.interrupt()  # clean up: end the statement ourselves
    with pytest.raises((asyncio.CancelledError, sqlite3.OperationalError)):
        await task
    assert stopped_by_cancel, "the cancelled request waited for its statement to finish"
    async with pool.acquire() as conn:  # the connection went back to the pool, usable
        await conn.begin()
        assert (await conn.fetch("SELECT 1", [])).rows == [(1,)]
        await conn.commit()


# ---------------------------------------------------------------- concurrent writers


async def test_a_second_writer_waits_for_the_first_instead_of_failing(tmp_path) -> None:
    path = str(tmp_path / "shared.db")
    # Two pools on one file: two workers of ``ahcore serve --workers 2``.
    one, two = SqlitePool("db", path, 1, 10.0), SqlitePool("db", path, 1, 10.0)
    try:
        async with one.acquire() as a:
            await a.begin()
            await a.execute("CREATE TABLE w (v TEXT)", [])
            await a.commit()
        async with one.acquire() as a, two.acquire() as b:
            await a.begin()
            await a.execute("INSERT INTO w VALUES ('first')", [])  # holds the write lock

            async def second_writer() -> int:
                await b.begin()
                count = await b.execute("INSERT INTO w VALUES ('second')", [])
                await b.commit()
                return count

            waiting = asyncio.ensure_future(second_writer())
            await asyncio.sleep(0.1)
            assert not waiting.done()  # waiting on busy_timeout, not failed with "locked"
            await a.commit()
            assert await waiting == 1
        async with one.acquire() as a:
            await a.begin()
            assert (await a.fetch("SELECT v FROM w ORDER BY rowid", [])).rows == [("first",), ("second",)]
            await a.commit()
    finally:
        await one.close()
        await two.close()


async def test_readers_do_not_wait_for_a_writer(pool) -> None:
    async with pool.acquire() as writer, pool.acquire() as reader:
        await writer.begin()
        await writer.execute("INSERT INTO t (v) VALUES ('uncommitted')", [])
        await reader.begin(read_only=True)
        assert (await reader.fetch("SELECT count(*) FROM t", [])).rows == [(0,)]  # WAL: a snapshot
        await reader.commit()
        await writer.commit()
    assert await values(pool) == ["uncommitted"]
