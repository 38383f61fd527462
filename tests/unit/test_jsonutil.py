"""ahcore.jsonutil: the JSON every answer and script uses."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import uuid

import pytest

from ahcore.dictobject import DictObject
from ahcore.jsonutil import dumps, json_response


def test_plain_values() -> None:
    assert json.loads(dumps({"a": [1, 2.5, "x", None, True]})) == {"a": [1, 2.5, "x", None, True]}
    assert isinstance(dumps({}), bytes)


def test_dates_and_times_are_iso_strings() -> None:
    value = {
        "d": datetime.date(2024, 2, 29),
        "dt": datetime.datetime(2024, 2, 29, 13, 5, 9),
        "t": datetime.time(7, 30),
    }
    assert json.loads(dumps(value)) == {
        "d": "2024-02-29",
        "dt": "2024-02-29T13:05:09",
        "t": "07:30:00",
    }


def test_decimals_are_numbers_integral_ones_integers() -> None:
    decoded = json.loads(dumps([decimal.Decimal("12.50"), decimal.Decimal("3"), decimal.Decimal("3.0")]))
    assert decoded == [12.5, 3, 3]
    assert isinstance(decoded[1], int)


def test_uuid_set_and_bytes() -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert json.loads(dumps(u)) == "12345678-1234-5678-1234-567812345678"
    assert sorted(json.loads(dumps({1, 2, 3}))) == [1, 2, 3]
    assert json.loads(dumps(frozenset({"a"}))) == ["a"]



def test_bytes_are_base64_and_lossless() -> None:
    # msgspec encodes bytes itself (the enc_hook's bytes branch is never reached):
    # a BLOB column reaches a JSON client intact, whatever its bytes.
    data = bytes(range(256))
    assert base64.b64decode(json.loads(dumps({"b": data}))["b"]) == data


def test_dictobject_encodes_as_an_object() -> None:
    assert json.loads(dumps(DictObject(a=DictObject(b=1)))) == {"a": {"b": 1}}


def test_an_unknown_type_is_an_error_that_names_it() -> None:
    class Thing:
        pass

    # msgspec lets the hook's NotImplementedError through (not a TypeError).
    with pytest.raises(NotImplementedError, match="cannot encode Thing as JSON"):
        dumps({"x": Thing()})


def test_json_response() -> None:
    resp = json_response({"ok": True}, status=201)
    assert resp.status == 201
    assert resp.content_type == "application/json"
    assert resp.charset == "utf-8"
    assert json.loads(resp.body) == {"ok": True}
