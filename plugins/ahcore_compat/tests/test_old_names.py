"""The names 2019-era scripts call (absurl, runSQL …, CRUD) on each database engine.

``db_client`` (ahcore.testing.databases) runs each test on SQLite, and on
PostgreSQL and MariaDB when their test servers are reachable.
"""

from __future__ import annotations

import pytest
from ahcore_compat.oldnames import resolve_url

HOSTILE = "x'); DROP TABLE tbl1; --"

RUNSQL = f"""\
ins = "insert into tbl1 (id, field1, name) values (${{id}}$, ${{f}}$, ${{name}}$)"
n = await runSQL('db1', ins, {{'id': 'a', 'f': 1, 'name': {HOSTILE!r}}})
await runSQL('db1', ins, {{'id': 'b', 'f': 2, 'name': 'bee'}})
await runSQL('db1', ins, {{'id': 'c', 'f': 3, 'name': 'cee'}})
recs = await runSQL('db1', "select id, name from tbl1 where field1 >= ${{f}}$ order by id", {{'f': 1}})

@runSQL
async def by_name(dbname, NS):
    return {{"sql_string": "select id from tbl1 where name = ${{name}}$", "dataname": "found"}}

ns = {{'name': 'bee'}}
named = await by_name('db1', ns)

seen = []

@runSQLIterator
def every(dbname, NS):  # sqlor awaited it; a plain function works too
    return {{"sql_string": "select id from tbl1 order by id"}}

streamed = await every('db1', {{}}, callback=lambda rec: seen.append(rec['id']))

@runSQLPaging
async def paged(dbname, NS):
    return {{"sql_string": "select id, field1 from tbl1", "sortfield": "field1"}}

page = await runSQLPaging('db1', "select id, field1 from tbl1", {{'page': 2, 'rows': 1, 'sort': 'field1', 'order': 'desc'}})
page_by_field = await paged('db1', {{'page': 1, 'rows': 2}})
fields = await runSQLResultFields('db1', "select id, field1 from tbl1", {{}})
async with DBPools().sqlorContext('db1') as sor:
    in_tx = await runSQL('db1', "select count(*) as n from tbl1", {{}}, sor=sor)
return {{
    "inserted": n,
    "recs": [[r['id'], r['name']] for r in recs],
    "named": [r['id'] for r in named],
    "found": [r['id'] for r in ns['found']],
    "streamed": streamed,
    "seen": seen,
    "page": [page['total'], [r['id'] for r in page['rows']]],
    "page_by_field": [r['id'] for r in page_by_field['rows']],
    "fields": [f.name.lower() for f in fields],
    "in_tx": int(in_tx[0]['n']),
}}
"""

CRUD_SCRIPT = """\
crud = CRUD('db1', 'tbl1')
made = await crud.C({'field1': 5, 'name': 'made'})
await crud.C({'id': 'fixed', 'field1': 6, 'name': 'second'})
one = await crud.R(NS={'__id': made['id']})
await crud.U({'id': made['id'], 'name': 'changed'})
after = await crud.R(NS={'id': made['id']})
page = await crud.R(NS={'page': 1, 'rows': 1, 'sort': 'field1', 'order': 'desc'})
await crud.D({'id': made['id']})
gone = await crud.R(NS={'id': made['id']})
info = await crud.I()
return {
    "id_made": len(made['id']) == 32,
    "one": [r['name'] for r in one],
    "after": [r['name'] for r in after],
    "page": [page['total'], [r['id'] for r in page['rows']]],
    "gone": gone,
    "fields": [f.name for f in info],
    "primary": [f.name for f in info if f.get('primarykey')],
}
"""

ABSURL = """\
return [
    absurl(request, 'x.dspy'),
    absurl('../y.dspy?a=1'),
    absurl('./deeper/../z.dspy'),
    absurl('/top.dspy'),
    absurl('https://example.org/p'),
]
"""

PLUGINS = {"dspy": True, "compat": True}


async def test_runsql_family(db_client):
    client = await db_client(files={"wwwroot/run.dspy": RUNSQL}, plugins=PLUGINS)
    r = await client.get("/run.dspy")
    assert r.status == 200, await r.text()
    got = await r.json()
    assert got["inserted"] == 1  # a statement without rows: its row count
    assert got["recs"] == [["a", HOSTILE], ["b", "bee"], ["c", "cee"]]  # bound, never spliced
    assert got["named"] == got["found"] == ["b"]  # returned, and kept in NS[dataname]
    assert got["streamed"] == [] and got["seen"] == ["a", "b", "c"]
    assert got["page"] == [3, ["b"]]  # page 2 of 1 row, field1 descending
    assert got["page_by_field"] == ["a", "b"]  # the description's sortfield
    assert got["fields"] == ["id", "field1"]
    assert got["in_tx"] == 3


async def test_crud(db_client):
    client = await db_client(files={"wwwroot/crud.dspy": CRUD_SCRIPT}, plugins=PLUGINS)
    r = await client.get("/crud.dspy")
    assert r.status == 200, await r.text()
    assert await r.json() == {
        "id_made": True,
        "one": ["made"],
        "after": ["changed"],
        "page": [2, ["fixed"]],
        "gone": [],
        "fields": ["id", "field1", "name", "price", "created"],
        "primary": ["id"],
    }


async def test_spliced_text_and_bad_sort_are_refused(db_client):
    files = {
        "wwwroot/splice.dspy": "return await runSQL('db1', 'select * from $[t]$', {'t': 'tbl1'})",
        "wwwroot/sort.dspy": (
            "return await runSQLPaging('db1', 'select id from tbl1', "
            "{'page': 1, 'sort': 'id; drop table tbl1'})"
        ),
        "wwwroot/order.dspy": (
            "return await runSQLPaging('db1', 'select id from tbl1', "
            "{'page': 1, 'sort': 'id', 'order': 'desc, (select 1)'})"
        ),
        "wwwroot/table.dspy": "return await CRUD('db1', 'tbl1 x').R()",
        "wwwroot/count.dspy": "return await runSQL('db1', 'select count(*) as n from tbl1')",
    }
    client = await db_client(files=files, plugins=PLUGINS)
    assert (await client.get("/splice.dspy")).status == 500  # a script error, logged
    for path in ("/sort.dspy", "/order.dspy", "/table.dspy"):
        r = await client.get(path)
        assert r.status == 400, (path, await r.text())
    r = await client.get("/count.dspy")
    assert r.status == 200 and [int(x["n"]) for x in await r.json()] == [0]  # the table is intact


async def test_absurl(make_site, ahcore_client):
    config = {"website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".dspy", "dspy"]]}}
    client = await ahcore_client(make_site(config=config, files={"wwwroot/a/b/page.dspy": ABSURL}))
    r = await client.get("/a/b/page.dspy")
    assert r.status == 200, await r.text()
    assert await r.json() == [
        "/a/b/x.dspy",
        "/a/y.dspy?a=1",
        "/a/b/z.dspy",
        "/top.dspy",
        "https://example.org/p",
    ]


@pytest.mark.parametrize(
    ("page", "url", "expected"),
    [
        ("/a/", "x", "/a/x"),  # a folder (index) page
        ("/a", "x", "/x"),
        ("/", "../../x", "/x"),  # never above the root
        ("/a/b.dspy", "c/./d/../e?q=../1", "/a/c/e?q=../1"),  # the query is not a path
    ],
)
def test_resolve_url(page, url, expected):
    assert resolve_url(page, url) == expected


async def test_templates_await_the_old_names(make_site, ahcore_client):
    config = {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "processors": [[".dspy", "dspy"], [".tmpl", "tmpl"]],
        },
        "databases": {"db1": {"driver": "aiosqlite", "kwargs": {"dbname": "$[workdir]$/t.db"}}},
    }
    files = {
        "wwwroot/setup.dspy": (
            "await runSQL('db1', 'create table t (id varchar(10) primary key, n integer)')\n"
            "await runSQL('db1', 'insert into t values (${id}$, ${n}$)', {'id': 'a', 'n': 7})\n"
            "return 'ok'\n"
        ),
        "wwwroot/list.tmpl": (
            "{% set recs = runSQL('db1', 'select id, n from t') %}"
            "{% for r in recs %}{{ r.id }}={{ r.n }};{% endfor %}"
            "{% set page = runSQLPaging('db1', 'select id from t', {'page': 1}) %}total={{ page.total }}"
        ),
    }
    client = await ahcore_client(make_site(config=config, files=files))
    assert (await client.get("/setup.dspy")).status == 200
    r = await client.get("/list.tmpl")
    assert r.status == 200 and (await r.text()) == "a=7;total=1"
