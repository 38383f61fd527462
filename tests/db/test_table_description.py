"""``sor.tables()`` and ``sor.I(table)``: sqlor's table listing and description, on every engine."""

from __future__ import annotations

import pytest

from ahcore.db.errors import BadQuery

# A table with a composite primary key, a unique and a plain two-column index.
ORDERS = {
    "sqlite": """CREATE TABLE orders (
        shop VARCHAR(10) NOT NULL,
        num INTEGER NOT NULL,
        note TEXT,
        amount NUMERIC(12, 3),
        placed DATE,
        PRIMARY KEY (shop, num))""",
    "postgres": """CREATE TABLE orders (
        shop VARCHAR(10) NOT NULL,
        num INTEGER NOT NULL,
        note TEXT,
        amount NUMERIC(12, 3),
        placed DATE,
        PRIMARY KEY (shop, num))""",
    "mysql": """CREATE TABLE orders (
        shop VARCHAR(10) NOT NULL COMMENT 'Shop code',
        num INTEGER NOT NULL,
        note TEXT,
        amount NUMERIC(12, 3),
        placed DATE,
        PRIMARY KEY (shop, num)) COMMENT 'Customer orders'""",
}
INDEXES = [
    "CREATE UNIQUE INDEX orders_note_u ON orders (note{len})",
    "CREATE INDEX orders_placed_amount ON orders (placed, amount)",
]


async def make_orders(pools, engine: str) -> None:
    async with pools.sqlorContext("db1") as sor:
        await sor.sqlExe("DROP TABLE IF EXISTS orders", {})
        await sor.sqlExe(ORDERS[engine], {})
        for sql in INDEXES:
            # MySQL indexes a TEXT column by a prefix only.
            await sor.sqlExe(sql.format(len="(20)" if engine == "mysql" else ""), {})
        if engine == "postgres":
            await sor.sqlExe("COMMENT ON TABLE orders IS 'Customer orders'", {})
            await sor.sqlExe("COMMENT ON COLUMN orders.shop IS 'Shop code'", {})


async def test_tables_lists_the_base_tables(db_client, engine) -> None:
    client = await db_client()
    await make_orders(client.pools, engine)
    async with client.pools.sqlorContext("db1") as sor:
        await sor.sqlExe("DROP VIEW IF EXISTS cheap", {})
        await sor.sqlExe("CREATE VIEW cheap AS SELECT id FROM tbl1 WHERE price < 1", {})
        tables = await sor.tables()
        await sor.sqlExe("DROP VIEW cheap", {})
    by_name = {t.name: t for t in tables}
    assert {"tbl1", "orders"} <= set(by_name)
    assert "cheap" not in by_name  # views are not tables
    assert all(set(t) == {"name", "title"} for t in tables)
    assert by_name["tbl1"].title == "tbl1"  # no comment: the name
    if engine != "sqlite":  # SQLite has no table comments
        assert by_name["orders"].title == "Customer orders"


async def test_I_describes_columns_keys_and_indexes(db_client, engine) -> None:
    client = await db_client()
    await make_orders(client.pools, engine)
    async with client.pools.sqlorContext("db1") as sor:
        desc = await sor.I("ORDERS")  # any case, as for C/R/U/D
    assert set(desc) == {"summary", "fields", "indexes"}
    summary = desc.summary[0]
    assert summary.name == "orders"
    assert summary.primary == ["shop", "num"]
    assert summary.title == ("orders" if engine == "sqlite" else "Customer orders")

    fields = {f.name: f for f in desc.fields}
    assert [f.name for f in desc.fields] == ["shop", "num", "note", "amount", "placed"]
    assert all(
        set(f) == {"name", "title", "type", "length", "dec", "nullable"} for f in desc.fields
    )
    assert fields["shop"].type == "str" and fields["shop"].length == 10
    assert fields["num"].type == "long"
    assert fields["note"].type == ("str" if engine == "sqlite" else "text")
    assert fields["amount"].type == "float"
    assert (fields["amount"].length, fields["amount"].dec) == (12, 3)
    assert fields["placed"].type == "date"
    assert fields["shop"].nullable == "no" and fields["note"].nullable == "yes"
    assert fields["num"].title == "num"
    if engine != "sqlite":
        assert fields["shop"].title == "Shop code"

    indexes = {i.name: i for i in desc.indexes}
    assert set(indexes) == {"orders_note_u", "orders_placed_amount"}  # not the primary key's
    assert indexes["orders_note_u"].idxtype == "unique"
    assert indexes["orders_placed_amount"].idxtype == "index"
    assert indexes["orders_placed_amount"].idxfields == ["placed", "amount"]


async def test_I_of_a_table_with_an_id_key(db_client) -> None:
    client = await db_client()
    async with client.pools.sqlorContext("db1") as sor:
        desc = await sor.I("tbl1")
    assert desc.summary[0].primary == ["id"]
    assert desc.indexes == []
    assert [(f.name, f.type) for f in desc.fields] == [
        ("id", "str"), ("field1", "long"), ("name", "str"), ("price", "float"), ("created", "date"),
    ]  # fmt: skip


@pytest.mark.parametrize("table", ["no_such_table", "tbl1; drop table tbl1", "", None])
async def test_I_refuses_unknown_and_bad_names(db_client, table) -> None:
    client = await db_client()
    async with client.pools.sqlorContext("db1") as sor:
        with pytest.raises(BadQuery):
            await sor.I(table)
        assert [f.name for f in (await sor.I("tbl1")).fields][0] == "id"  # nothing dropped


async def test_tables_and_I_from_a_script(db_client) -> None:
    pytest.importorskip("ahcore_dspy")
    client = await db_client(
        files={
            "wwwroot/t.dspy": (
                "async with DBPools().sqlorContext('db1') as sor:\n"
                "    names = [t.name for t in await sor.tables()]\n"
                "    desc = await sor.I('tbl1')\n"
                "return {'has': 'tbl1' in names, 'key': desc.summary[0].primary}\n"
            )
        },
        plugins={"dspy": True},
    )
    r = await client.get("/t.dspy")
    assert r.status == 200
    assert await r.json() == {"has": True, "key": ["id"]}


class _BasicConnection:
    """A driver connection with only the basic contract (no list_tables/describe_table)."""

    from ahcore.db.sqlite import SQLITE as dialect

    async def table_columns(self, table):
        from ahcore.db.driver import ColumnInfo

        if table.lower() != "things":
            return None
        return "Things", [ColumnInfo("ID", "INTEGER"), ColumnInfo("Label", "VARCHAR(20)")]


async def test_a_driver_without_the_schema_calls() -> None:
    from ahcore.db.schema import SchemaCache
    from ahcore.db.sqlor import SQLor

    sor = SQLor(_BasicConnection(), SchemaCache())
    desc = await sor.I("things")
    assert desc.summary == [{"name": "things", "title": "things", "primary": []}]
    assert [(f.name, f.type, f.nullable) for f in desc.fields] == [
        ("id", "long", "yes"),
        ("label", "str", "yes"),
    ]
    with pytest.raises(NotImplementedError, match="list_tables"):
        await sor.tables()
