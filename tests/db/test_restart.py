"""A database server really stopped and started again under load, ahcore running on.

Not a proxy cut and not one killed session: a private PostgreSQL cluster
(``initdb`` + ``pg_ctl``) or MariaDB server (``mariadb-install-db`` +
``mariadbd``) in a temporary folder, on a free port, serving a site's
``.sqlds`` (reads) and ``.dspy`` (writes) while clients keep asking. The
server is stopped twice — cleanly (``pg_ctl stop -m fast``, SIGTERM) and as
a crash (``-m immediate``, SIGKILL) — and started again each time.

What the visitor and the operator rely on:

- while it is down every answer is a 503 with ``Retry-After`` — never a
  500 or a traceback, never a hang;
- once it is back, ahcore recovers on its own (no restart): every request
  after the first success is a 200;
- every write that was answered 200 is still there, and nothing that was
  not attempted appeared;
- the pool leaked nothing: all its connections can be held at once.

These servers are not services of the machine: the tests skip (with the
reason) when the binaries are missing or the user is not root, even with
``AHCORE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ahcore.db.pools import get_pools
from ahcore.testing.databases import PrivateMariaDB, PrivatePostgres

pytest.importorskip("ahcore_dspy")
pytest.importorskip("ahcore_sqlds")

MAXCONN = 3
WORKERS = 4  # more clients than connections: some wait for one
ACQUIRE_TIMEOUT = 1.5
RECOVERY_DEADLINE = 15.0

FILES = {
    "wwwroot/count.sqlds": json.dumps(
        {"sqldesc": {"sql_string": "select count(*) as n from items", "db": "db1"}}
    ),
    "wwwroot/add.dspy": """
async with DBPools().sqlorContext('db1') as sor:
    await sor.C('items', {'id': params_kw.id, 'label': 'written under load'})
return {'ok': True}
""",
}


@dataclass
class Outcome:
    started: float
    url: str
    status: int
    text: str
    retry_after: str | None = None


@dataclass
class Load:
    """Clients asking in a loop: half reads (.sqlds), half writes (.dspy)."""

    client: Any
    outcomes: list[Outcome] = field(default_factory=list)
    attempted: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def worker(self, n: int) -> None:
        k = 0
        while not self.stop.is_set():
            k += 1
            row_id = f"w{n}-{k}"
            url = f"/add.dspy?id={row_id}" if k % 2 else "/count.sqlds"
            if k % 2:
                self.attempted.add(row_id)
            started = time.monotonic()
            try:
                async with asyncio.timeout(10):
                    resp = await self.client.get(url)
                    text = await resp.text()
                status, retry = resp.status, resp.headers.get("Retry-After")
            except TimeoutError:
                status, text, retry = -1, "no answer within 10 s", None
            self.outcomes.append(Outcome(started, url, status, text, retry))
            if status == 200 and k % 2:
                self.written.add(row_id)
            await asyncio.sleep(0.005)

    def since(self, t: float, until: float = float("inf")) -> list[Outcome]:
        return [o for o in self.outcomes if t <= o.started < until]

    async def wait_for_success(self, since: float, deadline: float) -> float:
        """When the first request started after ``since`` was answered 200."""
        while time.monotonic() < deadline:
            ok = [o for o in self.since(since) if o.status == 200]
            if ok:
                return min(o.started for o in ok)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no 200 within {deadline - since:.0f} s of the restart")


def describe(outcomes: list[Outcome]) -> str:
    counts: dict[tuple[str, int], int] = {}
    for o in outcomes:
        key = (o.url.split("?")[0], o.status)
        counts[key] = counts.get(key, 0) + 1
    samples = {o.status: o.text[:200] for o in outcomes if o.status != 200}
    return f"{counts} samples: {samples}"


def assert_clear_503s(outcomes: list[Outcome]) -> None:
    """Down means 503 with Retry-After and a short message: no 500, no traceback, no hang."""
    assert outcomes, "no request was made while the server was down"
    bad = [o for o in outcomes if o.status != 503]
    assert not bad, describe(bad)
    for o in outcomes:
        assert o.retry_after == "1", o
        assert "Traceback" not in o.text and "psycopg" not in o.text and "pymysql" not in o.text
        assert "unavailable" in o.text or "no connection" in o.text or "busy" in o.text, o.text


async def assert_no_leak(client: Any) -> None:
    """Every connection of the pool can be held at once, and works."""
    pools = get_pools(client.app)
    held = asyncio.Barrier(MAXCONN)

    async def hold() -> int:
        async with pools.sqlorContext("db1") as sor:
            await held.wait()
            rows = await sor.sqlExe("select count(*) as n from items", {})
            return int(rows[0]["n"])

    async with asyncio.timeout(ACQUIRE_TIMEOUT * 3):
        counts = await asyncio.gather(*(hold() for _ in range(MAXCONN)))
    assert len(set(counts)) == 1


@contextlib.asynccontextmanager
async def private_server(kind: str) -> Any:
    cls = PrivatePostgres if kind == "postgres" else PrivateMariaDB
    reason = cls.missing()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("ahcore_postgres" if kind == "postgres" else "ahcore_mysql")
    # Not under tmp_path: pytest's folder is private to root, the cluster runs as postgres.
    root = Path(tempfile.mkdtemp(prefix=f"ahcore-{kind}-"))
    server = cls(root)
    try:
        await server.init()
        await server.start()
        yield server
    finally:
        await server.close()
        shutil.rmtree(root, ignore_errors=True)


async def start_site(make_site: Any, ahcore_client: Any, server: Any, kind: str) -> Any:
    driver = "psycopg" if kind == "postgres" else "aiomysql"
    config = {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "cookie_secret": "x" * 32,
            "processors": [[".sqlds", "sqlds"], [".dspy", "dspy"]],
        },
        "databases": {
            "db1": {
                "driver": driver,
                "kwargs": server.kwargs(),
                "maxconn": MAXCONN,
                "acquire_timeout": ACQUIRE_TIMEOUT,
            }
        },
        "plugins": {kind: True, "sqlds": {"time_limit_ms": 3000}, "dspy": True},
    }
    client = await ahcore_client(make_site(config=config, files=FILES))
    async with get_pools(client.app).sqlorContext("db1") as sor:
        await sor.sqlExe("CREATE TABLE items (id VARCHAR(40) PRIMARY KEY, label VARCHAR(40))", {})
    return client


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
async def test_database_server_restarted_under_load(make_site, ahcore_client, kind) -> None:
    async with private_server(kind) as server:
        client = await start_site(make_site, ahcore_client, server, kind)
        load = Load(client)
        workers = [asyncio.create_task(load.worker(n)) for n in range(WORKERS)]
        try:
            t0 = time.monotonic()
            for mode in ("fast", "immediate"):
                # Up: everything works.
                await asyncio.sleep(0.5)
                stopping = time.monotonic()
                before = load.since(t0, stopping)
                assert before and all(o.status == 200 for o in before), describe(before)

                await server.stop(mode)
                down = time.monotonic()
                await asyncio.sleep(2 * ACQUIRE_TIMEOUT)
                starting = time.monotonic()
                # Requests started while stopping may have finished first (200);
                # every request started after the stop is a clear 503.
                assert all(o.status in (200, 503) for o in load.since(stopping, down)), describe(
                    load.since(stopping, down)
                )
                assert_clear_503s(load.since(down, starting))

                await server.start()
                recovered = await load.wait_for_success(
                    starting, time.monotonic() + RECOVERY_DEADLINE
                )
                await asyncio.sleep(1.0)
                t0 = time.monotonic()
                after = load.since(recovered, t0)
                assert all(o.status == 200 for o in after), f"{mode}: {describe(after)}"
                assert all(o.status in (200, 503) for o in load.since(starting, recovered))
        finally:
            load.stop.set()
            await asyncio.gather(*workers)

        # Acknowledged writes survived both stops; nothing unasked-for appeared.
        async with get_pools(client.app).sqlorContext("db1") as sor:
            stored = {r["id"] for r in await sor.sqlExe("select id from items", {})}
        assert load.written <= stored, sorted(load.written - stored)[:10]
        assert stored <= load.attempted
        assert len(load.written) > 10
        await assert_no_leak(client)
        resp = await client.get("/count.sqlds")
        assert resp.status == 200
        assert (await resp.json())[0]["n"] == len(stored)
