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


# ---------------------------------------------------------------- encode_rows through Structs

_ENCODE_CASES = [
    (["id", "name", "price", "qty"], [(1, "a", 0.5, None), (2, 'é"\\\n', 1e20, -3)]),
    (["count(*)", "a b", "class", "ключ", "x'y"], [(1, 2, 3, 4, 5)]),
    (['q"uote', "back\\slash"], [(1, 2)]),  # names msgspec refuses as keys
    (["d", "dt", "t", "n", "b"], [(datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
                                   datetime.time(1, 2), decimal.Decimal("1.50"), b"raw")]),
    (["a", "a"], [(1, 2)]),  # a repeated name: the dict keeps the last value
    (["td", "mv"], [(datetime.timedelta(days=1), memoryview(b"x"))]),
    (["x"], [(float("nan"),), (2**70,)]),
    (["x", "y"], [(1,)]),  # rows that do not fit the columns
    (["x"], [(1, 2)]),
    (["x"], []),
]


def test_encoded_rows_are_the_bytes_of_the_row_dicts() -> None:
    from ahcore.db.streaming import encode_rows

    for columns, rows in _ENCODE_CASES:
        assert encode_rows(columns, rows) == dumps(row_dicts(columns, rows))[1:-1], columns


def test_rows_become_structs_only_when_they_encode_the_same() -> None:
    from ahcore.db.records import row_structs

    assert row_structs(["id", "count(*)"], [(1, 2)]) is not None
    assert row_structs(["a", "a"], [(1, 2)]) is None
    assert row_structs(['q"uote'], [(1,)]) is None
    assert row_structs(["td"], [(datetime.timedelta(seconds=1),)]) is None
    assert row_structs(["x", "y"], [(1,)]) is None
    # one Struct type per column set, reused
    first = row_structs(["p", "q"], [(1, 2)])
    second = row_structs(("p", "q"), [(3, 4)])
    assert first is not None and second is not None and type(first[0]) is type(second[0])
