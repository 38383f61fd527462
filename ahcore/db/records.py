"""Rows to records: DictObjects whose values :func:`ahcore.jsonutil.dumps` can encode.

Dates, datetimes, decimals and UUIDs are left as Python values (scripts can
compute with them; the JSON encoder turns them into ISO strings and
numbers). Only the types the encoder does not know are converted here:
intervals and MySQL ``TIME`` values (``timedelta``) become ``"[-][D day[s], ]H:MM:SS"``
strings, binary buffers become ``bytes``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from itertools import chain
from typing import Any

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
