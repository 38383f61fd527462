"""``.sqlds`` data sources on every engine, through HTTP."""

from __future__ import annotations

import json

import pytest

ROWS = [
    {"id": "a1", "field1": 1, "name": "apple", "price": "1.50", "created": "2024-01-02"},
    {"id": "b2", "field1": 2, "name": "banana", "price": "0.25", "created": "2024-02-03"},
    {"id": "c3", "field1": 3, "name": "cherry", "price": "12.00", "created": None},
]

SLOW_SQL = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000)"
    " SELECT count(*) AS n FROM c",
    "postgres": "SELECT pg_sleep(5) AS n",
    "mysql": "SELECT SLEEP(5) AS n",
}


def sqlds(sql: str, arguments=(), **desc) -> str:
    return json.dumps(
        {"sqldesc": {"sql_string": sql, "db": "db1", **desc}, "arguments": list(arguments)}
    )


FILES = {
    "wwwroot/items.sqlds": sqlds(
        "select id, field1, name, price, created from tbl1 where field1 >= ${low}$",
        [{"name": "low", "type": "int", "iotype": "text", "default": 0}],
        sortfield="id",
    ),
    "wwwroot/byname.sqlds": sqlds(
        "select id from tbl1 where name = ${name}$", [{"name": "name", "type": "str"}]
    ),
    "wwwroot/since.sqlds": sqlds(
        "select id from tbl1 where created >= ${since}$ order by id",
        [{"name": "since", "type": "date", "default": "2024-01-01"}],
    ),
    "wwwroot/described.sqlds": json.dumps(
        {
            "sqldesc": {"sql_string": "select id from tbl1", "db": "db1"},
            "datadesc": [{"name": "id", "type": "str", "label": "Identifier"}],
        }
    ),
    "wwwroot/delete_ro.sqlds": sqlds("delete from tbl1"),
    "wwwroot/delete.sqlds": sqlds(
        "delete from tbl1 where id = ${id}$", [{"name": "id", "type": "str"}], writable=True
    ),
    "wwwroot/sneaky.sqlds": sqlds(
        "with x as (select 1 as one) select one from x where 1 = 0 union all select 1 from tbl1"
    ),
}


async def start(db_client, engine, *, settings=None, maxconn=4, files=None, dspy=False):
    all_files = dict(FILES)
    all_files["wwwroot/slow.sqlds"] = sqlds(SLOW_SQL[engine])
    all_files.update(files or {})
    plugins = {"sqlds": settings or True, **({"dspy": True} if dspy else {})}
    client = await db_client(files=all_files, maxconn=maxconn, plugins=plugins)
    async with client.pools.sqlorContext("db1") as sor:
        for row in ROWS:
            await sor.C("tbl1", row)
    return client


async def get_json(client, url, status=200, **kw):
    resp = await client.get(url, **kw)
    text = await resp.text()
    assert resp.status == status, text
    return json.loads(text) if status == 200 else text


async def test_getdata_is_a_list_of_records(db_client, engine) -> None:
    client = await start(db_client, engine)
    data = await get_json(client, "/items.sqlds?low=2&sort=id desc")
    assert [r["id"] for r in data] == ["c3", "b2"]
    assert data[1]["created"] == "2024-02-03"
    assert data[1]["price"] == 0.25
    default = await get_json(client, "/items.sqlds?action=getdata")
    assert len(default) == 3


async def test_pagingdata(db_client, engine) -> None:
    client = await start(db_client, engine)
    page = await get_json(client, "/items.sqlds?action=pagingdata&page=2&rows=2")
    assert page["total"] == 3
    assert [r["id"] for r in page["rows"]] == ["c3"]  # sortfield id
    page = await get_json(client, "/items.sqlds?action=pagingdata&pagerows=2&sort=price desc")
    assert [r["id"] for r in page["rows"]] == ["c3", "a1"]
    page = await get_json(client, "/items.sqlds?action=pagingdata&sort=name&sort=id")
    assert [r["id"] for r in page["rows"]] == ["a1", "b2", "c3"]


async def test_arguments_and_result_fields(db_client, engine) -> None:
    client = await start(db_client, engine)
    args = await get_json(client, "/items.sqlds?action=arguments")
    assert args == [{"name": "low", "type": "int", "iotype": "text", "default": 0}]
    fields = await get_json(client, "/items.sqlds?action=resultFields")
    assert [f["name"] for f in fields] == ["id", "field1", "name", "price", "created"]
    assert all({"name", "type", "label"} <= f.keys() for f in fields)
    fields = await get_json(client, "/described.sqlds?action=resultFields")
    assert fields == [{"name": "id", "type": "str", "label": "Identifier"}]


async def test_typed_arguments(db_client, engine) -> None:
    client = await start(db_client, engine)
    assert [r["id"] for r in await get_json(client, "/since.sqlds")] == ["a1", "b2"]
    assert [r["id"] for r in await get_json(client, "/since.sqlds?since=2024-02-01")] == ["b2"]
    text = await get_json(client, "/since.sqlds?since=yesterday", status=400)
    assert "since" in text
    text = await get_json(client, "/items.sqlds?low=1%20or%201=1", status=400)
    assert "low" in text and "int" in text
    text = await get_json(client, "/byname.sqlds", status=400)
    assert "missing argument 'name'" in text


@pytest.mark.parametrize(
    "query, needle",
    [
        ("action=drop", "unknown action"),
        ("sort=id;drop table tbl1", "bad sort item"),
        ("sort=nosuch", "no such column"),
        ("sort=(select 1)", "bad sort item"),
        ("action=pagingdata&page=x", "page must be an integer"),
        ("action=pagingdata&rows=1e9", "rows must be an integer"),
        # past the databases' 64-bit OFFSET: a 400, not the driver's 500
        ("action=pagingdata&page=99999999999999999999", "page must be at most"),
        ("action=pagingdata&sort=id desc, name sideways", "bad sort item"),
    ],
)
async def test_bad_input_is_400(db_client, engine, query, needle) -> None:
    client = await start(db_client, engine)
    text = await get_json(client, f"/items.sqlds?{query}", status=400)
    assert needle in text
    assert len(await get_json(client, "/items.sqlds")) == 3


async def test_values_are_bound_not_spliced(db_client, engine) -> None:
    client = await start(db_client, engine)
    assert await get_json(client, "/byname.sqlds", params={"name": "x' OR '1'='1"}) == []
    assert await get_json(client, "/byname.sqlds", params={"name": "apple"}) == [{"id": "a1"}]


async def test_read_only_by_default(db_client, engine) -> None:
    client = await start(db_client, engine)
    assert (await client.post("/delete_ro.sqlds")).status == 403
    assert (await client.get("/delete.sqlds?id=a1")).status == 405
    # The query data source runs in a read-only transaction as well.
    assert len(await get_json(client, "/sneaky.sqlds")) == 3
    resp = await client.post("/delete.sqlds", data={"id": "a1"})
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"rowcount": 1}
    assert len(await get_json(client, "/items.sqlds")) == 2


async def test_row_cap_truncates_with_header(db_client, engine) -> None:
    client = await start(db_client, engine, settings={"row_cap": 2})
    resp = await client.get("/items.sqlds")
    assert resp.headers.get("X-Truncated") == "true"
    assert len(await resp.json()) == 2
    resp = await client.get("/items.sqlds?low=3")
    assert "X-Truncated" not in resp.headers
    page = await get_json(client, "/items.sqlds?action=pagingdata&rows=50")
    assert page["total"] == 3 and len(page["rows"]) == 2 and page["truncated"] is True
    page = await get_json(client, "/items.sqlds?action=pagingdata&rows=2")
    assert "truncated" not in page


async def test_pagingdata_through_path_call_says_when_the_cap_cut_it(db_client, engine) -> None:
    files = {
        "wwwroot/page.dspy": (
            "answer = await path_call('/items.sqlds', action='pagingdata', rows=params_kw.rows)\n"
            "return {'n': len(answer['rows']), 'truncated': answer.get('truncated', False)}\n"
        )
    }
    client = await start(db_client, engine, settings={"row_cap": 2}, files=files, dspy=True)
    assert await get_json(client, "/page.dspy?rows=50") == {"n": 2, "truncated": True}
    assert await get_json(client, "/page.dspy?rows=2") == {"n": 2, "truncated": False}


async def test_slow_query_is_stopped_and_pool_recovers(db_client, engine) -> None:
    client = await start(db_client, engine, settings={"time_limit_ms": 300}, maxconn=1)
    resp = await client.get("/slow.sqlds")
    assert resp.status == 504, await resp.text()
    assert "time limit" in await resp.text()
    # maxconn is 1: this works only if the stopped query's connection came back.
    assert len(await get_json(client, "/items.sqlds")) == 3


async def test_file_parsed_once_per_change(db_client, engine, monkeypatch) -> None:
    from ahcore_sqlds import processor

    client = await start(db_client, engine)
    parsed = []
    real = processor.SqlDataSource.from_json
    monkeypatch.setattr(
        processor.SqlDataSource,
        "from_json",
        classmethod(lambda cls, *a: parsed.append(1) or real(*a)),
    )
    for query in ("", "?action=pagingdata", "?action=arguments", "?low=2"):
        await get_json(client, "/items.sqlds" + query)
    assert len(parsed) == 1


async def test_broken_file_is_a_500_without_details(db_client, engine) -> None:
    client = await start(
        db_client,
        engine,
        files={"wwwroot/bad.sqlds": sqlds("select ${undeclared}$ as x")},
    )
    resp = await client.get("/bad.sqlds")
    assert resp.status == 500
    assert "undeclared" not in await resp.text()
