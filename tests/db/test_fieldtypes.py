"""The field-type vocabulary: SQL type names and driver values to one small set of names."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from ahcore.db.fieldtypes import (
    FIELD_TYPES,
    SQLOR_MODEL_TYPES,
    declared_or_value,
    from_sql_name,
    from_value,
    sqlor_model_type,
)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("INTEGER", "int"),
        ("int4", "int"),
        ("BIGINT UNSIGNED", "int"),
        ("unsigned big int", "int"),
        ("VARCHAR(32)", "str"),
        ("character varying", "str"),
        ("NATIVE CHARACTER(70)", "str"),
        ("CLOB", "str"),
        ("NUMERIC(10, 2)", "decimal"),
        ("decimal", "decimal"),
        ("REAL", "float"),
        ("double precision", "float"),
        ("FLOAT", "float"),
        ("DATE", "date"),
        ("DATETIME", "datetime"),
        ("timestamp with time zone", "datetime"),
        ("timestamp(3) without time zone", "datetime"),
        ("TIME", "time"),
        ("BOOLEAN", "bool"),
        ("BLOB", "bytes"),
        ("bytea", "bytes"),
        ("jsonb", "json"),
        ("integer[]", "json"),
        ("", None),
        (None, None),
        ("geometry", None),
    ],
)
def test_sql_type_names(name, kind) -> None:
    assert from_sql_name(name) == kind
    assert kind is None or kind in FIELD_TYPES


@pytest.mark.parametrize(
    "value, kind",
    [
        (None, None),
        (True, "bool"),
        (3, "int"),
        (2.5, "float"),
        (decimal.Decimal("1.5"), "decimal"),
        (datetime.datetime(2024, 1, 2, 3, 4), "datetime"),
        (datetime.date(2024, 1, 2), "date"),
        (datetime.time(3, 4), "time"),
        (b"x", "bytes"),
        (memoryview(b"x"), "bytes"),
        ({"a": 1}, "json"),
        ([1], "json"),
        ("text", "str"),
        (uuid.uuid4(), "str"),
    ],
)
def test_values(value, kind) -> None:
    assert from_value(value) == kind


def test_declared_type_wins_unless_the_value_contradicts_it() -> None:
    assert declared_or_value("date", "str") == "date"  # SQLite keeps dates as text
    assert declared_or_value("decimal", "int") == "decimal"
    assert declared_or_value("date", None) == "date"
    assert declared_or_value("str", "int") == "int"  # an alias that shadows a column name
    assert declared_or_value(None, "float") == "float"
    assert declared_or_value(None, None) == "str"


@pytest.mark.parametrize(
    "name, engine, expected",
    [
        ("VARCHAR(32)", "sqlite", "str"),
        ("TEXT", "sqlite", "str"),  # SQLite's strings are TEXT
        ("text", "mysql", "text"),
        ("longtext", "mysql", "text"),
        ("character varying", "postgres", "str"),
        ("bpchar", "postgres", "char"),
        ("int4", "postgres", "long"),
        ("int unsigned", "mysql", "long"),
        ("smallint", "mysql", "short"),
        ("NUMERIC(10, 2)", "sqlite", "float"),
        ("double precision", "postgres", "float"),
        ("date", "mysql", "date"),
        ("datetime", "mysql", "datetime"),
        ("timestamptz", "postgres", "timestamp"),
        ("bytea", "postgres", "file"),
        ("BLOB", "sqlite", "file"),
        ("UNSIGNED BIG INT", "sqlite", "long"),  # SQLite's affinity rules
        ("NATIVE CHARACTER(70)", "sqlite", "text"),
        ("", "sqlite", "str"),
        ("geometry", "mysql", "str"),
    ],
)
def test_sqlor_model_types(name, engine, expected):
    assert sqlor_model_type(name, engine) == expected
    assert expected in SQLOR_MODEL_TYPES
