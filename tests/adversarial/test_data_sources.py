"""``.sqlds`` answers a client can rely on (SPEC §16), on SQLite, PostgreSQL and MySQL.

A read-only data source whose statement writes — a common table expression
in front of a ``DELETE``, a data-modifying CTE, a second statement after a
``;``, an ``EXPLAIN ANALYZE`` that runs what it explains — is a 403 with a
message, as JSON (a data endpoint), and deletes nothing. A write that looks
like a query to every lexical check is refused by the database's read-only
transaction, and that refusal is a 403 as well, never a 500.

``pagingdata`` says when the row cap cut the page (``"truncated": true``),
and only then; errors of a data endpoint are JSON whatever the client asks.

Requests are raw bytes over a socket: what the visitor's own bytes get.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from advkit import raw_exchange, request_bytes

from ahcore.db.pools import DBPools, get_pools
from ahcore.plugins import canonical_driver
from ahcore.testing import write_site
from ahcore.testing.databases import ENGINES, database_config, reset_tables

pytest.importorskip("ahcore_sqlds")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on sqlite, postgres and mysql (skipped where one is missing)."""
    return str(request.param)


ROWS = [
    {"id": "a1", "field1": 1, "name": "apple", "price": "1.50"},
    {"id": "b2", "field1": 2, "name": "banana", "price": "0.25"},
    {"id": "c3", "field1": 3, "name": "cherry", "price": "12.00"},
]


def sqlds(sql: str, arguments: list[Any] | None = None, **desc: Any) -> str:
    return json.dumps(
        {"sqldesc": {"sql_string": sql, "db": "db1", **desc}, "arguments": arguments or []}
    )


# Read-only data sources whose statement writes, each in its own way.
WRITES = {
    "cte_delete": "WITH x AS (SELECT 1 AS one) DELETE FROM tbl1",
    "cte_update": (
        "-- a comment first\nWITH RECURSIVE x(n) AS (SELECT 1) UPDATE tbl1 SET name = 'gone'"
    ),
    "cte_paren_in_string": "with x as (select ')' as p, 'with' as w) delete from tbl1",
    "cte_quoted_name": 'WITH "a)b" AS (SELECT 1) DELETE FROM tbl1',
    "modifying_cte": "with d as (delete from tbl1 returning id) select id from d",
    "second_statement": "select id from tbl1; delete from tbl1",
    "explain_analyze": "EXPLAIN ANALYZE DELETE FROM tbl1",
    "parenthesised": "(WITH x AS (SELECT 1) DELETE FROM tbl1)",
}

FILES = {
    **{f"wwwroot/{name}.sqlds": sqlds(sql) for name, sql in WRITES.items()},
    "wwwroot/items.sqlds": sqlds(
        "select id, field1, name from tbl1 where field1 >= ${low}$",
        [{"name": "low", "type": "int", "default": 0}],
        sortfield="id",
    ),
    "wwwroot/remove.sqlds": sqlds(
        "delete from tbl1 where id = ${id}$", [{"name": "id", "type": "str"}], writable=True
    ),
    # Author code that asks for a read-only transaction and writes in it anyway.
    "wwwroot/ro_write.dspy": (
        "async with DBPools().sqlorContext('db1', read_only=True) as sor:\n"
        "    await sor.sqlExe('delete from tbl1', {})\n"
        "return 'NOT-REFUSED'\n"
    ),
}


async def start(serve, tmp_path: Path, engine: str, settings: dict[str, Any] | None = None):
    db = await database_config(engine, tmp_path)
    site = write_site(
        tmp_path / "site",
        {
            "website": {
                "processors": [[".sqlds", "sqlds"], [".dspy", "dspy"]],
                "cookie_secret": "x" * 40,
            },
            "databases": {"db1": db},
            "plugins": {
                canonical_driver(db["driver"]): True,
                "sqlds": settings or True,
                "dspy": True,
            },
        },
        FILES,
    )
    server = await serve(site)
    pools = get_pools(server.app)
    await reset_tables(pools)
    async with pools.sqlorContext("db1") as sor:
        for row in ROWS:
            await sor.C("tbl1", row)
    return server, pools


async def table(pools: DBPools) -> list[tuple[Any, ...]]:
    async with pools.sqlorContext("db1") as sor:
        rows = await sor.sqlExe("select id, name from tbl1 order by id", {})
    return [(r["id"], r["name"]) for r in rows]


BEFORE = [("a1", "apple"), ("b2", "banana"), ("c3", "cherry")]


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_write_in_a_read_only_data_source_is_403_and_changes_nothing(
    serve, tmp_path, engine, name
):
    server, pools = await start(serve, tmp_path, engine)
    for method, target in [
        ("GET", f"/{name}.sqlds"),
        ("GET", f"/{name}.sqlds?action=getdata"),
        ("GET", f"/{name}.sqlds?action=pagingdata"),
        ("POST", f"/{name}.sqlds"),
    ]:
        reply = await raw_exchange(server, request_bytes(method, target))
        assert reply.status == 403, (method, target, reply.raw[:400])
        assert reply.headers["content-type"].startswith("application/json")
        error = json.loads(reply.body)["error"]
        assert error["status"] == 403
        assert "read-only" in error["message"]
        reply.assert_clean()
    assert await table(pools) == BEFORE
    # the data sources that may answer still do
    ok = await raw_exchange(server, request_bytes("GET", "/items.sqlds"))
    assert ok.status == 200 and len(json.loads(ok.body)) == 3


async def test_the_databases_own_read_only_refusal_is_a_403(serve, tmp_path, engine):
    server, pools = await start(serve, tmp_path, engine)
    reply = await raw_exchange(server, request_bytes("GET", "/ro_write.dspy"))
    assert reply.status == 403, reply.raw[:400]
    assert b"read-only" in reply.body and b"NOT-REFUSED" not in reply.body
    reply.assert_clean()
    assert await table(pools) == BEFORE
    # a writable data source still writes, by POST
    done = await raw_exchange(server, request_bytes("POST", "/remove.sqlds?id=a1"))
    assert done.status == 200 and json.loads(done.body) == {"rowcount": 1}
    assert await table(pools) == BEFORE[1:]


@pytest.mark.parametrize(
    "settings", [{"row_cap": 2}, {"row_cap": 2, "batch_rows": 1}], ids=["whole", "streamed"]
)
async def test_pagingdata_says_when_the_row_cap_cut_the_page(serve, tmp_path, engine, settings):
    server, _ = await start(serve, tmp_path, engine, settings)

    async def page(query: str) -> dict[str, Any]:
        reply = await raw_exchange(server, request_bytes("GET", f"/items.sqlds?{query}"))
        assert reply.status == 200, reply.raw[:400]
        return json.loads(reply.body)

    cut = await page("action=pagingdata&rows=50")
    assert cut == {
        "total": 3,
        "rows": [
            {"id": "a1", "field1": 1, "name": "apple"},
            {"id": "b2", "field1": 2, "name": "banana"},
        ],
        "truncated": True,
    }
    # the default page size (80) is over the cap too
    assert (await page("action=pagingdata"))["truncated"] is True
    # a page the cap did not cut says nothing
    whole = await page("action=pagingdata&rows=2")
    assert whole["total"] == 3 and len(whole["rows"]) == 2 and "truncated" not in whole
    last = await page("action=pagingdata&rows=50&page=2")
    assert [r["id"] for r in last["rows"]] == ["c3"] and "truncated" not in last
    assert "truncated" not in await page("action=pagingdata&rows=50&low=3")


async def test_data_endpoint_errors_are_json_without_asking(serve, tmp_path):
    server, pools = await start(serve, tmp_path, "sqlite")
    bad = await raw_exchange(server, request_bytes("GET", "/items.sqlds?low=1%20or%201=1"))
    assert bad.status == 400
    assert bad.headers["content-type"].startswith("application/json")
    error = json.loads(bad.body)["error"]
    assert error["status"] == 400 and "low" in error["message"]
    for method, target in [("DELETE", "/items.sqlds"), ("GET", "/remove.sqlds?id=a1")]:
        reply = await raw_exchange(server, request_bytes(method, target))
        assert reply.status == 405, (method, target, reply.raw[:300])
        assert reply.headers["content-type"].startswith("application/json")
        assert "allow" in reply.headers
        assert json.loads(reply.body)["error"]["status"] == 405
        reply.assert_clean()
    assert await table(pools) == BEFORE
