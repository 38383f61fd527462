"""``DBFilter`` and ``default_filterjson``: sqlor's JSON filters, with nothing spliced into SQL."""

from __future__ import annotations

import pytest

from ahcore.db.errors import BadQuery
from ahcore.db.filter import DBFilter, default_filterjson

SQLOR_EXAMPLE = {  # the example of sqlor's filter.py
    "AND": [
        {"field": "field1", "op": "=", "var": "name"},
        {"field": "del_flg", "op": "=", "const": "0"},
    ]
}


def test_sqlors_example() -> None:
    ns = {"name": "joe"}
    f = DBFilter(SQLOR_EXAMPLE)
    assert f.gen(ns) == "field1 = ${name}$ AND del_flg = ${filter_const_0}$"
    assert ns == {"name": "joe", "filter_const_0": "0"}
    assert f.consts == {"filter_const_0": "0"}
    assert f.get_variables() == {"name": "field1"}


def test_json_text_nesting_and_missing_variables() -> None:
    f = DBFilter(
        '{"or": [{"field": "a", "op": ">", "var": "lo"},'
        ' {"not": {"field": "t.b", "op": "like", "var": "pat"}},'
        ' {"field": "c", "op": "is null"}]}'
    )
    assert f.gen({"lo": 1, "pat": "%x%"}) == "(a > ${lo}$ OR NOT (t.b LIKE ${pat}$) OR c IS NULL)"
    # An item whose variable is not given is left out (a search form's empty field).
    assert f.gen({"lo": 1}) == "(a > ${lo}$ OR c IS NULL)"
    assert DBFilter({"AND": [{"field": "a", "op": "=", "var": "x"}] * 2}).gen({}) is None


def test_or_is_parenthesised_whatever_its_case() -> None:
    f = DBFilter(
        {
            "AND": [
                {
                    "OR": [
                        {"field": "a", "op": "=", "const": 1},
                        {"field": "b", "op": "=", "const": 2},
                    ]
                },
                {"field": "c", "op": "=", "const": 3},
            ]
        }
    )
    assert f.gen({}) == (
        "(a = ${filter_const_0}$ OR b = ${filter_const_1}$) AND c = ${filter_const_2}$"
    )


@pytest.mark.parametrize(
    "filterjson",
    [
        {"field": "a; drop table tbl1", "op": "=", "const": 1},
        {"field": "a", "op": "= 1 or 1 =", "const": 1},
        {"field": "a", "op": "=", "var": "x}$ or 1=1 --"},
        {"field": "a", "op": "="},  # neither const nor var
        {"field": "(select 1)", "op": "is null"},
        {"AND": [{"field": "a", "op": "=", "const": 1}]},  # a list of one
        {"OR": "a = 1"},
        {"NOT": [{"field": "a", "op": "=", "const": 1}]},
        {"bogus": {"field": "a", "op": "=", "const": 1}},
        "not json",
        "[1, 2]",
    ],
)
def test_anything_but_names_and_operators_is_a_400(filterjson) -> None:
    with pytest.raises(BadQuery) as caught:
        DBFilter(filterjson).gen({"x": 1})
    assert caught.value.status == 400


def test_default_filterjson() -> None:
    fields = ["id", "name", "price"]
    assert default_filterjson(fields, {"page": 1}) is None
    assert default_filterjson(fields, {"name": "a", "page": 1}) == {
        "field": "name",
        "op": "=",
        "var": "name",
    }
    both = default_filterjson(fields, {"name": "a", "id": "b"})
    assert both == {
        "AND": [
            {"field": "name", "op": "=", "var": "name"},
            {"field": "id", "op": "=", "var": "id"},
        ]
    }
    assert DBFilter(both).gen({"name": "a", "id": "b"}) == "name = ${name}$ AND id = ${id}$"


async def test_a_generated_filter_runs_bound_on_every_engine(db_client) -> None:
    client = await db_client()
    async with client.pools.sqlorContext("db1") as sor:
        for i, name in enumerate(["apple", "banana", "cherry"], 1):
            await sor.C("tbl1", {"id": f"r{i}", "field1": i, "name": name})
        ns = {"low": 2, "pat": "%an%'; drop table tbl1; --"}
        where = DBFilter(
            {
                "AND": [
                    {"field": "field1", "op": ">=", "var": "low"},
                    {"OR": [
                        {"field": "name", "op": "like", "var": "pat"},
                        {"field": "name", "op": "=", "const": "cherry"},
                    ]},
                ]
            }
        ).gen(ns)  # fmt: skip
        rows = await sor.sqlExe(f"select id from tbl1 where {where} order by id", ns)
        assert [r.id for r in rows] == ["r3"]  # the hostile pattern matched nothing, as data
        assert len(await sor.R("tbl1", {})) == 3
