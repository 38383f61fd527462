"""``resultFields`` reports each result column's real type, on every engine."""

from __future__ import annotations

import json

import pytest

# MySQL notes "Unknown table" for DROP TABLE IF EXISTS of a missing table.
pytestmark = pytest.mark.filterwarnings("ignore:Unknown table")

TYPES = "sqlds_types"

# Column → (DDL per engine, field type expected). MySQL has no boolean type
# (BOOLEAN is TINYINT(1)), so it reports int there.
COLUMNS = {
    "i": ({"*": "INTEGER"}, "int"),
    "big": ({"*": "BIGINT"}, "int"),
    "s": ({"*": "VARCHAR(20)"}, "str"),
    "t": ({"*": "TEXT"}, "str"),
    "d": ({"*": "DATE"}, "date"),
    "ts": ({"*": "TIMESTAMP", "mysql": "DATETIME"}, "datetime"),
    "tm": ({"*": "TIME"}, "time"),
    "f": ({"*": "DOUBLE PRECISION", "mysql": "DOUBLE"}, "float"),
    "amount": ({"*": "NUMERIC(10, 2)"}, "decimal"),
    "b": ({"*": "BOOLEAN"}, {"mysql": "int"}),
    "bin": ({"*": "BLOB", "postgres": "BYTEA"}, "bytes"),
}
ROW = {
    "i": 1,
    "big": 2**40,
    "s": "x",
    "t": "long text",
    "d": "2024-01-02",
    "ts": "2024-01-02 03:04:05",
    "tm": "03:04:05",
    "f": 1.5,
    "amount": "12.50",
    "b": True,
    "bin": b"\x00\x01",
}


def expected(engine: str, column: str) -> str:
    kind = COLUMNS[column][1]
    return kind.get(engine, "bool") if isinstance(kind, dict) else kind


def sqlds(sql: str, arguments=()) -> str:
    return json.dumps({"sqldesc": {"sql_string": sql, "db": "db1"}, "arguments": list(arguments)})


FILES = {
    "wwwroot/all.sqlds": sqlds(f"select {', '.join(COLUMNS)} from {TYPES}"),
    "wwwroot/computed.sqlds": sqlds(
        f"select count(*) as n, sum(f) as total, max(s) as last_s from {TYPES} where i >= ${{low}}$",
        [{"name": "low", "type": "int"}],
    ),
    "wwwroot/joined.sqlds": sqlds(
        f"select a.i, a.d, b.s from {TYPES} a join {TYPES} b on b.i = a.i"
    ),
}


async def start(db_client, engine, *, with_row: bool):
    client = await db_client(files=FILES, plugins={"sqlds": True})
    ddl = ", ".join(f"{name} {spec.get(engine, spec['*'])}" for name, (spec, _) in COLUMNS.items())
    async with client.pools.sqlorContext("db1") as sor:
        await sor.sqlExe(f"DROP TABLE IF EXISTS {TYPES}", {})
        await sor.sqlExe(f"CREATE TABLE {TYPES} ({ddl})", {})
    client.pools.clear_schema_cache()
    if with_row:
        async with client.pools.sqlorContext("db1") as sor:
            import datetime
            import decimal

            row = dict(ROW)
            row["d"] = datetime.date(2024, 1, 2)
            row["ts"] = datetime.datetime(2024, 1, 2, 3, 4, 5)
            row["tm"] = datetime.time(3, 4, 5)
            row["amount"] = decimal.Decimal("12.50")
            await sor.C(TYPES, row)
    return client


async def fields(client, url):
    resp = await client.get(url)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert all(f["label"] == f["name"] for f in data)
    return {f["name"]: f["type"] for f in data}


@pytest.mark.parametrize("with_row", [True, False], ids=["row", "empty"])
async def test_result_fields_report_real_types(db_client, engine, with_row) -> None:
    client = await start(db_client, engine, with_row=with_row)
    got = await fields(client, "/all.sqlds?action=resultFields")
    assert list(got) == list(COLUMNS)
    assert got == {c: expected(engine, c) for c in COLUMNS}
    got = await fields(client, "/joined.sqlds?action=resultFields")
    assert got == {"i": "int", "d": "date", "s": "str"}


async def test_result_fields_of_computed_columns(db_client, engine) -> None:
    client = await start(db_client, engine, with_row=True)
    got = await fields(client, "/computed.sqlds?action=resultFields&low=0")
    assert got["n"] == "int"
    assert got["total"] in ("float", "decimal")  # engines widen a sum differently
    # SQLite knows no type for an expression: the value's, else the column of that name.
    assert got["last_s"] == "str"
    # A missing argument binds NULL: still described (no row on SQLite).
    got = await fields(client, "/computed.sqlds?action=resultFields")
    assert got["n"] == "int"
