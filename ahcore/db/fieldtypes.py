"""The field types of query results, in one small vocabulary for every engine.

``resultFields`` (and :meth:`ahcore.db.driver.Connection.describe`) report a
result column's type with the names ``.sqlds`` arguments already use:

=============  ===========================================================
``str``        text of any kind, and anything without a better name
               (uuid, enum, interval, MySQL ``JSON`` text, …)
``int``        integers of any size (also MySQL ``YEAR``)
``float``      binary floating point (``real``, ``double``)
``decimal``    exact numbers (``numeric``, ``decimal``, ``money``)
``bool``       booleans
``date``       a day
``datetime``   a moment (``timestamp`` with or without zone)
``time``       a time of day
``bytes``      binary data (``bytea``, ``blob``, ``varbinary``, ``bit``)
``json``       a JSON object or array (PostgreSQL ``json``/``jsonb``, arrays)
=============  ===========================================================

Drivers map their own codes (PostgreSQL type names, MySQL field types,
SQLite declared types) through :func:`from_sql_name` and
:func:`from_value`.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

FIELD_TYPES = (
    "str",
    "int",
    "float",
    "decimal",
    "bool",
    "date",
    "datetime",
    "time",
    "bytes",
    "json",
)

# Exact type names (lower case, without size or precision) → field type.
_NAMES: dict[str, str] = {
    # integers
    "int": "int",
    "integer": "int",
    "int2": "int",
    "int4": "int",
    "int8": "int",
    "smallint": "int",
    "bigint": "int",
    "tinyint": "int",
    "mediumint": "int",
    "serial": "int",
    "bigserial": "int",
    "smallserial": "int",
    "oid": "int",
    "year": "int",
    # floating point
    "float": "float",
    "float4": "float",
    "float8": "float",
    "real": "float",
    "double": "float",
    "double precision": "float",
    # exact numbers
    "numeric": "decimal",
    "decimal": "decimal",
    "money": "decimal",
    "number": "decimal",
    # booleans
    "bool": "bool",
    "boolean": "bool",
    # days and times
    "date": "date",
    "datetime": "datetime",
    "timestamp": "datetime",
    "timestamptz": "datetime",
    "timestamp without time zone": "datetime",
    "timestamp with time zone": "datetime",
    "time": "time",
    "timetz": "time",
    "time without time zone": "time",
    "time with time zone": "time",
    # binary
    "bytea": "bytes",
    "blob": "bytes",
    "tinyblob": "bytes",
    "mediumblob": "bytes",
    "longblob": "bytes",
    "binary": "bytes",
    "varbinary": "bytes",
    "bit": "bytes",
    # structured
    "json": "json",
    "jsonb": "json",
}


def from_sql_name(name: str | None) -> str | None:
    """The field type of a SQL type name (``VARCHAR(32)``, ``int4``, ``NUMERIC(10,2)``).

    Exact names first, then SQLite's affinity rules (a name containing
    ``INT`` is an integer, ``CHAR``/``CLOB``/``TEXT`` text, ``REAL``/``FLOA``/
    ``DOUB`` floating point). ``None`` when the name says nothing (an empty
    declared type, an unknown name).
    """
    if not name:
        return None
    if name.split("(", 1)[0].strip().endswith("[]"):
        return "json"
    base = _base_name(name)
    found = _NAMES.get(base)
    if found is not None:
        return found
    by_affinity = _affinity(base, ("int", "str", "float"))
    if by_affinity is not None:
        return by_affinity
    if base.startswith("timestamp"):
        return "datetime"
    return None


def _base_name(name: str) -> str:
    """``VARCHAR(32)`` → ``varchar``, ``INT UNSIGNED`` → ``int``: the name to look up."""
    base = name.split("(", 1)[0].strip().lower()
    if base.endswith(" unsigned"):
        base = base[: -len(" unsigned")].strip()
    return base


def _affinity(base: str, kinds: tuple[str, str, str]) -> str | None:
    """SQLite's affinity rules: ``kinds`` names the integer, text and floating-point types."""
    integer, text, floating = kinds
    if "int" in base:
        return integer
    if "char" in base or "clob" in base or "text" in base:
        return text
    if "real" in base or "floa" in base or "doub" in base:
        return floating
    return None


def from_value(value: Any) -> str | None:
    """The field type a Python value from a driver suggests; ``None`` for ``None``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, datetime.datetime):
        return "datetime"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(value, (dict, list)):
        return "json"
    return "str"


# Which value types a declared type can hold (SQLite stores any value anywhere:
# a DATE column holds text, a NUMERIC one integers and reals).
_HOLDS: dict[str, frozenset[str]] = {
    "str": frozenset({"str"}),
    "int": frozenset({"int"}),
    "float": frozenset({"float", "int"}),
    "decimal": frozenset({"int", "float", "str"}),
    "bool": frozenset({"int", "bool"}),
    "date": frozenset({"str"}),
    "datetime": frozenset({"str", "int", "float"}),
    "time": frozenset({"str"}),
    "bytes": frozenset({"bytes"}),
    "json": frozenset({"str"}),
}


def declared_or_value(declared: str | None, value_type: str | None) -> str:
    """SQLite's answer: the declared type unless the value contradicts it, else the value's."""
    if declared is not None and (value_type is None or value_type in _HOLDS[declared]):
        return declared
    return value_type or "str"


# ---------------------------------------------------------------- sqlor's model types
#
# ``sor.I(table)`` describes columns with the *model* type names of sqlor
# (ahserver's data layer), which UIs built for ahserver pick widgets by:
# ``str`` (sized text), ``char`` (fixed text), ``text`` (long text),
# ``short``/``long`` (integers), ``float`` (any non-integer number), ``date``,
# ``time``, ``datetime``, ``timestamp`` and ``file`` (binary). sqlor kept one
# table per engine, each with gaps (PostgreSQL's ``int4`` was "unknown"); this
# is one table for every engine.

SQLOR_MODEL_TYPES = (
    "str", "char", "text", "short", "long", "float",
    "date", "time", "datetime", "timestamp", "file",
)  # fmt: skip

_MODEL_NAMES: dict[str, str] = {
    **dict.fromkeys(
        ("varchar", "character varying", "nvarchar", "varchar2", "nvarchar2", "string",
         "uuid", "enum", "set", "inet", "cidr", "interval"), "str"),
    **dict.fromkeys(("char", "character", "bpchar", "nchar"), "char"),
    **dict.fromkeys(
        ("text", "tinytext", "mediumtext", "longtext", "clob", "json", "jsonb", "xml"), "text"),
    **dict.fromkeys(
        ("tinyint", "smallint", "int2", "smallserial", "year", "bool", "boolean", "bit"), "short"),
    **dict.fromkeys(
        ("int", "integer", "mediumint", "bigint", "int4", "int8", "serial", "bigserial"), "long"),
    **dict.fromkeys(
        ("decimal", "numeric", "number", "money", "real", "double", "double precision",
         "float", "float4", "float8"), "float"),
    "date": "date",
    **dict.fromkeys(("time", "timetz", "time without time zone", "time with time zone"), "time"),
    "datetime": "datetime",
    **dict.fromkeys(
        ("timestamp", "timestamptz", "timestamp without time zone", "timestamp with time zone"),
        "timestamp"),
    **dict.fromkeys(
        ("blob", "tinyblob", "mediumblob", "longblob", "bytea", "binary", "varbinary"), "file"),
}  # fmt: skip

# Where an engine's own habit differs: SQLite declares every string TEXT.
_MODEL_BY_ENGINE: dict[str, dict[str, str]] = {"sqlite": {"text": "str"}}


def sqlor_model_type(name: str | None, engine: str = "") -> str:
    """sqlor's model type for an engine type name (``VARCHAR(32)`` → ``str``).

    Unknown names fall back on SQLite's affinity rules (``…INT…`` → ``long``,
    ``…CHAR…``/``…TEXT…`` → ``text``, ``…REAL…``/``…FLOA…``/``…DOUB…`` →
    ``float``), and then on ``str``.
    """
    base = _base_name(name or "")
    found = _MODEL_BY_ENGINE.get(engine, {}).get(base) or _MODEL_NAMES.get(base)
    if found is not None:
        return found
    return _affinity(base, ("long", "text", "float")) or "str"
