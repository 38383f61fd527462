"""The SQLite driver's non-waiting path: blocks and reads that cost no coroutine of the pool's.

``sqlorContext`` takes an idle connection with ``enter_nowait`` and gives it
back with ``exit_nowait`` when its transaction wrote nothing; a read that
runs on the loop is answered by ``fetch_nowait`` at once. These tests check
that this path keeps every promise of the awaited one: one transaction per
block, commit and rollback, read-only refusals, time limits, the pool's
limit and order, and a connection that stays usable after a failure.
"""

from __future__ import annotations

import asyncio
import datetime
import sqlite3

import pytest

from ahcore.appkeys import get_site
from ahcore.db.driver import FetchResult
from ahcore.db.errors import DatabaseUnavailable, ReadOnlyRefused, StatementTimeout
from ahcore.db.pools import DBPools
from ahcore.db.sqlite import SqlitePool

ENDLESS = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000000)"
    " SELECT count(*) FROM c"
)


@pytest.fixture
async def pools(make_app):
    app = make_app({"databases": {"lite": {"driver": "sqlite", "kwargs": {"dbname": "lite.db"},
                                           "maxconn": 2}}})
    pools = DBPools(get_site(app))
    async with pools.sqlorContext("lite") as sor:
        await sor.sqlExe("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", {})
        await sor.sqlExe("INSERT INTO t (v) VALUES ('a')", {})
    yield pools
    await pools.close()


async def vs(pools) -> list[str]:
    async with pools.sqlorContext("lite", read_only=True) as sor:
        return [r.v for r in await sor.sqlExe("SELECT v FROM t ORDER BY id", {})]


def refuse_acquire(pool: SqlitePool) -> None:
    """Make the awaited way fail, so a block that works took the non-waiting one."""
    def acquire():
        raise AssertionError("the awaited acquire was used")
    pool.acquire = acquire  # type: ignore[method-assign]


async def test_a_block_on_an_idle_connection_takes_and_returns_it_without_acquire(pools) -> None:
    db = pools.database("lite")
    pool = await db.pool()
    assert db.nowait_pool is pool
    refuse_acquire(pool)
    for _ in range(3):
        assert await vs(pools) == ["a"]
    assert len(pool._idle) == 1 and not pool._slots.locked()


async def test_a_written_block_commits_through_the_awaited_commit(pools) -> None:
    pool = await pools.database("lite").pool()
    refuse_acquire(pool)
    async with pools.sqlorContext("lite") as sor:
        assert await sor.sqlExe("INSERT INTO t (v) VALUES (${v}$)", {"v": "b"}) == 1
        # the block's own write is visible to its next read (one transaction)
        assert [r.v for r in await sor.sqlExe("SELECT v FROM t ORDER BY id", {})] == ["a", "b"]
    assert await vs(pools) == ["a", "b"]
    assert len(pool._idle) == 1 and pool._slots.free == 2


async def test_an_exception_in_a_block_rolls_back_its_writes(pools) -> None:
    pool = await pools.database("lite").pool()
    refuse_acquire(pool)
    with pytest.raises(RuntimeError):
        async with pools.sqlorContext("lite") as sor:
            await sor.sqlExe("INSERT INTO t (v) VALUES ('dropped')", {})
            raise RuntimeError("the script failed")
    assert await vs(pools) == ["a"]
    assert pool._slots.free == 2


async def test_the_statements_of_one_block_share_one_snapshot(pools) -> None:
    pool = await pools.database("lite").pool()
    async with pools.sqlorContext("lite") as sor:
        first = await sor.sqlExe("SELECT count(*) AS n FROM t", {})
        # another connection commits a row meanwhile
        async with pools.sqlorContext("lite") as other:
            await other.sqlExe("INSERT INTO t (v) VALUES ('other')", {})
        second = await sor.sqlExe("SELECT count(*) AS n FROM t", {})
        assert first[0].n == second[0].n == 1
    assert await vs(pools) == ["a", "other"]
    assert pool._slots.free == 2


async def test_a_read_only_block_refuses_writes_and_the_next_may_write(pools) -> None:
    with pytest.raises(ReadOnlyRefused):
        async with pools.sqlorContext("lite", read_only=True) as sor:
            await sor.sqlExe("SELECT v FROM t", {})
            await sor.sqlExe("INSERT INTO t (v) VALUES ('no')", {})
    async with pools.sqlorContext("lite") as sor:
        await sor.sqlExe("INSERT INTO t (v) VALUES ('yes')", {})
    assert await vs(pools) == ["a", "yes"]


async def test_the_time_limit_of_a_block_holds_and_does_not_stay(pools) -> None:
    with pytest.raises(StatementTimeout):
        async with pools.sqlorContext("lite", time_limit_ms=50) as sor:
            await sor.sqlExe(ENDLESS, {})
    pool = await pools.database("lite").pool()
    assert all(c._limit_s is None for c in pool._idle)
    async with pools.sqlorContext("lite") as sor:
        assert (await sor.sqlExe("SELECT count(*) AS n FROM t", {}))[0].n == 1


async def test_a_failed_statement_leaves_the_connection_usable(pools) -> None:
    with pytest.raises(sqlite3.OperationalError):
        async with pools.sqlorContext("lite") as sor:
            await sor.sqlExe("SELECT nope FROM t", {})
    async with pools.sqlorContext("lite") as sor:
        assert [r.v for r in await sor.sqlExe("SELECT v FROM t", {})] == ["a"]
        # a date goes through the converter (the fast type check lets it by)
        rows = await sor.sqlExe("SELECT ${d}$ AS d", {"d": datetime.date(2026, 1, 2)})
        assert rows[0].d == "2026-01-02"


async def test_fetch_nowait_answers_a_loop_read_at_once_and_a_write_later(tmp_path) -> None:
    pool = SqlitePool("db", str(tmp_path / "x.db"), maxconn=1, acquire_timeout=1.0)
    async with pool.acquire() as conn:
        await conn.begin()
        pending = conn.fetch_nowait("CREATE TABLE t (v)", [])
        assert not isinstance(pending, FetchResult)
        assert (await pending).columns == []
        await conn.commit()
        answer = conn.fetch_nowait("SELECT 1 AS one", [])
        assert isinstance(answer, FetchResult) and answer.rows == [(1,)]
    await pool.close()


# ---------------------------------------------------------------- the pool's limit


async def test_a_released_slot_goes_to_the_waiter_not_to_a_newcomer(tmp_path) -> None:
    pool = SqlitePool("db", str(tmp_path / "x.db"), maxconn=1, acquire_timeout=5.0)
    async with pool.acquire():
        pass  # one idle connection
    conn = pool.enter_nowait(False, None)
    assert conn is not None and pool._slots.locked()
    got: list[str] = []

    async def waiter() -> None:
        async with pool.acquire():
            got.append("waiter")

    task = asyncio.ensure_future(waiter())
    await asyncio.sleep(0.01)
    assert pool.exit_nowait(conn)
    assert pool.enter_nowait(False, None) is None  # the slot is the waiter's
    await task
    assert got == ["waiter"] and pool._slots.free == 1
    await pool.close()


async def test_a_waiter_that_times_out_or_is_cancelled_leaks_no_slot(tmp_path) -> None:
    pool = SqlitePool("db", str(tmp_path / "x.db"), maxconn=1, acquire_timeout=0.05)
    async with pool.acquire():
        with pytest.raises(DatabaseUnavailable):
            async with pool.acquire():
                pass
        task = asyncio.ensure_future(pool.acquire().__aenter__())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert pool._slots.free == 1 and not pool._slots._waiters
    async with asyncio.timeout(1), pool.acquire():  # a slot is free again at once
        pass
    await pool.close()


async def test_a_closed_pool_lends_nothing_without_waiting(tmp_path) -> None:
    pool = SqlitePool("db", str(tmp_path / "x.db"), maxconn=1, acquire_timeout=1.0)
    async with pool.acquire():
        pass
    conn = pool.enter_nowait(True, None)
    assert conn is not None
    await pool.close()
    assert not pool.exit_nowait(conn)  # shut down meanwhile: the awaited way closes it
    await pool.give_back(conn)
    assert pool.enter_nowait(True, None) is None
    with pytest.raises(DatabaseUnavailable):
        async with pool.acquire():
            pass


async def test_the_connection_thread_is_idle_only_when_its_jobs_are_done(tmp_path) -> None:
    pool = SqlitePool("db", str(tmp_path / "x.db"), maxconn=1, acquire_timeout=1.0)
    async with pool.acquire() as conn:
        raw = conn.raw
        assert raw.idle
        started = asyncio.Event()
        loop = asyncio.get_running_loop()

        def slow() -> None:
            loop.call_soon_threadsafe(started.set)
            import time
            time.sleep(0.05)

        job = asyncio.ensure_future(raw.run(slow))
        await started.wait()
        assert not raw.idle and not raw.idle  # asked twice: still busy
        await job
        assert raw.idle and raw.idle
    await pool.close()


@pytest.mark.parametrize("max_rows", [1, 2, 5])
async def test_a_capped_read_leaves_no_snapshot_behind(tmp_path, max_rows) -> None:
    # A statement left unfinished would hold its read snapshot, and a
    # checkpoint could not pass it: the capped read resets it either way.
    pool = SqlitePool("db", str(tmp_path / "x.db"), maxconn=2, acquire_timeout=0.2)
    async with pool.acquire() as conn:
        await conn.begin()
        await conn.execute("CREATE TABLE t (v)", [])
        await conn.execute("INSERT INTO t VALUES (1), (2)", [])
        await conn.commit()
    async with pool.acquire() as reader, pool.acquire() as writer:
        await reader.begin(read_only=True)
        result = await reader.fetch("SELECT v FROM t ORDER BY v", [], max_rows=max_rows,
                                    standalone=True)
        assert result.rows == [(1,), (2,)][:max_rows]
        await reader.commit()
        await writer.begin()
        await writer.execute("INSERT INTO t VALUES (3)", [])
        await writer.commit()
        busy = (await writer.fetch("PRAGMA wal_checkpoint(TRUNCATE)", [])).rows[0][0]
        assert busy == 0
        await reader.begin(read_only=True)  # the same connection reads on, and sees the new row
        assert (await reader.fetch("SELECT count(*) FROM t", [])).rows == [(3,)]
        await reader.commit()
    await pool.close()
