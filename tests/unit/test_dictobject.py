"""ahcore.dictobject: the dict with attribute access that ahserver scripts expect."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from ahcore.dictobject import DictObject


def test_keys_are_attributes_both_ways() -> None:
    d = DictObject(name="apple", price=3)
    assert d.name == "apple" and d["price"] == 3
    d.colour = "red"
    assert d["colour"] == "red"
    d["size"] = 2
    assert d.size == 2


def test_a_missing_attribute_is_none_not_an_error() -> None:
    d = DictObject()
    assert d.page is None
    assert "page" not in d  # reading does not create the key


def test_dunder_names_are_not_keys() -> None:
    d = DictObject(__class__="x")
    # Protocol lookups (copy, pickle, hasattr) must not see keys or None.
    assert d.__class__ is DictObject
    with pytest.raises(AttributeError):
        d.__nonexistent__  # noqa: B018
    assert not hasattr(d, "__getstate_missing__")


def test_delete_attribute() -> None:
    d = DictObject(a=1)
    del d.a
    assert "a" not in d
    with pytest.raises(AttributeError, match="a"):
        del d.a


def test_nested_plain_dicts_read_as_dictobjects() -> None:
    d = DictObject(user={"name": "ann", "org": {"id": 7}})
    assert d.user.name == "ann"
    assert d.user.org.id == 7
    assert isinstance(d.user, DictObject)


def test_nested_attribute_writes_persist() -> None:
    d = DictObject(user={"name": "ann"})
    user = d.user
    user.name = "bob"
    assert d["user"]["name"] == "bob", "a write through the nested view must reach the dict"


def test_copy_is_a_dictobject_and_shallow() -> None:
    inner = [1]
    d = DictObject(a=inner)
    c = d.copy()
    assert isinstance(c, DictObject) and c == d and c is not d
    c.b = 2
    assert "b" not in d
    assert c.a is inner


def test_json_copy_and_pickle_round_trip() -> None:
    d = DictObject(a=1, b=[1, 2])
    assert json.loads(json.dumps(d)) == {"a": 1, "b": [1, 2]}
    assert copy.deepcopy(d) == d and isinstance(copy.deepcopy(d), DictObject)
    assert pickle.loads(pickle.dumps(d)) == d


def test_no_instance_dict() -> None:
    # __slots__ = (): every attribute is a key, never a hidden instance attribute.
    d = DictObject()
    d.x = 1
    assert not hasattr(d, "__dict__") or d.__dict__ == {}
    assert d == {"x": 1}
