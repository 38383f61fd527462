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
