"""Rows to records: DictObjects whose values :func:`ahcore.jsonutil.dumps` can encode.

Dates, datetimes, decimals and UUIDs are left as Python values (scripts can
compute with them; the JSON encoder turns them into ISO strings and
numbers). Only the types the encoder does not know are converted here:
intervals and MySQL ``TIME`` values (``timedelta``) become ``"[-][D day[s], ]H:MM:SS"``
strings, binary buffers become ``bytes``.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Sequence
from itertools import chain
from typing import Any

import msgspec

from ahcore.dictobject import DictObject


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.timedelta):
        return str(value)
    if isinstance(value, (memoryview, bytearray)):
        return bytes(value)
    return value


_ODD_TYPES = frozenset({datetime.timedelta, memoryview, bytearray})


def _all_plain(rows: Sequence[Sequence[Any]]) -> bool:
    """No value of any row needs :func:`_plain` (one pass in C over every value)."""
    return _ODD_TYPES.isdisjoint(map(type, chain.from_iterable(rows)))


def to_records(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[DictObject]:
    """One :class:`DictObject` per row, keyed by column name."""
    if _all_plain(rows):
        return [DictObject(zip(columns, row, strict=False)) for row in rows]
    odd = _ODD_TYPES.isdisjoint
    records = []
    for row in rows:
        if not odd(map(type, row)):
            row = [_plain(v) for v in row]
        records.append(DictObject(zip(columns, row, strict=False)))
    return records


def row_dicts(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Plain dicts for encoding straight to JSON (no attribute access needed)."""
    if _all_plain(rows):
        return [dict(zip(columns, row, strict=False)) for row in rows]
    odd = _ODD_TYPES.isdisjoint
    return [
        dict(zip(columns, row if odd(map(type, row)) else map(_plain, row), strict=False))
        for row in rows
    ]


@functools.lru_cache(maxsize=256)
def _row_type(columns: tuple[str, ...]) -> type[msgspec.Struct] | None:
    """A msgspec Struct that encodes as a record with keys ``columns``; None for repeated names.

    Field names are ``f0, f1, …`` renamed to the column names, so a name like
    ``count(*)`` or ``class`` is a key as it is (msgspec refuses quotes,
    backslashes and control characters in keys: None, the dict path). A pure function of
    the names, cached: no state of any application.
    """
    if len(set(columns)) != len(columns):
        return None  # a dict keeps one of them; the dict path says which
    fields = [f"f{i}" for i in range(len(columns))]
    try:
        return msgspec.defstruct(
            "Row", [(f, Any) for f in fields], rename=dict(zip(fields, columns, strict=True))
        )
    except (ValueError, TypeError):  # msgspec refuses a quote, backslash or control character
        return None


def row_structs(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Any] | None:
    """Rows as msgspec Structs that encode exactly as :func:`row_dicts`' dicts, or None.

    Building a Struct from a row and encoding it costs a quarter of a dict
    (the keys are encoded once per column set). None when a column name
    repeats, a value needs :func:`_plain`, or a row does not fit the columns:
    use :func:`row_dicts` then.
    """
    row_type = _row_type(tuple(columns))
    if row_type is None or not _all_plain(rows):
        return None
    try:
        return [row_type(*row) for row in rows]
    except TypeError:  # a row longer or shorter than the columns
        return None
