"""ahserver's README "CRUD use case 1–5" and "SQL EXECUTE use case 1–2", run as .dspy files.

The scripts are the README's text; only the elided SQL (``.....``) is
filled in. They run on every engine through HTTP.
"""

from __future__ import annotations

import pytest

pytest.importorskip("ahcore_dspy")

USE_CASES = {
    "wwwroot/insert.dspy": """
db = DBPools()
async with db.sqlorContext('dbname1') as sor:
	ns = {
		'id':uuid(),
		'field1':1
	}
	recs = await sor.C('tbl1', ns)
""",
    "wwwroot/update.dspy": """
ns = params_kw.copy() # get data from client
db = DBPools()
async with db.sqlorContext('dbname1') as sor:
	await sor.U('tbl1', ns)
""",
    "wwwroot/delete.dspy": """
ns = {
	'id':params_kw.id
}
db = DBPools()
async with db.sqlorContext('dbname1') as sor:
	await sor.D('tbl1', ns)
""",
    "wwwroot/search.dspy": """
ns = params_kw.copy()
db = DBPools()
async with db.sqlorContext('dbname1') as sor:
	recs = await sor.R('tbl1', ns)
	# recs is d list with element is a DictObject instance with all the table fields data
	return recs
""",
    "wwwroot/search_paging.dspy": """
ns = params_kw.copy()
if ns.get('page') is None:
	ns['page'] = 1
if ns.get('sort') is None:
	ns['sort'] = 'id desc'
db = DBPools()
async with db.sqlorContext('dbname1') as sor:
	recs = await sor.RP('tbl1', ns)
	return recs
""",
    "wwwroot/sqlexe.dspy": """
sql = "select * from tbl1 where id=${id}$ and field1 = ${var1}$"
db = DBPools()
async with db.sqlorContext('dbname') as sor:
	r = await sor.sqlExe(sql, {'id':'iejkuiew', 'var1':1111})
	# if sql is a select command, r is a list with data returned, is a instance of DictObject
	return r
""",
    "wwwroot/sqlpaging.dspy": """
sql = "select * from tbl1 where id=${id}$ and field1 = ${var1}$"
db = DBPools()
async with db.sqlorContext('dbname') as sor:
	r = await sor.sqlPaging(sql, {'id':'iejkuiew',
								'page':1,
								'pagerows':60,
								'sort':'field1',
								'var1':1111})
	return r
""",
    "wwwroot/rollback.dspy": """
async with get_sor_context(request._run_ns, 'dbname1') as sor:
	await sor.C('tbl1', {'id': 'never', 'field1': 0})
	raise ValueError('undo the insert')
""",
    "wwwroot/injection.dspy": """
async with DBPools().sqlorContext('dbname1') as sor:
	return await sor.RP('tbl1', params_kw.copy())
""",
}


async def start(db_client):
    return await db_client(files=USE_CASES, plugins={"dspy": True}, aliases=("dbname1", "dbname"))


async def ok(resp):
    assert resp.status == 200, await resp.text()
    return await resp.json() if resp.content_type == "application/json" else None


async def test_crud_use_cases(db_client) -> None:
    client = await start(db_client)
    for _ in range(3):
        await ok(await client.get("/insert.dspy"))
    recs = await ok(await client.get("/search.dspy"))
    assert len(recs) == 3 and all(r["field1"] == 1 for r in recs)
    first, second = sorted(r["id"] for r in recs)[:2]

    await ok(await client.post("/update.dspy", data={"id": first, "field1": "7"}))
    assert [r["field1"] for r in await ok(await client.get(f"/search.dspy?id={first}"))] == [7]

    await ok(await client.get(f"/delete.dspy?id={second}"))
    page = await ok(await client.get("/search_paging.dspy?pagerows=1"))
    assert page["total"] == 2 and len(page["rows"]) == 1
    # uuid() ids are mixed-case nanoids, which collations order differently from
    # Python: check that 'id desc' and 'id' each put a different one first.
    ascending = await ok(await client.get("/search_paging.dspy?pagerows=1&sort=id"))
    remaining = {r["id"] for r in recs if r["id"] != second}
    assert {page["rows"][0]["id"], ascending["rows"][0]["id"]} == remaining
    assert (await ok(await client.get("/search.dspy?field1=7")))[0]["id"] == first


async def test_sql_execute_use_cases(db_client) -> None:
    client = await start(db_client)
    async with client.pools.sqlorContext("dbname") as sor:
        await sor.C("tbl1", {"id": "iejkuiew", "field1": 1111, "name": "found"})
        await sor.C("tbl1", {"id": "other", "field1": 1111})
    recs = await ok(await client.get("/sqlexe.dspy"))
    assert [r["name"] for r in recs] == ["found"]
    page = await ok(await client.get("/sqlpaging.dspy"))
    assert page["total"] == 1 and page["rows"][0]["id"] == "iejkuiew"


async def test_exception_in_script_rolls_back(db_client) -> None:
    client = await start(db_client)
    resp = await client.get("/rollback.dspy")
    assert resp.status == 500
    assert await ok(await client.get("/search.dspy")) == []


@pytest.mark.parametrize(
    "query",
    [
        "sort=id;drop table tbl1",
        "sort=id desc, (select 1)",
        "page=1;drop table tbl1",
        "pagerows=1 or 1=1",
        "sort=nosuch",
    ],
)
async def test_injection_through_request_is_400(db_client, query) -> None:
    client = await start(db_client)
    await ok(await client.get("/insert.dspy"))
    resp = await client.get(f"/injection.dspy?{query}")
    assert resp.status == 400, await resp.text()
    assert len(await ok(await client.get("/search.dspy"))) == 1


async def test_values_in_requests_are_bound(db_client) -> None:
    client = await start(db_client)
    await ok(await client.get("/insert.dspy"))
    recs = await ok(await client.get("/search.dspy", params={"id": "x' OR '1'='1"}))
    assert recs == []


async def test_pool_exhaustion_over_http_is_503(db_client) -> None:
    client = await db_client(
        files={
            "wwwroot/hold.dspy": """
async with DBPools().sqlorContext('dbname1') as sor:
	await async_sleep(2.0)
	return 'held'
""",
            **USE_CASES,
        },
        plugins={"dspy": True},
        aliases=("dbname1", "dbname"),
        maxconn=1,
        acquire_timeout=0.2,
    )
    import asyncio

    hold = asyncio.ensure_future(client.get("/hold.dspy"))
    await asyncio.sleep(0.6)  # a loaded machine may take a while to start the script
    resp = await client.get("/search.dspy")
    assert resp.status == 503
    assert "no free connection" in await resp.text()
    assert (await hold).status == 200
    assert await ok(await client.get("/search.dspy")) == []
