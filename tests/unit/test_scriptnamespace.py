"""ScriptNamespace: a script's globals without a copy of the site's names per request."""

from __future__ import annotations

import builtins
import types

import pytest

from ahcore.dictobject import DictObject
from ahcore.scriptnamespace import script_namespace_class


def run(ns: DictObject, source: str) -> object:
    """Run ``source`` as the body of a function whose globals are ``ns`` (as .dspy does)."""
    code = compile("def f():\n" + "".join(f"    {line}\n" for line in source.splitlines()), "t", "exec")
    holder: dict[str, object] = {}
    exec(code, holder)
    function = holder["f"]
    assert isinstance(function, types.FunctionType)
    return types.FunctionType(function.__code__, ns)()


def make(site: dict[str, object]) -> DictObject:
    ns = script_namespace_class(site)()
    ns["__builtins__"] = builtins
    return ns


def test_lookups_find_the_request_names_then_the_site_names_then_builtins() -> None:
    site: dict[str, object] = {"configValue": "site", "shared": "site", "len": "site's len"}
    ns = make(site)
    ns["shared"] = "request"
    assert ns["configValue"] == "site" and ns["shared"] == "request"
    assert ns.get("configValue") == "site" and ns.configValue == "site"
    assert "configValue" in ns and "nope" not in ns and ns.get("nope", 7) == 7
    assert ns.nope is None  # DictObject: a missing attribute is None
    with pytest.raises(KeyError):
        ns["nope"]
    # A script's global lookups: request name, site name (over a builtin), builtin.
    assert run(ns, "return shared, configValue, len, abs(-2)") == ("request", "site", "site's len", 2)
    with pytest.raises(NameError):
        run(ns, "return nope")


def test_the_site_names_are_live_and_never_written() -> None:
    site: dict[str, object] = {"a": 1}
    ns = make(site)
    site["b"] = 2  # add_globals changes the site's namespace in place
    assert ns["b"] == 2 and run(ns, "return b") == 2
    run(ns, "global a\na = 10")  # a script's global goes to the request's own names
    assert ns["a"] == 10 and site["a"] == 1


def test_iteration_lists_the_request_names_and_copy_gives_everything() -> None:
    site: dict[str, object] = {"a": 1, "b": 2}
    ns = make(site)
    ns["b"] = 20
    ns["params_kw"] = DictObject()
    assert set(ns) == {"__builtins__", "b", "params_kw"}
    full = ns.copy()
    assert type(full) is DictObject
    assert full["a"] == 1 and full["b"] == 20 and "params_kw" in full


def test_each_site_namespace_has_its_own_class() -> None:
    one, two = script_namespace_class({"x": 1}), script_namespace_class({"x": 2})
    assert one() is not two() and one()["x"] == 1 and two()["x"] == 2
