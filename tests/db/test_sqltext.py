"""SQL text helpers: placeholders become parameters, sorts are checked, kinds are told apart."""

from __future__ import annotations

import pytest

from ahcore.db.driver import Dialect
from ahcore.db.errors import BadQuery
from ahcore.db.sqltext import bind, is_query, page_window, parse_sort, placeholder_names

QMARK = Dialect("sqlite", "qmark", '"')
FORMAT = Dialect("mysql", "format", "`")


def test_bind_qmark_and_format() -> None:
    sql = "select * from t where a = ${a}$ and b like 'x%' and c = ${a}$ and d = ${missing}$"
    assert bind(sql, {"a": 1}, QMARK) == (
        "select * from t where a = ? and b like 'x%' and c = ? and d = ?",
        [1, 1, None],
    )
    assert bind(sql, {"a": 1}, FORMAT) == (
        "select * from t where a = %s and b like 'x%%' and c = %s and d = %s",
        [1, 1, None],
    )


def test_placeholder_values_never_reach_the_text() -> None:
    text, params = bind("select ${x}$", {"x": "1; drop table t"}, QMARK)
    assert text == "select ?" and params == ["1; drop table t"]
    assert placeholder_names("${a}$ ${b}$ ${a}$ ${not valid}$") == ["a", "b"]


@pytest.mark.parametrize(
    "sort, expected",
    [
        ("price desc,id", '"price" DESC, "id" ASC'),
        (["Price DESC", "id asc"], '"price" DESC, "id" ASC'),
        (["price desc,id"], '"price" DESC, "id" ASC'),
        ("", ""),
        (None, ""),
    ],
)
def test_parse_sort(sort, expected) -> None:
    assert parse_sort(sort, ["id", "price"], QMARK) == expected


@pytest.mark.parametrize(
    "sort",
    ["id;drop", "id desc desc", "1", "id--", "nosuch", "id collate x", 5, {"id": "asc"}, [1]],
)
def test_parse_sort_refuses(sort) -> None:
    with pytest.raises(BadQuery):
        parse_sort(sort, ["id", "price"], QMARK)


@pytest.mark.parametrize(
    "sql",
    [
        "  -- comment\n /* c */ (SELECT 1)",
        "with x as (select 1) select * from x",
        "with x as (select 1 as one) select one from x where 1 = 0 union all select 1 from t",
        "select id from t where a >= ${low}$;",
        "select 'a; delete' as x",
        "select $$ ; delete $$ as x",
        "select $q$ ) delete $q$ as x",
        'select "into", `delete` from t',
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        "with a as materialized (select 1), b(x) as not materialized (select 2) select * from a, b",
        "with recursive t(n) as (select 1) search depth first by n set o select * from t",
        "explain select 1",
        "EXPLAIN FORMAT=JSON SELECT 1",
        "explain (analyze, format json) select 1",
        "EXPLAIN QUERY PLAN SELECT * FROM t",
        "explain t",
        "pragma table_info(t)",
        "values (1), (2)",
        "table t",
        "show tables",
        "select 1 /* ; delete */",
        "select replace(name, 'a', 'b') from t",
    ],
)
def test_is_query_reads(sql: str) -> None:
    assert is_query(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "delete from t",
        "/* select */ update t set a = 1",
        "WITH x AS (SELECT 1 AS one) DELETE FROM t",
        "-- first\nWITH RECURSIVE x(n) AS (SELECT 1) UPDATE t SET name = 'gone'",
        "with x as (select ')' as p, 'with' as w) delete from t",
        'WITH "a)b" AS (SELECT 1) DELETE FROM t',
        "with d as (delete from t returning id) select id from d",
        "with x as (select 1), y as (insert into t values (1) returning *) select 1",
        "select id from t; delete from t",
        "select 1;; select 2",
        "EXPLAIN ANALYZE DELETE FROM t",
        "explain (analyze) delete from t",
        "EXPLAIN FORMAT=JSON DELETE FROM t",
        "(WITH x AS (SELECT 1) DELETE FROM t)",
        "select * into t2 from t",
        "select * from t into outfile '/tmp/x'",
        "pragma query_only = 0",
        "insert into t select 1",
        "create table t2 as select 1",
        "analyze delete from t",
        "",
        "with x as",
        "with x as (select 1)",
    ],
)
def test_is_query_refuses_what_writes_or_is_not_one_query(sql: str) -> None:
    assert not is_query(sql)


def test_page_window() -> None:
    assert page_window({}) == (80, 0)
    assert page_window({"page": "3", "pagerows": "10"}) == (10, 20)
    assert page_window({"pagerows": 10**9}) == (1000, 0)
    with pytest.raises(BadQuery):
        page_window({"page": "2.5"})
    # A page past any database's 64-bit OFFSET is a 400, not the driver's 500.
    assert page_window({"page": 2**31 - 1, "pagerows": 1000})[1] == (2**31 - 2) * 1000
    for page in (2**31, "99999999999999999999", "9" * 5000):
        with pytest.raises(BadQuery, match="page must be"):
            page_window({"page": page})


@pytest.mark.parametrize("paramstyle", ["qmark", "format"])
@pytest.mark.parametrize(
    "sql",
    ["select 1", "select * from t where a = ${a}$ and b like '%x' and c = ${a}$ or d = ${b_2}$"],
)
def test_prepare_is_bind_split_into_what_the_text_decides_and_the_values(paramstyle, sql) -> None:
    """sqlor keeps ``prepare``'s result per statement text: it must bind exactly as ``bind``."""
    from ahcore.db.driver import Dialect
    from ahcore.db.sqltext import bind, prepare

    dialect = Dialect("x", paramstyle, '"')
    ns = {"a": 1, "b_2": "two", "unused": 3}
    text, names = prepare(sql, dialect)
    assert (text, [ns.get(n) for n in names]) == bind(sql, ns, dialect)
