"""ahcore.db.sqlor against SQLite through a small pool: the bound-query API and CRUD edges.

The sqlor calls on every engine, through an application's pools, are tested
in ``tests/db/test_sqlor.py``; this file drives :class:`SQLor` directly.
"""

from __future__ import annotations

import pytest

from ahcore.db.driver import FetchResult
from ahcore.db.errors import BadQuery
from ahcore.db.schema import SchemaCache
from ahcore.db.sqlite import SqlitePool
from ahcore.db.sqlor import Select, SQLor, _BufferedStream
from ahcore.dictobject import DictObject

ROWS = [(i, f"item{i:02d}", i % 3, None if i % 4 == 0 else f"n{i}") for i in range(1, 26)]


@pytest.fixture
async def pool(tmp_path):
    pool = SqlitePool("db", str(tmp_path / "sqlor.db"), maxconn=2, acquire_timeout=5.0)
    async with pool.acquire() as conn:
        await conn.begin()
        await conn.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, note TEXT,"
            " price NUMERIC, made DATE)", [])
        await conn.execute("CREATE TABLE noid (k TEXT)", [])
        for row in ROWS:
            await conn.execute("INSERT INTO items (id, name, grp, note) VALUES (?, ?, ?, ?)", list(row))
        await conn.commit()
    yield pool
    await pool.close()


@pytest.fixture
async def sor(pool):
    schema = SchemaCache()
    async with pool.acquire() as conn:
        await conn.begin()
        yield SQLor(conn, schema, "db")
        await conn.rollback()


# ---------------------------------------------------------------- CRUD edges


async def test_R_filters_by_known_columns_and_none_is_is_null(sor) -> None:
    rows = await sor.R("items", {"grp": 0, "note": None, "unknown": "x", "page": 2, "sort": "x"})
    assert [r.id for r in rows] == [12, 24]
    assert all(isinstance(r, DictObject) for r in rows)
    assert len(await sor.R("ITEMS")) == 25  # table names in any case


async def test_U_changes_only_known_columns_and_without_any_is_a_no_op(sor) -> None:
    assert await sor.U("items", {"id": 3, "name": "renamed", "junk": 1}) == 1
    assert (await sor.R("items", {"id": 3}))[0].name == "renamed"
    assert await sor.U("items", {"id": 3, "junk": 1}) == 0
    assert await sor.U("items", {"id": 999, "name": "nobody"}) == 0


async def test_D_by_id_and_tables_without_id(sor) -> None:
    assert await sor.D("items", {"id": 1}) == 1
    assert await sor.D("items", {"id": 1}) == 0
    with pytest.raises(BadQuery, match="has no 'id' column"):
        await sor.D("noid", {"id": 1})
    with pytest.raises(BadQuery, match="'id' is required"):
        await sor.D("items", {})


@pytest.mark.parametrize("value", [{"a": 1}, [1], (1,), {1}, object()])
async def test_values_must_be_single_values(sor, value) -> None:
    with pytest.raises(BadQuery, match="value of 'name' must be a single value"):
        await sor.C("items", {"id": 99, "name": value})
    with pytest.raises(BadQuery):
        await sor.R("items", {"name": value})


async def test_RP_defaults_and_total(sor) -> None:
    page = await sor.RP("items", {"grp": 1, "sort": "id desc", "pagerows": 3, "page": 2})
    assert page.total == 9
    assert [r.id for r in page.rows] == [16, 13, 10]
    assert isinstance(page, DictObject)


async def test_sqlExe_results_and_rowcounts(sor) -> None:
    rows = await sor.sqlExe("SELECT id FROM items WHERE name = ${n}$ OR id = ${i}$", {"n": "item02", "i": 5})
    assert [r.id for r in rows] == [2, 5]
    assert await sor.sqlExe("UPDATE items SET grp = ${g}$ WHERE grp = 0", {"g": 9}) == 8
    # A name missing from the namespace binds NULL, as sqlor did: never text.
    assert await sor.sqlExe("SELECT * FROM items WHERE id = ${missing}$", {}) == []


# ---------------------------------------------------------------- bound queries


def test_select_sql_wraps_sorts_and_windows() -> None:
    sel = Select("SELECT * FROM t WHERE a = ?", [1], ' ORDER BY "a" DESC')
    assert sel.sql() == 'SELECT * FROM (SELECT * FROM t WHERE a = ?) ahcore_q ORDER BY "a" DESC'
    assert sel.sql(10, 20).endswith(' ORDER BY "a" DESC LIMIT 10 OFFSET 20')
    with pytest.raises(ValueError, match="an offset needs a limit"):
        sel.sql(offset=5)


async def test_select_binds_once_and_checks_the_sort_against_result_columns(sor) -> None:
    sel = await sor.select("SELECT id, name FROM items WHERE grp = ${g}$;", {"g": 2}, sort="name desc")
    assert sel.params == [2] and sel.order == ' ORDER BY "name" DESC'
    assert ";" not in sel.text
    with pytest.raises(BadQuery, match="no such column"):
        await sor.select("SELECT id FROM items", {}, sort="grp")  # not a result column
    with pytest.raises(BadQuery):
        await sor.select("SELECT id FROM items", {}, sort="id; DROP TABLE items")


async def test_rows_count_and_has_more_than(sor) -> None:
    sel = await sor.select("SELECT id FROM items WHERE grp = ${g}$", {"g": 0})
    assert await sor.count(sel) == 8
    first = await sor.rows(sel, 3)
    assert [r[0] for r in first.rows] == [3, 6, 9] and first.columns == ["id"]
    assert [r[0] for r in (await sor.rows(sel, 3, offset=6)).rows] == [21, 24]
    assert await sor.has_more_than(sel, 7) is True
    assert await sor.has_more_than(sel, 8) is False
    ordered = await sor.select("SELECT id FROM items WHERE grp = 0", {}, sort="id desc")
    assert [r[0] for r in (await sor.rows(ordered, 2)).rows] == [24, 21]


async def test_query_caps_rows_and_says_when_it_cut(sor) -> None:
    rows, cut = await sor.query("SELECT id FROM items", {}, sort="id", max_rows=10)
    assert len(rows) == 10 and cut is True and rows[-1].id == 10
    rows, cut = await sor.query("SELECT id FROM items", {}, max_rows=25)
    assert len(rows) == 25 and cut is False
    rows, cut = await sor.query("SELECT id FROM items WHERE id < 3", {})
    assert [r.id for r in rows] == [1, 2] and cut is False


async def test_paged_and_sqlPaging(sor) -> None:
    page = await sor.paged("SELECT id, grp FROM items WHERE grp = ${g}$", {"g": 1}, limit=2, offset=2,
                           sort=["id desc"])
    assert page.total == 9 and [r.id for r in page.rows] == [19, 16]
    paging = await sor.sqlPaging("SELECT id FROM items", {"page": 3, "pagerows": 10, "sort": "id"})
    assert paging.total == 25 and [r.id for r in paging.rows] == [21, 22, 23, 24, 25]


async def test_stream_gives_batches_and_the_window(sor) -> None:
    sel = await sor.select("SELECT id FROM items", {}, sort="id")
    async with sor.stream(sel, batch_rows=10) as rows:
        assert rows.columns == ["id"]
        batches = [[r[0] for r in batch] async for batch in rows]
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[0][0] == 1 and batches[-1][-1] == 25
    async with sor.stream(sel, limit=4, offset=20, batch_rows=3) as rows:
        assert [[r[0] for r in b] async for b in rows] == [[21, 22, 23], [24]]
    empty = await sor.select("SELECT id FROM items WHERE id < 0", {})
    async with sor.stream(empty) as rows:
        assert [b async for b in rows] == []


async def test_a_driver_without_stream_is_read_whole_and_batched() -> None:
    stream = _BufferedStream(FetchResult(["x"], [(i,) for i in range(5)]), batch_rows=2)
    assert stream.columns == ["x"]
    assert [len(b) async for b in stream] == [2, 2, 1]
    assert [b async for b in _BufferedStream(FetchResult(["x"], []), 0)] == []


async def test_describe_gives_field_types(sor) -> None:
    await sor.sqlExe("UPDATE items SET price = 1.5, made = '2024-01-02' WHERE id = 1", {})
    fields = {c.name: c.type for c in await sor.describe("SELECT id, name, price, made FROM items", {})}
    assert fields["id"] == "int" and fields["name"] == "str"
    assert set(fields) == {"id", "name", "price", "made"}


async def test_result_columns_are_learnt_once_per_sql_text(sor) -> None:
    text = "SELECT id, name FROM items"
    assert await sor.result_columns(text, []) == ["id", "name"]
    assert sor.schema.result_columns(text) == ["id", "name"]
    assert await sor.order_by(text, [], None) == ""
    assert await sor.order_by(text, [], "") == ""
    assert await sor.order_by(text, [], "name") == ' ORDER BY "name" ASC'
