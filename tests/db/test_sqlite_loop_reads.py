"""The SQLite driver's short reads on the event loop's thread, and what must never change.

A short query runs on the loop's own thread while its connection's thread is
idle. These tests drive the pool as the kernel does and check the promises:
a write never runs on the loop; a read sees exactly what SQLite's isolation
gives it (its own transaction's changes, other connections' commits only);
a slow read or one that meets a lock moves to the connection's thread without
holding up the loop; time limits and cancellation still apply; a task looping
over reads still lets the loop run.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from ahcore.db.errors import StatementTimeout
from ahcore.db.sqlite import SqlitePool

# Counts for seconds on the loop's budget of a millisecond, well under a second on a thread.
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)"
    " SELECT count(*), tid() FROM c"
)
ENDLESS = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000000)"
    " SELECT count(*) FROM c"
)


async def with_tid(conn) -> None:
    """Give the connection ``tid()``: the ident of the thread running the statement."""
    await conn.raw.run(conn.raw.db.create_function, "tid", 0, threading.get_ident)


@pytest.fixture
async def pool(tmp_path):
    pool = SqlitePool("db", str(tmp_path / "app.db"), maxconn=2, acquire_timeout=5.0)
    async with pool.acquire() as a, pool.acquire() as b:
        for conn in (a, b):
            await with_tid(conn)
        await a.begin()
        await a.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, tid INTEGER)", [])
        await a.execute("INSERT INTO t (v) VALUES ('committed')", [])
        await a.commit()
    yield pool
    await pool.close()


class LoopLag:
    """The longest gap between ticks of a 5 ms ticker: how long the loop was held."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            self.worst = max(self.worst, now - last - 0.005)
            self.ticks += 1
            last = now

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.ensure_future(self._run())
        await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_a_short_read_runs_on_the_loop_and_a_write_never_does(pool) -> None:
    loop_thread = threading.get_ident()
    async with pool.acquire() as conn:
        await conn.begin()
        rows = (await conn.fetch("SELECT v, tid() FROM t", [])).rows
        assert rows == [("committed", loop_thread)]
        await conn.execute("INSERT INTO t (v, tid) VALUES ('w', tid())", [])
        # INSERT … RETURNING has result rows but writes: the thread runs it too
        returned = (await conn.fetch("INSERT INTO t (v, tid) VALUES ('r', tid()) RETURNING tid", [])).rows
        await conn.commit()
    async with pool.acquire() as conn:
        await conn.begin(read_only=True)
        written = (await conn.fetch("SELECT v, tid FROM t WHERE tid IS NOT NULL ORDER BY id", [])).rows
        await conn.commit()
    assert [v for v, _ in written] == ["w", "r"]
    assert all(tid != loop_thread for _, tid in written)
    assert returned[0][0] != loop_thread


async def test_a_read_sees_its_own_transaction_and_only_what_others_committed(pool) -> None:
    loop_thread = threading.get_ident()
    async with pool.acquire() as writer, pool.acquire() as reader:
        await writer.begin()
        await writer.execute("INSERT INTO t (v) VALUES ('uncommitted')", [])
        # the writer's own read (on the loop: its thread is idle) sees its change
        own = (await writer.fetch("SELECT v, tid() FROM t ORDER BY id", [])).rows
        assert own == [("committed", loop_thread), ("uncommitted", loop_thread)]
        # another connection's read, on the loop too, does not
        await reader.begin(read_only=True)
        other = (await reader.fetch("SELECT v, tid() FROM t ORDER BY id", [])).rows
        await reader.commit()
        assert other == [("committed", loop_thread)]
        await writer.commit()
        await reader.begin(read_only=True)
        after = (await reader.fetch("SELECT v FROM t ORDER BY id", [])).rows
        await reader.commit()
        assert after == [("committed",), ("uncommitted",)]


async def test_a_rolled_back_write_is_not_seen_by_a_later_read_on_the_loop(pool) -> None:
    async with pool.acquire() as conn:
        await conn.begin()
        await conn.execute("INSERT INTO t (v) VALUES ('gone')", [])
        await conn.rollback()
        await conn.begin(read_only=True)
        assert (await conn.fetch("SELECT v FROM t", [])).rows == [("committed",)]
        await conn.commit()


async def test_a_slow_read_moves_to_the_thread_without_holding_the_loop(pool) -> None:
    loop_thread = threading.get_ident()
    async with pool.acquire() as conn, LoopLag() as lag:
        await conn.begin(read_only=True)
        count, tid = (await conn.fetch(SLOW, [])).rows[0]
        await conn.commit()
        assert count == 300000  # the whole answer, counted again from the start
        assert tid != loop_thread
        # next time it goes to the thread at once
        await conn.begin(read_only=True)
        assert (await conn.fetch(SLOW, [])).rows[0][1] != loop_thread
        await conn.commit()
    # the loop was held for the read's budget (1 ms), not for the query; the
    # bound leaves room for a loaded machine, the query alone takes far longer
    assert lag.worst < 0.1, f"the loop was held {lag.worst * 1000:.0f} ms"


async def test_the_loop_budget_is_a_setting_and_zero_turns_loop_reads_off(tmp_path) -> None:
    loop_thread = threading.get_ident()
    pool = SqlitePool("db", str(tmp_path / "x.db"), 1, 5.0, loop_read_ms=0)
    try:
        async with pool.acquire() as conn:
            await with_tid(conn)
            await conn.begin(read_only=True)
            assert (await conn.fetch("SELECT tid()", [])).rows[0][0] != loop_thread
            await conn.commit()
    finally:
        await pool.close()


async def test_a_read_that_meets_a_lock_waits_on_the_thread_not_on_the_loop(tmp_path) -> None:
    # A database in rollback-journal mode (a file: URI is left as it is):
    # while another process holds its write lock, readers get SQLITE_BUSY.
    path = tmp_path / "locked.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (v TEXT)")
    setup.execute("INSERT INTO t VALUES ('before')")
    setup.commit()
    setup.close()
    loop_thread = threading.get_ident()
    pool = SqlitePool("db", f"file:{path}", 1, 5.0)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        async with pool.acquire() as conn:
            await with_tid(conn)
            await conn.begin(read_only=True)
            assert (await conn.fetch("SELECT v, tid() FROM t", [])).rows == [("before", loop_thread)]
            await conn.commit()
            other.execute("BEGIN EXCLUSIVE")
            other.execute("UPDATE t SET v = 'after'")
            threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
            async with LoopLag() as lag:
                started = time.monotonic()
                await conn.begin(read_only=True)
                rows = (await conn.fetch("SELECT v, tid() FROM t", [])).rows
                await conn.commit()
                waited = time.monotonic() - started
            assert rows[0][0] == "after"  # it waited for the lock, on its thread
            assert rows[0][1] != loop_thread
            assert waited >= 0.2
            assert lag.ticks >= 5 and lag.worst < 0.1  # the loop went on meanwhile
            # a lock is not slowness: the same read is back on the loop next time
            await conn.begin(read_only=True)
            assert (await conn.fetch("SELECT v, tid() FROM t", [])).rows == [("after", loop_thread)]
            await conn.commit()
    finally:
        other.close()
        await pool.close()


async def test_the_time_limit_holds_for_a_read_that_moved_to_the_thread(pool) -> None:
    async with pool.acquire() as conn:
        for _ in range(2):  # first from the loop, then straight on the thread
            await conn.begin()
            await conn.set_time_limit(50)
            started = time.monotonic()
            with pytest.raises(StatementTimeout):
                await conn.fetch(ENDLESS, [])
            assert time.monotonic() - started < 2
            await conn.rollback()


async def test_a_time_limit_shorter_than_the_loop_budget_stops_the_read_on_the_loop(tmp_path) -> None:
    pool = SqlitePool("db", str(tmp_path / "x.db"), 1, 5.0, loop_read_ms=5000)
    try:
        async with pool.acquire() as conn, LoopLag() as lag:
            await conn.begin()
            await conn.set_time_limit(30)
            with pytest.raises(StatementTimeout, match="30 ms"):
                await conn.fetch(ENDLESS, [])
            await conn.rollback()
            await conn.begin(read_only=True)
            assert (await conn.fetch("SELECT 1", [])).rows == [(1,)]  # still usable
            await conn.commit()
        assert lag.worst < 1.0  # held for about the time limit, never the loop budget
    finally:
        await pool.close()


async def test_cancelling_a_read_that_moved_to_the_thread_stops_it(pool) -> None:
    async def request() -> None:
        async with pool.acquire() as conn:
            await conn.begin(read_only=True)
            await conn.fetch(ENDLESS, [])

    task = asyncio.ensure_future(request())
    await asyncio.sleep(0.1)  # past the loop budget: running on the connection's thread
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=3)
    assert done, "the cancelled read went on running"
    with pytest.raises(asyncio.CancelledError):
        await task
    async with pool.acquire() as conn:
        await conn.begin(read_only=True)
        assert (await conn.fetch("SELECT count(*) FROM t", [])).rows == [(1,)]
        await conn.commit()


async def test_a_task_looping_over_reads_still_lets_the_loop_run(tmp_path) -> None:
    # a budget no read reaches here, so none moves to the thread for being slow
    pool = SqlitePool("db", str(tmp_path / "x.db"), 1, 5.0, loop_read_ms=5000)
    stop = asyncio.Event()
    reads = 0

    async def reader() -> None:
        nonlocal reads
        async with pool.acquire() as conn:
            await conn.begin(read_only=True)
            # never awaits anything but the reads; the cap ends it if the loop never gets a turn
            while not stop.is_set() and reads < CAP:
                await conn.fetch("SELECT 1", [])
                reads += 1
            await conn.commit()

    CAP = 200_000
    task = asyncio.ensure_future(reader())
    # a timer must fire although the reader never sleeps
    asyncio.get_running_loop().call_later(0.05, stop.set)
    await task
    await pool.close()
    assert 8 < reads < CAP, "the timer never got a turn"


async def test_reads_on_the_loop_and_writers_on_threads_agree_under_load(pool) -> None:
    """Concurrent writers and loop readers: every read sees a committed, consistent state."""
    async def writer(n: int) -> None:
        for i in range(20):
            async with pool.acquire() as conn:
                await conn.begin()
                await conn.execute("INSERT INTO t (v) VALUES (?)", [f"{n}-{i}-a"])
                await conn.execute("INSERT INTO t (v) VALUES (?)", [f"{n}-{i}-b"])
                await conn.commit()

    bad: list[int] = []

    async def reader() -> None:
        for _ in range(60):
            async with pool.acquire() as conn:
                await conn.begin(read_only=True)
                (count,) = (await conn.fetch("SELECT count(*) FROM t", [])).rows[0]
                await conn.commit()
            if (count - 1) % 2:  # pairs are committed together: never half of one
                bad.append(count)
            await asyncio.sleep(0)

    await asyncio.gather(writer(1), writer(2), reader(), reader())
    assert bad == []
    async with pool.acquire() as conn:
        await conn.begin(read_only=True)
        assert (await conn.fetch("SELECT count(*) FROM t", [])).rows == [(81,)]
        await conn.commit()
