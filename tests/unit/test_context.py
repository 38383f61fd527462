"""ahcore.context: the per-request context and the namespace built from it."""

from __future__ import annotations

import asyncio
import json

import pytest

from ahcore import hookimpl
from ahcore.appkeys import get_site
from ahcore.context import RequestContext, current_context
from ahcore.dictobject import DictObject


class NamesPlugin:
    """Per-request names, one sync and one async, and one that tries to replace ``request``."""

    @hookimpl
    def env_globals(self, app):
        return {"greeting": "hello"}

    @hookimpl
    def request_namespace(self, context):
        return {"sync_name": context.url, "request": "overridden?", "params_kw": "overridden?",
                "terminalType": "kiosk"}


class AsyncNamesPlugin:
    @hookimpl
    async def request_namespace(self, context):
        await asyncio.sleep(0)
        return {"async_name": context.request.method}


@pytest.fixture
async def site(make_app):
    app = make_app(
        {"plugins": {"names": True, "async_names": True}},
        plugins={"names": NamesPlugin(), "async_names": AsyncNamesPlugin()},
    )
    site = get_site(app)
    await site.build_namespace(app)
    return site


def test_current_context_outside_a_request_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no ahcore request is being processed here"):
        current_context()


async def test_activate_and_deactivate(site, make_request) -> None:
    context = RequestContext(make_request(app=site.app), site, None)
    token = context.activate()
    assert current_context() is context
    context.deactivate(token)
    with pytest.raises(RuntimeError):
        current_context()


async def test_concurrent_requests_each_see_their_own_context(site, make_request) -> None:
    async def handle(path: str) -> str:
        context = RequestContext(make_request(path=path, app=site.app), site, None)
        token = context.activate()
        try:
            await asyncio.sleep(0.01)  # the other request runs meanwhile
            return current_context().url
        finally:
            context.deactivate(token)

    assert await asyncio.gather(handle("/a"), handle("/b")) == ["/a", "/b"]


async def test_url_is_the_resolved_files_url_else_the_request_path(site, make_request) -> None:
    (site.workdir / "wwwroot" / "x.txt").write_text("x")
    resolved = site.resolve("/x.txt")
    assert RequestContext(make_request(path="/./x.txt", app=site.app), site, resolved).url == "/x.txt"
    assert RequestContext(make_request(path="/p?q=1", app=site.app), site, None).url == "/p"


async def test_params_are_read_once(site, make_request) -> None:
    request = make_request("POST", "/s?a=1", {"Content-Type": "application/json"}, app=site.app,
                           body=b'{"b": 2}')
    context = RequestContext(request, site, None)
    params = await context.params()
    assert params == {"a": "1", "b": 2}
    assert isinstance(params, DictObject)
    assert await context.params() is params


async def test_namespace_layers_and_request_names_cannot_be_replaced(site, make_request) -> None:
    request = make_request("GET", "/page?request=evil&who=ann", app=site.app)
    context = RequestContext(request, site, None)
    ns = await context.namespace()
    assert ns["greeting"] == "hello"  # env_globals
    assert ns["json"] is json  # the kernel's globals
    assert ns["sync_name"] == "/page" and ns["async_name"] == "GET"  # request_namespace, both kinds
    assert ns["terminalType"] == "kiosk"  # plugins' names come after the kernel's
    assert ns["user"] is None and ns["ref_real_path"] is None  # the kernel's (no file, nobody)
    assert ns["request"] is request  # a plugin cannot replace it ...
    assert ns["params_kw"] == {"request": "evil", "who": "ann"}  # ... nor can a parameter
    assert ns["params_kw"] is await context.params()
    assert await context.namespace() is ns  # built once
    assert "request" not in site.global_namespace  # the global names were copied, not changed


async def test_a_get_without_query_gets_empty_params_without_reading(site, make_request) -> None:
    context = RequestContext(make_request("GET", "/p", app=site.app), site, None)
    ns = await context.namespace()
    assert ns["params_kw"] == {} and isinstance(ns["params_kw"], DictObject)
    assert ns["params_kw"].missing is None


async def test_run_ns_is_set_for_the_request_and_let_go_after(site, make_request) -> None:
    request = make_request(app=site.app)
    context = RequestContext(request, site, None)
    token = context.activate()
    ns = await context.namespace()
    assert request._run_ns is ns
    del ns
    context.deactivate(token)
    assert not hasattr(request, "_run_ns")  # the request <-> namespace cycle is cut


async def test_run_ns_stays_while_something_still_holds_the_namespace(site, make_request) -> None:
    request = make_request(app=site.app)
    context = RequestContext(request, site, None)
    token = context.activate()
    kept = await context.namespace()  # e.g. a task the script left running
    context.deactivate(token)
    assert request._run_ns is kept


async def test_child_context_for_path_call(site, make_request) -> None:
    request = make_request("GET", "/caller?x=1", app=site.app)
    parent = RequestContext(request, site, None)
    parent_ns = await parent.namespace()
    (site.workdir / "wwwroot" / "called.txt").write_text("c")
    resolved = site.resolve("/called.txt")
    child = parent.child(resolved, {"y": 2})
    assert child.parent is parent and child.request is request
    assert child.url == "/called.txt"
    assert await child.params() == {"y": 2}  # the given parameters, not the request's
    child_ns = await child.namespace()
    assert child_ns["params_kw"] == {"y": 2}
    assert request._run_ns is parent_ns  # the child does not replace the caller's
    token = child.activate()
    child.deactivate(token)
    assert request._run_ns is parent_ns


async def test_state_is_per_context(site, make_request) -> None:
    a = RequestContext(make_request(app=site.app), site, None)
    b = RequestContext(make_request(app=site.app), site, None)
    a.state["plugin"] = 1
    assert b.state == {}
