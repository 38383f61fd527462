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


def test_is_query() -> None:
    assert is_query("  -- comment\n /* c */ (SELECT 1)")
    assert is_query("with x as (select 1) select * from x")
    assert not is_query("delete from t")
    assert not is_query("/* select */ update t set a = 1")


def test_page_window() -> None:
    assert page_window({}) == (80, 0)
    assert page_window({"page": "3", "pagerows": "10"}) == (10, 20)
    assert page_window({"pagerows": 10**9}) == (1000, 0)
    with pytest.raises(BadQuery):
        page_window({"page": "2.5"})
