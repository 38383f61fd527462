"""The sqlor interface on every engine: CRUD, SQL with bound values, paging, refusals."""

from __future__ import annotations

import datetime
import json

import pytest

from ahcore.db.errors import BadQuery, ReadOnlyRefused
from ahcore.jsonutil import dumps

ROWS = [
    {"id": "a1", "field1": 1, "name": "apple", "price": "1.50", "created": "2024-01-02"},
    {"id": "b2", "field1": 2, "name": "banana", "price": "0.25", "created": "2024-02-03"},
    {"id": "c3", "field1": 3, "name": "cherry", "price": "12.00", "created": None},
]


async def fill(pools) -> None:
    async with pools.sqlorContext("db1") as sor:
        for row in ROWS:
            assert await sor.C("tbl1", {**row, "not_a_column": "ignored"}) == 1


async def test_crud_round_trip(db_client) -> None:
    client = await db_client()
    pools = client.pools
    await fill(pools)
    async with pools.sqlorContext("db1") as sor:
        recs = await sor.R("tbl1", {"name": "banana", "page": 9, "sort": "bogus", "x": 1})
        assert [r.id for r in recs] == ["b2"]
        assert recs[0].field1 == 2
        assert await sor.U("tbl1", {"id": "b2", "name": "blueberry", "junk": 1}) == 1
        assert await sor.D("tbl1", {"id": "c3"}) == 1
    async with pools.sqlorContext("db1") as sor:
        recs = await sor.R("tbl1", {})
        assert sorted(r.name for r in recs) == ["apple", "blueberry"]
        # Records encode to JSON: dates as ISO strings, decimals as numbers.
        data = json.loads(dumps(await sor.R("tbl1", {"id": "a1"})))
        assert data[0]["created"] == "2024-01-02"
        assert data[0]["price"] == 1.5


async def test_R_with_string_values_for_typed_columns(db_client) -> None:
    client = await db_client()
    await fill(client.pools)
    async with client.pools.sqlorContext("db1") as sor:
        # params_kw values are strings; every engine compares them with an INTEGER column.
        assert [r.id for r in await sor.R("tbl1", {"field1": "3"})] == ["c3"]


async def test_RP_pages_and_sorts(db_client) -> None:
    client = await db_client()
    await fill(client.pools)
    async with client.pools.sqlorContext("db1") as sor:
        page = await sor.RP("tbl1", {"page": "2", "pagerows": "2", "sort": "field1 desc"})
        assert page.total == 3
        assert [r.id for r in page.rows] == ["a1"]
        page = await sor.RP("tbl1", {"sort": ["name DESC", "id"]})
        assert [r.id for r in page.rows] == ["c3", "b2", "a1"]
        page = await sor.RP("tbl1", {"pagerows": 100000})  # clamped, not refused
        assert page.total == 3


async def test_sqlExe_binds_values(db_client) -> None:
    client = await db_client()
    await fill(client.pools)
    async with client.pools.sqlorContext("db1") as sor:
        recs = await sor.sqlExe(
            "select id, name from tbl1 where field1 >= ${low}$ and name like ${pat}$ order by id",
            {"low": 2, "pat": "%an%"},
        )
        assert [dict(r) for r in recs] == [{"id": "b2", "name": "banana"}]
        count = await sor.sqlExe(
            "update tbl1 set field1 = ${v}$ where id = ${id}$", {"v": 9, "id": "a1"}
        )
        assert count == 1
        # A literal % in the text survives every paramstyle.
        recs = await sor.sqlExe(
            "select id from tbl1 where name like 'app%' and id = ${id}$", {"id": "a1"}
        )
        assert [r.id for r in recs] == ["a1"]


async def test_sqlPaging(db_client) -> None:
    client = await db_client()
    await fill(client.pools)
    async with client.pools.sqlorContext("db1") as sor:
        r = await sor.sqlPaging(
            "select id, field1 from tbl1 where field1 > ${var1}$;",
            {"var1": 0, "page": 1, "pagerows": 2, "sort": "field1 desc"},
        )
        assert r.total == 3
        assert [x.id for x in r.rows] == ["c3", "b2"]
        with pytest.raises(BadQuery, match="name"):
            # name is a table column but not in this query's result
            await sor.sqlPaging("select id from tbl1", {"sort": "name"})


async def test_rollback_on_exception(db_client) -> None:
    client = await db_client()
    await fill(client.pools)
    with pytest.raises(RuntimeError):
        async with client.pools.sqlorContext("db1") as sor:
            await sor.D("tbl1", {"id": "a1"})
            await sor.C("tbl1", {"id": "z9", "field1": 9})
            raise RuntimeError("boom")
    async with client.pools.sqlorContext("db1") as sor:
        assert sorted(r.id for r in await sor.R("tbl1", {})) == ["a1", "b2", "c3"]


async def test_injection_through_values_is_bound(db_client) -> None:
    client = await db_client()
    await fill(client.pools)
    evil = "a1' OR '1'='1"
    async with client.pools.sqlorContext("db1") as sor:
        assert await sor.R("tbl1", {"id": evil}) == []
        assert await sor.sqlExe("select * from tbl1 where id = ${id}$", {"id": evil}) == []
        assert await sor.D("tbl1", {"id": evil}) == 0
        await sor.C("tbl1", {"id": "x1", "name": "'); DROP TABLE tbl1; --"})
    async with client.pools.sqlorContext("db1") as sor:
        assert len(await sor.R("tbl1", {})) == 4
        assert (await sor.R("tbl1", {"id": "x1"}))[0].name == "'); DROP TABLE tbl1; --"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: s.R("tbl1; drop table tbl1", {}), "bad table name"),
        (lambda s: s.R("no_such_table", {}), "no such table"),
        (lambda s: s.RP("tbl1", {"sort": "id; drop table tbl1"}), "bad sort item"),
        (lambda s: s.RP("tbl1", {"sort": "(select 1)"}), "bad sort item"),
        (lambda s: s.RP("tbl1", {"sort": "nosuch desc"}), "no such column"),
        (lambda s: s.RP("tbl1", {"sort": {"id": 1}}), "sort must be"),
        (lambda s: s.RP("tbl1", {"page": "1 or 1=1"}), "page must be an integer"),
        (lambda s: s.RP("tbl1", {"pagerows": "x"}), "pagerows must be an integer"),
        (lambda s: s.RP("tbl1", {"page": 0}), "page must be at least 1"),
        (lambda s: s.U("tbl1", {"name": "no id"}), "'id' is required"),
        (lambda s: s.C("tbl1", {"nothing": 1}), "nothing to insert"),
        (lambda s: s.R("tbl1", {"id": ["a", "b"]}), "single value"),
        (lambda s: s.sqlPaging("select id from tbl1", {"sort": "id desc, 1"}), "bad sort item"),
    ],
)
async def test_refusals_are_400(db_client, call, message) -> None:
    client = await db_client()
    await fill(client.pools)
    with pytest.raises(BadQuery, match=message) as info:
        async with client.pools.sqlorContext("db1") as sor:
            await call(sor)
    assert info.value.status == 400
    async with client.pools.sqlorContext("db1") as sor:
        assert len(await sor.R("tbl1", {})) == 3


async def test_dates_and_numbers_are_json_safe(db_client) -> None:
    client = await db_client()
    async with client.pools.sqlorContext("db1") as sor:
        await sor.C("tbl1", {"id": "d", "created": datetime.date(2020, 5, 6), "price": 3})
        recs = await sor.sqlExe("select * from tbl1", {})
    assert json.loads(dumps(recs)) == [
        {"id": "d", "field1": None, "name": None, "price": 3, "created": "2020-05-06"}
    ]


async def test_unknown_database_is_a_clear_error(db_client) -> None:
    client = await db_client()
    with pytest.raises(LookupError, match="nope"):
        async with client.pools.sqlorContext("nope"):
            pass


@pytest.mark.filterwarnings("ignore:Unknown table")  # MySQL's note for DROP TABLE IF EXISTS
async def test_binary_values_bind_and_read_back(db_client, engine) -> None:
    """Bytes are bound as parameters on every engine (aiomysql 0.3 could not with PyMySQL ≥ 1.1)."""
    client = await db_client()
    blob = {"sqlite": "BLOB", "postgres": "BYTEA", "mysql": "BLOB"}[engine]
    data = bytes(range(256))
    async with client.pools.sqlorContext("db1") as sor:
        await sor.sqlExe("DROP TABLE IF EXISTS sqlor_blobs", {})
        await sor.sqlExe(f"CREATE TABLE sqlor_blobs (id INTEGER PRIMARY KEY, data {blob})", {})
    client.pools.clear_schema_cache()
    async with client.pools.sqlorContext("db1") as sor:
        assert await sor.C("sqlor_blobs", {"id": 1, "data": data}) == 1
        await sor.sqlExe("INSERT INTO sqlor_blobs (id, data) VALUES (2, ${d}$)", {"d": b"%s'\\"})
    async with client.pools.sqlorContext("db1") as sor:
        rows = await sor.sqlExe("SELECT id, data FROM sqlor_blobs WHERE data = ${d}$", {"d": data})
        assert [(r.id, r.data) for r in rows] == [(1, data)]
        assert (await sor.R("sqlor_blobs", {"id": 2}))[0].data == b"%s'\\"


async def test_read_only_standalone_read_still_refuses_later_writes(db_client) -> None:
    """The first read of a read-only transaction may run on its own (SQLite skips
    BEGIN/COMMIT), but the transaction stays read-only for what follows."""
    client = await db_client()
    await fill(client.pools)
    with pytest.raises(Exception):  # noqa: B017 - each engine has its own error class
        async with client.pools.sqlorContext("db1", read_only=True) as sor:
            sel = await sor.select("select id from tbl1", {})
            result = await sor.rows(sel, 10, standalone=True)
            assert sorted(r[0] for r in result.rows) == ["a1", "b2", "c3"]
            await sor.C("tbl1", {"id": "d4"})
    async with client.pools.sqlorContext("db1") as sor:
        assert sorted(r.id for r in await sor.R("tbl1", {})) == ["a1", "b2", "c3"]
        await sor.C("tbl1", {"id": "d4"})
    async with client.pools.sqlorContext("db1", read_only=True) as sor:
        sel = await sor.select("select id from tbl1", {})
        assert len((await sor.rows(sel, 10, standalone=True)).rows) == 4


async def test_sqlors_other_names_execute_record_count_pagingdata_fields_primary(db_client) -> None:
    # sqlor 2.1.2's SQLor (sor.py) also gave scripts execute, record_count,
    # pagingdata (page/rows/sort, by id without a sort), fields, primary, indexes.
    client = await db_client()
    await fill(client.pools)
    async with client.pools.sqlorContext("db1") as sor:
        sql = "select id, name from tbl1 where field1 >= ${least}$"
        assert await sor.record_count(sql, {"least": 2}) == 2
        assert [r.id for r in await sor.pagingdata(sql, {"least": 1, "rows": 2, "page": 2})] == ["c3"]
        assert [r.id for r in await sor.pagingdata(sql, {"least": 1, "rows": 2})] == ["a1", "b2"]
        page = await sor.pagingdata(sql, {"least": 1, "rows": "2", "sort": "name desc"})
        assert [r.name for r in page] == ["cherry", "banana"]
        with pytest.raises(BadQuery):
            await sor.pagingdata(sql, {"least": 1, "sort": "name; drop table tbl1"})
        assert await sor.execute("update tbl1 set name = ${n}$ where id = ${id}$",
                                 {"n": "avocado", "id": "a1"}) == 1
        names = [f.name for f in await sor.fields("tbl1")]
        assert names[:3] == ["id", "field1", "name"]
        assert [p.name for p in await sor.primary("tbl1")] == ["id"]
        assert isinstance(await sor.indexes("tbl1"), list)
    async with client.pools.sqlorContext("db1") as sor:
        assert (await sor.R("tbl1", {"id": "a1"}))[0].name == "avocado"


async def test_commit_and_rollback_inside_a_block_go_on_in_a_new_transaction(db_client) -> None:
    # sqlor's sor.commit()/sor.rollback(), which ahserver scripts call inside
    # sqlorContext: what was committed stays even when the block fails later;
    # what was rolled back is gone even when the block ends normally.
    client = await db_client()
    await fill(client.pools)
    with pytest.raises(RuntimeError):
        async with client.pools.sqlorContext("db1") as sor:
            await sor.D("tbl1", {"id": "a1"})
            await sor.commit()
            await sor.D("tbl1", {"id": "b2"})
            raise RuntimeError("boom")  # rolls back the second delete only
    async with client.pools.sqlorContext("db1") as sor:
        assert sorted(r.id for r in await sor.R("tbl1", {})) == ["b2", "c3"]
        await sor.D("tbl1", {"id": "c3"})
        await sor.rollback()
        assert sorted(r.id for r in await sor.R("tbl1", {})) == ["b2", "c3"]
        await sor.C("tbl1", {"id": "d4", "field1": 4})  # the new transaction commits at the end
    async with client.pools.sqlorContext("db1") as sor:
        assert sorted(r.id for r in await sor.R("tbl1", {})) == ["b2", "c3", "d4"]


async def test_commit_keeps_a_read_only_block_read_only(db_client) -> None:
    client = await db_client()
    await fill(client.pools)
    with pytest.raises(ReadOnlyRefused) as refused:
        async with client.pools.sqlorContext("db1", read_only=True) as sor:
            assert len(await sor.R("tbl1", {})) == 3
            await sor.commit()
            await sor.D("tbl1", {"id": "a1"})
    assert refused.value.status == 403
    async with client.pools.sqlorContext("db1") as sor:
        assert len(await sor.R("tbl1", {})) == 3


async def test_executemany_and_getTableDesc(db_client) -> None:
    client = await db_client()
    async with client.pools.sqlorContext("db1") as sor:
        sql = "insert into tbl1 (id, field1, name) values (${id}$, ${n}$, ${name}$)"
        rows = [{"id": f"m{n}", "n": n, "name": f"many {n}"} for n in range(3)]
        assert await sor.executemany(sql, rows) == 3
        assert await sor.executemany(sql, []) == 0
        with pytest.raises(BadQuery, match="writes"):
            await sor.executemany("select id from tbl1 where id = ${id}$", [{"id": "m1"}])
        desc = await sor.getTableDesc("tbl1")
        assert desc == await sor.I("tbl1")
        assert [f.name for f in desc.fields][:3] == ["id", "field1", "name"]
    async with client.pools.sqlorContext("db1") as sor:
        assert [r.name for r in await sor.R("tbl1", {"id": "m2"})] == ["many 2"]


async def test_a_sor_kept_past_its_block_cannot_reach_the_pooled_connection(db_client) -> None:
    # After the block its connection is back in the pool, maybe another
    # request's: a script that keeps `sor` gets an error, not that connection.
    client = await db_client()
    await fill(client.pools)
    async with client.pools.sqlorContext("db1") as kept:
        assert len(await kept.R("tbl1", {})) == 3
    for use in (
        kept.sqlExe("select id from tbl1", {}),
        kept.R("tbl1", {}),
        kept.C("tbl1", {"id": "z9"}),
        kept.commit(),
    ):
        with pytest.raises(RuntimeError, match="block has ended"):
            await use
    with pytest.raises(ValueError):  # the same when the block failed
        async with client.pools.sqlorContext("db1") as failed:
            raise ValueError("boom")
    with pytest.raises(RuntimeError, match="block has ended"):
        await failed.sqlExe("select id from tbl1", {})
    async with client.pools.sqlorContext("db1") as sor:  # the pool itself is fine
        assert len(await sor.R("tbl1", {})) == 3
