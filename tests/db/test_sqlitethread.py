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
    # the connection belongs to that thread: sqlite3 itself refuses another
    with pytest.raises(Exception, match="thread"):
        conn.db.execute("select 1")
    assert await conn.run(lambda: conn.db.execute("select 41 + 1").fetchone()) == (42,)
    await conn.close()


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
