"""Pools under stress: exhaustion, time limits, killed connections, outages."""

from __future__ import annotations

import asyncio
import time

import pytest

from ahcore.db.errors import DatabaseUnavailable, StatementTimeout
from ahcore.testing.databases import TcpProxy, server_kwargs, unavailable

SLOW_SQL = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000)"
    " SELECT count(*) AS n FROM c",
    "postgres": "SELECT pg_sleep(5) AS n",
    "mysql": "SELECT SLEEP(5) AS n",
}


async def count_rows(pools) -> int:
    async with pools.sqlorContext("db1") as sor:
        return len(await sor.R("tbl1", {}))


async def test_pool_exhaustion_is_503_then_recovers(db_client) -> None:
    client = await db_client(maxconn=1, acquire_timeout=0.3)
    pools = client.pools
    async with pools.sqlorContext("db1") as sor:
        await sor.C("tbl1", {"id": "a"})
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="no free connection") as info:
            async with pools.sqlorContext("db1"):
                pass
        assert info.value.status == 503
        assert time.monotonic() - started < 2
    # The one connection is back: every later request works.
    for _ in range(3):
        assert await count_rows(pools) == 1


async def test_slow_query_stopped_and_connection_reused(db_client, engine) -> None:
    client = await db_client(maxconn=1, acquire_timeout=1.0)
    pools = client.pools
    started = time.monotonic()
    with pytest.raises(StatementTimeout) as info:
        async with pools.sqlorContext("db1", time_limit_ms=300) as sor:
            await sor.sqlExe(SLOW_SQL[engine], {})
    elapsed = time.monotonic() - started
    assert info.value.status == 504
    assert elapsed < 3, elapsed
    # The pool's only connection came back and works, without a limit.
    async with pools.sqlorContext("db1") as sor:
        assert (await sor.sqlExe("SELECT 1 AS one", {}))[0].one == 1
    assert await count_rows(pools) == 0


async def test_time_limit_does_not_leak_into_later_transactions(db_client, engine) -> None:
    client = await db_client(maxconn=1)
    async with client.pools.sqlorContext("db1", time_limit_ms=5000) as sor:
        await sor.sqlExe("SELECT 1 AS one", {})
    if engine == "sqlite":
        return
    async with client.pools.sqlorContext("db1") as sor:
        if engine == "postgres":
            rows = await sor.sqlExe("SHOW statement_timeout", {})
            assert list(rows[0].values()) == ["0"]
        else:
            rows = await sor.sqlExe("SELECT @@max_statement_time AS t", {})
            assert float(rows[0].t) == 0


async def test_read_only_transaction_refuses_writes(db_client) -> None:
    client = await db_client()
    with pytest.raises(Exception):  # noqa: B017 - each engine has its own error class
        async with client.pools.sqlorContext("db1", read_only=True) as sor:
            await sor.C("tbl1", {"id": "a"})
    # The same pooled connection writes again in a normal transaction.
    async with client.pools.sqlorContext("db1") as sor:
        await sor.C("tbl1", {"id": "b"})
    assert await count_rows(client.pools) == 1


async def _terminate_backend(pid: int) -> None:
    import psycopg

    kw = {k: v for k, v in server_kwargs("postgres").items() if v != ""}
    async with await psycopg.AsyncConnection.connect(**kw, dbname="postgres", autocommit=True) as c:
        await c.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.parametrize("engine", ["postgres"])
async def test_postgres_killed_connection_is_replaced(db_client, engine) -> None:
    client = await db_client(maxconn=1)
    async with client.pools.sqlorContext("db1") as sor:
        pid = (await sor.sqlExe("SELECT pg_backend_pid() AS pid", {}))[0].pid
    await _terminate_backend(pid)
    await asyncio.sleep(0.1)
    async with client.pools.sqlorContext("db1") as sor:
        new_pid = (await sor.sqlExe("SELECT pg_backend_pid() AS pid", {}))[0].pid
    assert new_pid != pid


@pytest.mark.parametrize("engine", ["postgres"])
async def test_postgres_killed_mid_transaction_is_503_then_recovers(db_client, engine) -> None:
    client = await db_client(maxconn=1)
    with pytest.raises(DatabaseUnavailable):
        async with client.pools.sqlorContext("db1") as sor:
            pid = (await sor.sqlExe("SELECT pg_backend_pid() AS pid", {}))[0].pid
            await _terminate_backend(pid)
            await sor.R("tbl1", {})
    assert await count_rows(client.pools) == 0


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
async def test_database_going_away_and_coming_back(db_client, engine) -> None:
    kw = server_kwargs(engine)
    proxy = TcpProxy(kw["host"], int(kw["port"]))
    await proxy.start()
    try:
        # The site is set up through the real port; db1 then goes through the proxy.
        client = await db_client(maxconn=2, acquire_timeout=1.0)
        db = client.pools.database("db1")
        db.config.kwargs["port"] = proxy.port
        await db.close()
        assert await count_rows(client.pools) == 0

        await proxy.stop()
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable) as info:
                await count_rows(client.pools)
            assert info.value.status == 503
            assert time.monotonic() - started < 5

        await proxy.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                assert await count_rows(client.pools) == 0
                break
            except DatabaseUnavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        for _ in range(3):
            assert await count_rows(client.pools) == 0
    finally:
        await proxy.stop()


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
async def test_unreachable_server_at_start_is_503_not_a_crash(db_client, engine) -> None:
    client = await db_client(acquire_timeout=0.5)
    db = client.pools.database("db1")
    await db.close()
    db.config.kwargs["port"] = 9  # nothing listens on the discard port
    with pytest.raises(DatabaseUnavailable):
        await count_rows(client.pools)


def test_unavailable_skips_unless_required(monkeypatch) -> None:
    monkeypatch.delenv("AHCORE_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception):
        unavailable("nothing here")
    monkeypatch.setenv("AHCORE_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception):
        unavailable("nothing here")


async def _kill_mysql(connection_id: int) -> None:
    import aiomysql

    conn = await aiomysql.connect(**server_kwargs("mysql"))
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"KILL {int(connection_id)}")
    finally:
        conn.close()


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
async def test_broken_connection_frees_its_slot_for_a_waiting_request(db_client, engine) -> None:
    """A request waiting for the pool's only connection gets a new one as soon as
    the held one breaks, not after its acquire timeout (aiomysql forgot to wake it)."""
    client = await db_client(maxconn=1, acquire_timeout=3.0)
    pools = client.pools
    own_id = (
        "SELECT pg_backend_pid() AS id" if engine == "postgres" else "SELECT CONNECTION_ID() AS id"
    )

    async def waiter() -> float:
        started = time.monotonic()
        async with pools.sqlorContext("db1") as sor:
            assert (await sor.sqlExe("SELECT 1 AS one", {}))[0].one == 1
        return time.monotonic() - started

    with pytest.raises(DatabaseUnavailable):
        async with pools.sqlorContext("db1") as sor:
            connection_id = (await sor.sqlExe(own_id, {}))[0].id
            waiting = asyncio.ensure_future(waiter())
            await asyncio.sleep(0.2)  # it waits for the pool's only connection
            if engine == "postgres":
                await _terminate_backend(connection_id)
            else:
                await _kill_mysql(connection_id)
            await asyncio.sleep(0.1)
            await sor.R("tbl1", {})
    assert await waiting < 1.5
    assert await count_rows(pools) == 0


async def test_reading_transactions_hand_over_the_connection_in_order(db_client) -> None:
    """A transaction that only read ends without waiting for its COMMIT (on
    SQLite the COMMIT is queued on the connection's thread); the next user of
    the same connection must still find it outside any transaction, see every
    earlier write, and have its own writes kept."""
    client = await db_client(maxconn=1)
    pools = client.pools
    for n in range(20):
        async with pools.sqlorContext("db1") as sor:  # reads only
            assert len(await sor.sqlExe("select id from tbl1", {})) == n
        async with pools.sqlorContext("db1") as sor:  # writes through an INSERT
            await sor.C("tbl1", {"id": f"r{n}"})
    async with pools.sqlorContext("db1") as sor:
        assert sorted(r.id for r in await sor.sqlExe("select id from tbl1", {})) == sorted(
            f"r{n}" for n in range(20)
        )
