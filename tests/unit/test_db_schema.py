"""ahcore.db.schema: only names found in the database ever reach SQL text."""

from __future__ import annotations

import pytest

from ahcore.db.driver import ColumnInfo
from ahcore.db.errors import BadQuery
from ahcore.db.schema import SchemaCache, TableInfo


class FakeConnection:
    """Answers table_columns from a dict, counting the lookups."""

    def __init__(self, tables: dict[str, list[str]]) -> None:
        self.tables = tables
        self.lookups: list[str] = []

    async def table_columns(self, name: str):
        self.lookups.append(name)
        for real, columns in self.tables.items():
            if real.lower() == name.lower():
                return real, [ColumnInfo(c, "TEXT") for c in columns]
        return None


def test_table_info_finds_columns_in_any_case() -> None:
    info = TableInfo.make("Orders", [ColumnInfo("ID"), ColumnInfo("custName")])
    assert info.column("id") == "ID" and info.column("CUSTNAME") == "custName"
    assert info.column("missing") is None
    assert info.column(3) is None  # type: ignore[arg-type]
    assert info.names == ["ID", "custName"]


async def test_a_found_table_is_cached_by_lower_case_name() -> None:
    conn = FakeConnection({"Orders": ["id", "total"]})
    cache = SchemaCache()
    info = await cache.table(conn, "orders")
    assert info.name == "Orders" and info.names == ["id", "total"]
    assert await cache.table(conn, "ORDERS") is info
    assert conn.lookups == ["orders"]
    cache.clear()
    await cache.table(conn, "orders")
    assert len(conn.lookups) == 2


async def test_a_missing_table_is_400_and_not_cached() -> None:
    conn = FakeConnection({})
    cache = SchemaCache()
    with pytest.raises(BadQuery, match="no such table 'later'"):
        await cache.table(conn, "later")
    conn.tables["later"] = ["id"]  # created meanwhile: seen at once
    assert (await cache.table(conn, "later")).names == ["id"]


async def test_a_table_without_columns_counts_as_missing() -> None:
    conn = FakeConnection({"empty": []})
    with pytest.raises(BadQuery, match="no such table"):
        await SchemaCache().table(conn, "empty")


@pytest.mark.parametrize(
    "name",
    ["t; drop table x", "t--", 't"', "1t", "", "a.b", "t x", "ta\u0301ble", "t\x00", None, 5, "x" * 500 + ";"],
)
async def test_a_name_that_is_no_identifier_is_refused_before_the_database_is_asked(name) -> None:
    conn = FakeConnection({})
    with pytest.raises(BadQuery) as info:
        await SchemaCache().table(conn, name)
    assert conn.lookups == []
    assert len(info.value.message) < 90  # the hostile name is cut, not echoed whole


def test_result_columns_are_an_lru_of_512() -> None:
    cache = SchemaCache()
    for i in range(512):
        cache.remember_result_columns(f"q{i}", [f"c{i}"])
    assert cache.result_columns("q0") == ["c0"]  # used: now the newest
    cache.remember_result_columns("q512", ["c512"])
    assert cache.result_columns("q1") is None  # the oldest went
    assert cache.result_columns("q0") == ["c0"]
    assert cache.result_columns("never") is None
    cache.clear()
    assert cache.result_columns("q0") is None
