"""ahcore.functions: the function registry and route matching, called directly.

Function routes through a running site are tested in ``tests/test_functions.py``.
"""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from ahcore.config import StartswithConfig
from ahcore.functions import (
    FUNCTIONS_KEY,
    FunctionRegistry,
    RegisteredFunction,
    install_registry,
    match_route,
    path_arguments,
    register_function,
    registered_function,
    registry_of,
    report_unregistered,
    send_upload,
)


def route(leading: str, fn: str = "f") -> StartswithConfig:
    return StartswithConfig(leading=leading, registerfunction=fn)


def test_match_route_is_a_plain_prefix_first_entry_first() -> None:
    routes = [route("/api/x", "x"), route("/api/", "api"), route("", "never")]
    assert match_route(routes, "/api/x").registerfunction == "x"
    assert match_route(routes, "/api/xyz").registerfunction == "x"  # as ahserver: a string prefix
    assert match_route(routes, "/api/y").registerfunction == "api"
    assert match_route(routes, "/other") is None  # an empty leading never matches
    assert match_route([], "/api") is None


@pytest.mark.parametrize(
    ("path", "leading", "args"),
    [
        ("/api/orders", "/api/orders", []),
        ("/api/orders/", "/api/orders", [""]),
        ("/api/orders/12/lines", "/api/orders", ["12", "lines"]),
        ("/api/orders/12/lines", "/api/orders/", ["12", "lines"]),
        ("/api/xyz", "/api/x", ["yz"]),
        ("/api/o//p", "/api", ["o", "", "p"]),
    ],
)
def test_path_arguments(path, leading, args) -> None:
    assert path_arguments(path, leading) == args


def test_registered_function_works_out_its_keywords_once() -> None:
    def named(request, params_kw, item, *, entire_url=None, configValue=None):
        pass

    def everything(request, params_kw, *args, **kwargs):
        pass

    r = RegisteredFunction.make("named", named)
    assert r.keywords == frozenset({"request", "params_kw", "item", "entire_url", "configValue"})
    assert r.positional == ("request", "params_kw", "item")
    assert RegisteredFunction.make("all", everything).keywords is None
    assert RegisteredFunction.make("builtin", print).fn is print


def test_keyword_arguments_never_repeat_what_is_passed_by_position() -> None:
    def named(request, params_kw, item, *, entire_url=None, missing=None):
        pass

    def everything(request, params_kw, **kwargs):
        pass

    ns = {"request": 1, "params_kw": 2, "item": "from-ns", "entire_url": "e", "other": "o"}
    # 3 positional: request, params_kw and one path part filling ``item``.
    assert RegisteredFunction.make("n", named).keyword_arguments(ns, 3) == {"entire_url": "e"}
    # Without the path part ``item`` may come from the namespace.
    assert RegisteredFunction.make("n", named).keyword_arguments(ns, 2) == {
        "item": "from-ns", "entire_url": "e"
    }
    assert RegisteredFunction.make("e", everything).keyword_arguments(ns, 2) == {
        "item": "from-ns", "entire_url": "e", "other": "o"
    }


def test_registry_register_get_replace_and_refusals() -> None:
    registry = FunctionRegistry()

    def one(request, params_kw):
        return 1

    def two(request, params_kw):
        return 2

    registry.register("f", one)
    assert "f" in registry and list(registry) == ["f"]
    registry.register("f", two)
    assert registry.get("f").fn is two  # a later registration replaces
    assert registry.get("nope") is None
    with pytest.raises(ValueError, match="non-empty name"):
        registry.register("", one)
    with pytest.raises(ValueError):
        registry.register(None, one)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"register_function\('g', \.\.\.\): 42 is not callable"):
        registry.register("g", 42)  # type: ignore[arg-type]


def test_each_app_has_its_own_registry_with_the_builtins() -> None:
    one, two = web.Application(), web.Application()
    install_registry(one)
    install_registry(two)
    assert {"idfile", "download"} <= set(one[FUNCTIONS_KEY])
    register_function(one, "mine", lambda request, params_kw: None)
    assert registered_function(one, "mine") is not None
    assert registered_function(two, "mine") is None
    assert registered_function(one, "idfile") is send_upload


def test_an_app_without_a_registry_says_how_to_get_one() -> None:
    with pytest.raises(RuntimeError, match="build it with ahcore.create_app"):
        registry_of(web.Application())


async def test_report_unregistered_logs_each_route_that_cannot_work(make_app, caplog) -> None:
    app = make_app({"website": {"startswiths": [
        {"leading": "/api/ok", "registerfunction": "ok"},
        {"leading": "/api/missing", "registerfunction": "missing"},
        {"leading": "api/noslash", "registerfunction": "ok"},
    ]}})
    register_function(app, "ok", lambda request, params_kw: None)
    with caplog.at_level(logging.ERROR, logger="ahcore.functions"):
        await report_unregistered(app)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "website.startswiths[1]" in lines[0] and "'missing'" in lines[0]
    assert "website.startswiths[2]" in lines[1] and "does not start with '/'" in lines[1]


async def test_send_upload_refuses_paths_outside_filesroot(make_app, make_request) -> None:
    from ahcore.appkeys import get_site
    from ahcore.context import RequestContext
    from ahcore.dictobject import DictObject

    app = make_app({"filesroot": "$[workdir]$/files"})
    site = get_site(app)
    sub = await site.uploads.save_bytes(b"stored", "a.txt")
    context = RequestContext(make_request(app=app), site, None)
    token = context.activate()
    try:
        sent = await send_upload(context.request, DictObject(path=sub))
        assert isinstance(sent, web.FileResponse) and "Content-Disposition" not in sent.headers
        download = await send_upload(context.request, DictObject(path=sub, download="1"))
        assert download.headers["Content-Disposition"].startswith('attachment; filename="')
        for bad, status in [("../conf/config.json", 400), (None, 400), ("/", 400),
                            ("2020/01/01/missing.txt", 404)]:
            with pytest.raises(web.HTTPException) as info:
                await send_upload(context.request, DictObject(path=bad))
            assert info.value.status == status, bad
    finally:
        context.deactivate(token)
