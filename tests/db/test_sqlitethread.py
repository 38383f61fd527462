"""The SQLite connection thread: one thread per connection, jobs in order, clean close."""

from __future__ import annotations

import threading

import pytest

from ahcore.db.sqlitethread import ConnectionClosed, ConnectionThread


async def test_every_job_runs_on_the_connections_own_thread_in_order(tmp_path):
    conn = ConnectionThread("t")
    await conn.open(str(tmp_path / "a.db"))
    seen: list[tuple[str, int]] = []
    loop_thread = threading.get_ident()

    def job(tag: str) -> int:
        seen.append((tag, threading.get_ident()))
        return len(seen)

    conn.submit(lambda: job("queued"))  # not awaited, still first
    assert await conn.run(job, "awaited") == 2
    assert [tag for tag, _ in seen] == ["queued", "awaited"]
    threads = {ident for _, ident in seen}
    assert len(threads) == 1 and loop_thread not in threads
    assert await conn.run(lambda: conn.db.execute("select 41 + 1").fetchone()) == (42,)
    await conn.close()


async def test_idle_only_when_no_job_is_queued_or_running(tmp_path):
    """The driver's rule for using the connection on the loop: the thread holds no job."""
    conn = ConnectionThread("t")
    assert not conn.idle  # not open
    await conn.open(str(tmp_path / "a.db"))
    assert conn.idle
    started, release = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)

    conn.submit(slow)
    conn.submit(lambda: None)  # queued behind it
    assert not conn.idle
    started.wait(5)
    assert not conn.idle  # running
    release.set()
    await conn.run(lambda: None)
    assert conn.idle
    await conn.close()
    assert not conn.idle


async def test_a_closed_connection_refuses_jobs(tmp_path):
    conn = ConnectionThread("t")
    await conn.open(str(tmp_path / "a.db"))
    await conn.close()
    await conn.close()  # twice is harmless
    with pytest.raises(ConnectionClosed):
        await conn.run(lambda: None)
    with pytest.raises(ConnectionClosed):
        conn.submit(lambda: None)


async def test_open_failure_is_sqlites_error(tmp_path):
    conn = ConnectionThread("t")
    with pytest.raises(Exception, match="unable to open"):
        await conn.open(str(tmp_path / "missing" / "dir" / "a.db"))
    await conn.close()


async def test_a_job_whose_caller_was_cancelled_before_it_started_does_not_run(tmp_path):
    # The driver relies on it: a cancelled BEGIN + statement must not run
    # after the block gave its connection back to the pool.
    import asyncio

    conn = ConnectionThread("t")
    await conn.open(str(tmp_path / "a.db"))
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(5)

    conn.submit(slow)
    started.wait(5)
    waiting = asyncio.ensure_future(conn.run(ran.append, "cancelled"))
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()
    assert await conn.run(lambda: "next") == "next"
    assert ran == [] and waiting.cancelled()
    await conn.close()


async def test_a_failing_queued_job_is_logged_and_the_next_one_runs(tmp_path, caplog):
    conn = ConnectionThread("t")
    await conn.open(str(tmp_path / "a.db"))
    conn.submit(lambda: conn.db.execute("no such statement"))
    assert await conn.run(lambda: conn.db.execute("select 1").fetchone()) == (1,)
    assert "a queued job failed" in caplog.text and "syntax error" in caplog.text
    await conn.close()


async def test_errors_of_an_awaited_job_reach_the_caller(tmp_path):
    import sqlite3

    conn = ConnectionThread("t")
    await conn.open(str(tmp_path / "a.db"))
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await conn.run(lambda: conn.db.execute("select * from missing"))
    assert conn.idle
    await conn.close()
