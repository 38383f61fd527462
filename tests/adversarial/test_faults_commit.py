"""A transaction that fails at COMMIT, on SQLite and PostgreSQL.

The cause is real, not a mock: a constraint declared ``DEFERRABLE INITIALLY
DEFERRED`` is checked only when the transaction commits, so every statement
of the script succeeds and the database refuses the whole transaction at the
end of the ``async with get_sor_context(...)`` block.

- SQLite: a deferred foreign key (SQLite checks those at COMMIT). ahcore's
  SQLite driver does not turn ``PRAGMA foreign_keys`` on, and the pragma is
  a no-op inside a transaction, so the test switches it on for each pooled
  connection before any request runs.
- PostgreSQL: a deferred foreign key, and a deferred UNIQUE constraint.
- MariaDB/MySQL (InnoDB) has no deferred constraints: each constraint is
  checked by its statement, so a commit cannot fail this way there. Its
  statement-level integrity errors are in the mapping test at the end.

What a visitor and the operator rely on: a clear answer without a
traceback or driver detail; *nothing* of the transaction in the database
(not half of it); every connection back in the pool and usable (more
failures than the pool has connections, then all of them held at once);
and the server serving the next requests, the same script included.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytest.importorskip("ahcore_dspy")

from advkit import LEAKS  # noqa: E402

from ahcore.db.errors import (  # noqa: E402
    CONFLICT_MESSAGE,
    BadQuery,
    DataConflict,
    integrity_error,
)
from ahcore.db.pools import DBPools, get_pools  # noqa: E402
from ahcore.plugins import canonical_driver  # noqa: E402
from ahcore.testing.databases import (  # noqa: E402
    TEST_DATABASE,
    database_config,
    ensure_test_database,
    reset_tables,
    server_kwargs,
)

MAXCONN = 2
FAILURES = 3 * MAXCONN  # more failed commits than the pool has connections

# The script, as an ahserver site writes it: four changes in one
# transaction, the last of which breaks a deferred constraint.
WRITE = """\
async with get_sor_context(request._run_ns, 'db') as sor:
    await sor.C('tbl1', {'id': params_kw.id, 'field1': 3, 'name': 'new'})
    await sor.U('tbl1', {'id': 'keep', 'field1': 99})
    await sor.D('tbl1', {'id': 'gone'})
    await sor.C('fault_child', {'id': params_kw.id, 'parent_id': params_kw.parent,
                                'code': params_kw.code})
return {'ok': True}
"""
READ = """\
async with DBPools().sqlorContext('db') as sor:
    return {'ids': sorted(r.id for r in await sor.R('tbl1', {}))}
"""

# Driver text that must not reach the visitor (table, constraint, value).
DRIVER_DETAIL = (
    b"FOREIGN KEY",
    b"foreign key",
    b"violates",
    b"fault_",
    b"UNIQUE",
    b"duplicate",
    b"no-such-parent",
    b"IntegrityError",
)

CHILD = {
    "sqlite": """CREATE TABLE fault_child (
        id VARCHAR(32) PRIMARY KEY,
        parent_id VARCHAR(32) REFERENCES fault_parent(id) DEFERRABLE INITIALLY DEFERRED,
        code VARCHAR(32)
    )""",
    "postgres": """CREATE TABLE fault_child (
        id VARCHAR(32) PRIMARY KEY,
        parent_id VARCHAR(32) REFERENCES fault_parent(id) DEFERRABLE INITIALLY DEFERRED,
        code VARCHAR(32),
        CONSTRAINT fault_child_code UNIQUE (code) DEFERRABLE INITIALLY DEFERRED
    )""",
}
SEED = {"tbl1": {"keep": 1, "gone": 2}, "child": ["c0"]}


CASES = [
    pytest.param("sqlite", "fk", id="sqlite-deferred-fk"),
    pytest.param("postgres", "fk", id="postgres-deferred-fk"),
    pytest.param("postgres", "unique", id="postgres-deferred-unique"),
]


def bad_params(kind: str, n: int) -> dict[str, str]:
    if kind == "fk":  # a parent that does not exist
        return {"id": f"bad{n}", "parent": "no-such-parent", "code": f"bad{n}"}
    return {"id": f"bad{n}", "parent": "p1", "code": "taken"}  # a code already stored


def good_params(n: int) -> dict[str, str]:
    return {"id": f"ok{n}", "parent": "p1", "code": f"ok{n}"}


class Site:
    """A started site with database ``db`` (``MAXCONN`` connections) and the two scripts."""

    def __init__(self, server: Any) -> None:
        self.pools: DBPools = get_pools(server.app)
        self.url = f"http://127.0.0.1:{server.port}"

    async def request(self, method: str, path: str, data: Any = None) -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as http:
            async with http.request(method, self.url + path, data=data) as r:
                return r.status, await r.read()

    async def state(self) -> dict[str, Any]:
        """What is committed, read through the site's own pool."""
        async with self.pools.sqlorContext("db") as sor:
            tbl1 = {r["id"]: r["field1"] for r in await sor.R("tbl1", {})}
            child = sorted(r["id"] for r in await sor.R("fault_child", {}))
        return {"tbl1": tbl1, "child": child}

    async def hold_every_connection(self, setup: str | None = None) -> None:
        """Hold all ``MAXCONN`` connections at once, a transaction on each (all free and sound).

        Taken one after the other (not all at once: two SQLite connections
        opening a new database together can collide switching it to WAL).
        ``setup`` is run on each raw connection first, outside any transaction.
        """
        pool = await self.pools.database("db").pool()
        async with AsyncExitStack() as stack:
            for _ in range(MAXCONN):
                conn = await stack.enter_async_context(pool.acquire())  # else 503 in 1 s
                if setup is not None:
                    await conn.raw.run(conn.raw.db.execute, setup)
                await conn.begin()
                await conn.fetch("SELECT 1", [])
                await conn.rollback()


@pytest.fixture
async def own_schema() -> AsyncIterator[Callable[[str], Awaitable[dict[str, Any]]]]:
    """Connection overrides that give a test tables of its own.

    The PostgreSQL test database is shared by every test run on the machine
    (and other suites use ``tbl1``): each test here works in a fresh schema,
    dropped afterwards. SQLite's database is already in the test's tmp_path.
    """
    made: list[str] = []

    async def override(engine: str) -> dict[str, Any]:
        if engine != "postgres":
            return {}
        await ensure_test_database(engine)
        schema = f"fault_{os.getpid()}_{secrets.token_hex(4)}"
        await _pg(f'CREATE SCHEMA "{schema}"')
        made.append(schema)
        return {"options": f"-c search_path={schema}"}

    yield override
    for schema in made:
        await _pg(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def _pg(sql: str) -> None:
    import psycopg

    kw = {k: v for k, v in server_kwargs("postgres").items() if v != ""}
    async with await psycopg.AsyncConnection.connect(
        **kw, dbname=TEST_DATABASE, autocommit=True, connect_timeout=3
    ) as conn:
        await conn.execute(sql)


@pytest.fixture
async def start(
    own_schema: Callable[[str], Awaitable[dict[str, Any]]],
    tmp_path: Path,
    make_site: Any,
    serve: Any,
) -> Callable[[str], Awaitable[Site]]:
    """``site = await start(engine)``: the two scripts on a served site, the tables seeded."""

    async def start_site(engine: str) -> Site:
        db = await database_config(
            engine, tmp_path, maxconn=MAXCONN, acquire_timeout=1.0, **await own_schema(engine)
        )
        workdir = make_site(
            config={
                "website": {
                    "paths": [["$[workdir]$/wwwroot", ""]],
                    "processors": [[".dspy", "dspy"]],
                    "cookie_secret": "faults-commit-secret-of-32-bytes!",
                },
                "databases": {"db": db},
                "plugins": {"dspy": True, canonical_driver(db["driver"]): True},
            },
            files={
                "wwwroot/write.dspy": WRITE,
                "wwwroot/read.dspy": READ,
                "wwwroot/hello.txt": "hello",
            },
        )
        site = Site(await serve(workdir))
        if engine == "sqlite":
            # Open both connections now and switch foreign-key checks on for each.
            await site.hold_every_connection("PRAGMA foreign_keys = ON")
        await reset_tables(site.pools, "db")
        async with site.pools.sqlorContext("db") as sor:
            await sor.sqlExe("CREATE TABLE fault_parent (id VARCHAR(32) PRIMARY KEY)", {})
            await sor.sqlExe(CHILD[engine], {})
        site.pools.clear_schema_cache()
        async with site.pools.sqlorContext("db") as sor:
            await sor.C("fault_parent", {"id": "p1"})
            await sor.C("fault_child", {"id": "c0", "parent_id": "p1", "code": "taken"})
            await sor.C("tbl1", {"id": "keep", "field1": 1})
            await sor.C("tbl1", {"id": "gone", "field1": 2})
        assert await site.state() == SEED
        return site

    return start_site


@pytest.mark.parametrize(("engine", "kind"), CASES)
async def test_the_constraint_is_checked_at_commit(engine, kind, start):
    """Precondition of the tests below: the breaking statement succeeds, the commit fails."""
    site = await start(engine)
    p = bad_params(kind, 0)
    statement_done = False
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the driver's own class
        async with site.pools.sqlorContext("db") as sor:
            await sor.C("fault_child", {"id": p["id"], "parent_id": p["parent"], "code": p["code"]})
            statement_done = True
    assert statement_done, "the constraint was checked by the statement, not at commit"
    # The driver's IntegrityError, or already its HTTP answer once the pools map it.
    answer = (
        caught.value if isinstance(caught.value, DataConflict) else integrity_error(caught.value)
    )
    assert isinstance(answer, DataConflict), repr(caught.value)


@pytest.mark.parametrize(("engine", "kind"), CASES)
async def test_failed_commit_changes_nothing_and_frees_the_connection(engine, kind, start):
    site = await start(engine)

    # One after the other, then all at once: more failures than connections.
    results = [
        await site.request("POST", "/write.dspy", bad_params(kind, n)) for n in range(FAILURES)
    ]
    results += await asyncio.gather(
        *(
            site.request("POST", "/write.dspy", bad_params(kind, n))
            for n in range(FAILURES, 2 * FAILURES)
        )
    )
    for status, body in results:
        assert status >= 400, (status, body[:300])
        for marker in LEAKS + DRIVER_DETAIL:
            assert marker not in body, (marker, body[:300])

    # Not one of the four changes of any failed transaction is in the database.
    assert await site.state() == SEED

    # Every connection is back in the pool, outside any transaction.
    await site.hold_every_connection()

    # The server keeps serving: a static file, a read, and the same script committing.
    assert await site.request("GET", "/hello.txt") == (200, b"hello")
    status, body = await site.request("GET", "/read.dspy")
    assert (status, json.loads(body)) == (200, {"ids": ["gone", "keep"]})
    oks = await asyncio.gather(
        *(site.request("POST", "/write.dspy", good_params(n)) for n in range(2 * MAXCONN))
    )
    assert [(s, json.loads(b)) for s, b in oks] == [(200, {"ok": True})] * (2 * MAXCONN)
    assert await site.state() == {
        "tbl1": {"keep": 99} | {f"ok{n}": 3 for n in range(2 * MAXCONN)},
        "child": sorted(["c0"] + [f"ok{n}" for n in range(2 * MAXCONN)]),
    }
    await site.hold_every_connection()


@pytest.mark.parametrize(("engine", "kind"), CASES)
async def test_failed_commit_is_a_409_conflict(engine, kind, start):
    """A constraint the data breaks is the visitor's conflict, not a server error."""
    site = await start(engine)
    status, body = await site.request("POST", "/write.dspy", bad_params(kind, 0))
    # every error body is "STATUS: message" (ahcore.errors.error_response)
    assert (status, body) == (409, b"409: " + CONFLICT_MESSAGE.encode() + b"\n")
    assert await site.state() == SEED


# ------------------------------------------------------------------ the mapping itself

# Names carry a random tag: the server databases are shared by test runs.
PARENT = "CREATE TABLE fault_map_parent_{tag} (id INTEGER PRIMARY KEY)"
CHECKED = """CREATE TABLE fault_map_{tag} (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER,
    n INTEGER NOT NULL,
    k INTEGER CHECK (k > 0),
    FOREIGN KEY (parent_id) REFERENCES fault_map_parent_{tag}(id)
)"""
VIOLATIONS = [
    ("INSERT INTO fault_map_{tag} (id, n, k) VALUES (1, 1, 1)", DataConflict),  # duplicate key
    ("INSERT INTO fault_map_{tag} (id, parent_id, n, k) VALUES (4, 99, 1, 1)", DataConflict),
    ("INSERT INTO fault_map_{tag} (id, n, k) VALUES (2, NULL, 1)", BadQuery),  # NOT NULL
    ("INSERT INTO fault_map_{tag} (id, n, k) VALUES (3, 1, -1)", BadQuery),  # CHECK
]


class Undo(Exception):
    """Leaves a ``sqlorContext`` block so that it rolls back."""


@pytest.mark.parametrize("engine", ["sqlite", "postgres", "mysql"])
async def test_integrity_errors_of_every_driver_map_to_409_or_400(
    engine, tmp_path, make_site, serve
):
    """Real driver exceptions: broken key or reference → 409, NOT NULL/CHECK → 400, else None.

    Statement-level here (MySQL has no deferred constraints); the answer is
    the same whether the statement or the commit found the violation.
    """
    tag = secrets.token_hex(4)
    db = await database_config(engine, tmp_path, maxconn=1)
    workdir = make_site(
        config={"databases": {"db": db}, "plugins": {canonical_driver(db["driver"]): True}}
    )
    pools = get_pools((await serve(workdir)).app)
    if engine == "sqlite":
        async with (await pools.database("db").pool()).acquire() as conn:
            await conn.raw.run(conn.raw.db.execute, "PRAGMA foreign_keys = ON")
    async with pools.sqlorContext("db") as sor:
        await sor.sqlExe(PARENT.format(tag=tag), {})
        await sor.sqlExe(CHECKED.format(tag=tag), {})
        await sor.sqlExe(VIOLATIONS[0][0].format(tag=tag), {})

    async def driver_error(sql: str) -> Exception:
        """The driver's own exception for ``sql`` (caught inside the block, then rolled back)."""
        raised: list[Exception] = []
        with pytest.raises(Undo):
            async with pools.sqlorContext("db") as sor:
                try:
                    await sor.sqlExe(sql.format(tag=tag), {})
                except Exception as exc:
                    raised.append(exc)
                raise Undo
        assert raised, f"{sql!r} succeeded"
        return raised[0]

    try:
        for sql, expected in VIOLATIONS:
            exc = await driver_error(sql)
            answer = integrity_error(exc)
            assert type(answer) is expected, (sql, repr(exc), answer)
            assert answer is not None and answer.text is not None
            for marker in ("fault_", "PRIMARY", "99", "Duplicate", "violates", tag):
                assert marker not in answer.text, (marker, answer.text)
        assert integrity_error(await driver_error("SELECT nothing FROM fault_map_{tag}")) is None
        assert integrity_error(ValueError("x")) is None
        async with pools.sqlorContext("db") as sor:
            rows = await sor.sqlExe(f"SELECT id FROM fault_map_{tag}", {})
        assert [r["id"] for r in rows] == [1]
    finally:
        async with pools.sqlorContext("db") as sor:
            await sor.sqlExe(f"DROP TABLE fault_map_{tag}", {})
            await sor.sqlExe(f"DROP TABLE fault_map_parent_{tag}", {})


@pytest.mark.parametrize(("engine", "kind"), CASES)
async def test_a_refused_sor_commit_inside_the_block_is_the_same_clear_answer(engine, kind, start):
    # sqlor's sor.commit() in the middle of a block (ahserver scripts call it):
    # the database refuses the transaction there, the visitor gets the 409/400
    # of a refused block, nothing of it stays, and the connection is reusable.
    site = await start(engine)
    p = bad_params(kind, 0)
    with pytest.raises(DataConflict):
        async with site.pools.sqlorContext("db") as sor:
            await sor.C("tbl1", {"id": p["id"], "field1": 3})
            await sor.C("fault_child", {"id": p["id"], "parent_id": p["parent"], "code": p["code"]})
            await sor.commit()
            raise AssertionError("sor.commit() accepted a transaction the database refuses")
    assert await site.state() == SEED
    await site.hold_every_connection()
    async with site.pools.sqlorContext("db") as sor:  # and a good commit goes on in a new one
        good = good_params(0)
        await sor.C("tbl1", {"id": good["id"], "field1": 3})
        await sor.commit()
        await sor.C("tbl1", {"id": "after", "field1": 4})
    assert (await site.state())["tbl1"] == {"keep": 1, "gone": 2, "ok0": 3, "after": 4}
