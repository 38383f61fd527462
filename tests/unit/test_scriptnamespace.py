"""ScriptNamespace: a script's globals without a copy of the site's names per request."""

from __future__ import annotations

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
    """A script's globals as ``RequestContext.script_namespace`` makes them."""
    cls = script_namespace_class(site)
    ns = cls()
    ns["__builtins__"] = cls.script_builtins
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


def test_class_bodies_eval_and_exec_see_the_same_names_as_the_script() -> None:
    # They look names up with LOAD_NAME, which reads the globals without
    # __missing__: an ahserver script (run with exec() there) may use them.
    site: dict[str, object] = {"uuid": "site uuid", "shared": "site", "int": "site's int"}
    ns = make(site)
    ns["shared"] = "request"
    assert run(ns, "class K:\n    x = uuid\n    y = shared\n    z = len('ab')\nreturn K.x, K.y, K.z") == (
        "site uuid", "request", 2)
    assert run(ns, "return eval('uuid'), eval('shared'), eval('int'), eval('abs(-3)')") == (
        "site uuid", "request", "site's int", 3)
    assert run(ns, "exec('global got\\ngot = uuid')\nreturn got") == "site uuid"
    with pytest.raises(NameError):
        run(ns, "return eval('nope')")
    site["later"] = "added"  # add_globals after start: found without a new class
    assert run(ns, "return eval('later')") == "added"


def test_a_site_name_shadowing_a_builtin_wins_on_every_path() -> None:
    ns = make({"len": "site's len"})
    assert run(ns, "return len, eval('len')") == ("site's len", "site's len")
    assert run(ns, "class K:\n    x = len\nreturn K.x") == "site's len"
