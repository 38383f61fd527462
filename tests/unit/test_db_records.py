"""ahcore.db.records: database rows as records the JSON encoder can write."""

from __future__ import annotations

import datetime
import decimal
import json

from ahcore.db.records import row_dicts, to_records
from ahcore.dictobject import DictObject
from ahcore.jsonutil import dumps


def test_records_are_dictobjects_keyed_by_column() -> None:
    records = to_records(["id", "name"], [(1, "apple"), (2, None)])
    assert records == [{"id": 1, "name": "apple"}, {"id": 2, "name": None}]
    assert all(isinstance(r, DictObject) for r in records)
    assert records[0].name == "apple"
    assert to_records(["id"], []) == []


def test_values_the_encoder_knows_are_left_as_python_values() -> None:
    d, dt, n = datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4), decimal.Decimal("1.50")
    [record] = to_records(["d", "dt", "n"], [(d, dt, n)])
    assert record.d is d and record.dt is dt and record.n is n  # scripts compute with them


def test_intervals_and_buffers_are_converted() -> None:
    rows = [(datetime.timedelta(days=1, hours=2, minutes=3, seconds=4), memoryview(b"ab"), bytearray(b"c")),
            (datetime.timedelta(seconds=-1), b"raw", None)]
    first, second = to_records(["t", "m", "b"], rows)
    assert first == {"t": "1 day, 2:03:04", "m": b"ab", "b": b"c"}
    assert type(first.m) is bytes and type(first.b) is bytes
    assert second == {"t": "-1 day, 23:59:59", "m": b"raw", "b": None}
    json.loads(dumps(first))  # encodable now


def test_row_dicts_are_plain_dicts_with_the_same_conversions() -> None:
    rows = row_dicts(["a", "t"], [(1, datetime.timedelta(hours=1)), (2, None)])
    assert rows == [{"a": 1, "t": "1:00:00"}, {"a": 2, "t": None}]
    assert all(type(r) is dict for r in rows)


def test_a_short_row_is_cut_to_its_values_not_an_error() -> None:
    assert to_records(["a", "b"], [(1,)]) == [{"a": 1}]
