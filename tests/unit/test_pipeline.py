"""ahcore.pipeline: its pure answers, path_call's resolution and access, called directly."""

from __future__ import annotations

import os

import pytest
from aiohttp import web

from ahcore import Processor, ProcessorSpec, hookimpl
from ahcore.access import check_access, explicit_allow
from ahcore.appkeys import get_site
from ahcore.context import RequestContext
from ahcore.pipeline import (
    KNOWN_METHODS,
    STATIC_METHODS,
    directory_listing,
    method_not_allowed,
    options_response,
    other_method,
    path_call,
    serve,
    static_file,
)


def test_method_not_allowed_names_what_is_allowed_and_options() -> None:
    with pytest.raises(web.HTTPMethodNotAllowed) as info:
        method_not_allowed("PUT", ("GET", "HEAD"))
    exc = info.value
    assert exc.status == 405
    assert exc.headers["Allow"] == "GET,HEAD,OPTIONS"
    assert exc.text == "405: PUT is not allowed here; use GET, HEAD, OPTIONS\n"


def test_other_method_answers_options_and_refuses_the_rest() -> None:
    assert other_method("OPTIONS", ("GET",)).headers["Allow"] == "GET, OPTIONS"
    with pytest.raises(web.HTTPMethodNotAllowed):
        other_method("DELETE", ("GET",))


def test_options_response_runs_nothing_and_lists_the_methods() -> None:
    resp = options_response(("GET", "POST"))
    assert resp.status == 204 and resp.body is None
    assert resp.headers["Allow"] == "GET, POST, OPTIONS"


def test_known_methods_exclude_trace_connect_and_webdav() -> None:
    assert {"TRACE", "TRACK", "CONNECT", "PROPFIND", "MKCOL"}.isdisjoint(KNOWN_METHODS)


# ---------------------------------------------------------------- a small site


class Value(Processor):
    """``.val``: its own URL, its parameters and its caller's URL."""

    async def produce(self, context):
        params = await context.params()
        parent = context.parent.url if context.parent is not None else None
        return {"url": context.url, "params": dict(params), "caller": parent}


class Nested(Processor):
    """``.call``: path_call's the file named in the file (relative or absolute)."""

    async def produce(self, context):
        return await path_call(context, self.path.read_text().strip(), {"from": context.url})


class ValuePlugin:
    @hookimpl
    def register_processor(self):
        return [
            ProcessorSpec("val", (".val",), Value),
            ProcessorSpec("call", (".call",), Nested),
            ProcessorSpec("public", (".pub",), Value, cross_site=True, methods=("GET",)),
        ]


class Guard:
    """Denies /private/, allows /admin/ explicitly, abstains elsewhere."""

    @hookimpl
    def auth_check(self, request, user, path):
        if path.startswith("/private/"):
            return False
        if path.startswith("/admin/"):
            return True
        return None


FILES = {
    "wwwroot/a.val": "",
    "wwwroot/sub/b.val": "",
    "wwwroot/sub/index.val": "",
    "wwwroot/sub/rel.call": "b.val",
    "wwwroot/sub/plain.txt": "static",
    "wwwroot/private/p.val": "",
    "wwwroot/admin/x.val": "",
    "wwwroot/open.pub": "",
    "wwwroot/list/<b>&x.txt": "",
    "wwwroot/list/.hidden": "",
    "wwwroot/list/zdir/f": "",
}


@pytest.fixture
def site(make_app):
    app = make_app(
        {"plugins": {"val": True, "guard": True}, "website": {"allowListFolder": True, "indexes": ["index.val"]}},
        files=FILES,
        plugins={"val": ValuePlugin(), "guard": Guard()},
    )
    return get_site(app)


def context_for(site, make_request, url: str, method: str = "GET", headers=None) -> RequestContext:
    return RequestContext(make_request(method, url, headers, app=site.app), site, site.resolve(url))


async def test_path_call_returns_the_value_not_a_response(site, make_request) -> None:
    caller = context_for(site, make_request, "/sub/b.val?x=1")
    value = await path_call(caller, "/a.val", {"k": "v"})
    assert value == {"url": "/a.val", "params": {"k": "v"}, "caller": "/sub/b.val"}


async def test_path_call_resolves_relative_paths_against_the_callers_folder(site, make_request) -> None:
    caller = context_for(site, make_request, "/sub/b.val")
    assert (await path_call(caller, "index.val", {}))["url"] == "/sub/index.val"
    assert (await path_call(caller, "./b.val", {}))["url"] == "/sub/b.val"
    root_caller = context_for(site, make_request, "/a.val")
    assert (await path_call(root_caller, "sub/b.val", {}))["url"] == "/sub/b.val"


async def test_path_call_takes_dot_dot_and_full_urls_of_this_site_as_ahserver_did(
    site, make_request
) -> None:
    # ahserver's path_call went through entireUrl/url2path/realurl: ``..`` is
    # resolved lexically (never above the root) and entire_url()'s result works.
    caller = context_for(site, make_request, "/sub/b.val", headers={"Host": "example.org:8080"})
    assert (await path_call(caller, "../a.val", {}))["url"] == "/a.val"
    assert (await path_call(caller, "../../../a.val", {}))["url"] == "/a.val"
    assert (await path_call(caller, "/sub/../sub/./b.val", {}))["url"] == "/sub/b.val"
    for own in ("http://example.org:8080/a.val", "http://EXAMPLE.org:8080/a.val?x=1",
                "ws://example.org:8080/a.val"):
        assert (await path_call(caller, own, {}))["url"] == "/a.val"
    for other in ("http://elsewhere.org/a.val", "https://example.org:8080/a.val",
                  "http://example.org:8080.evil/a.val", "ftp://example.org:8080/a.val"):
        with pytest.raises(web.HTTPNotFound):
            await path_call(caller, other, {})


async def test_path_call_of_a_folder_finds_its_index_with_or_without_slash(site, make_request) -> None:
    caller = context_for(site, make_request, "/a.val")
    assert (await path_call(caller, "/sub", {}))["url"] == "/sub/index.val"
    assert (await path_call(caller, "/sub/", {}))["url"] == "/sub/index.val"


async def test_nested_path_calls_see_their_own_caller(site, make_request) -> None:
    caller = context_for(site, make_request, "/sub/rel.call")
    assert await path_call(caller, "/sub/rel.call", {}) == {
        "url": "/sub/b.val", "params": {"from": "/sub/rel.call"}, "caller": "/sub/rel.call"
    }


@pytest.mark.parametrize(
    "target",
    ["/sub/plain.txt", "/missing.val", "../../conf/config.json", "/%2e%2e/conf/config.json",
     "/.hidden.val", "../.hidden.val", "../../private/../conf/config.json"],
)
async def test_path_call_to_what_is_not_a_processor_file_is_404(site, make_request, target) -> None:
    caller = context_for(site, make_request, "/sub/b.val")
    with pytest.raises(web.HTTPNotFound):
        await path_call(caller, target, {})


async def test_path_call_checks_access_on_the_called_file(site, make_request) -> None:
    caller = context_for(site, make_request, "/a.val")
    with pytest.raises(web.HTTPUnauthorized):
        await path_call(caller, "/private/p.val", {})


async def test_check_access_and_explicit_allow(site, make_request) -> None:
    request = make_request(app=site.app)
    await check_access(site, request, "/a.val")  # all abstain: the default allows
    with pytest.raises(web.HTTPUnauthorized) as info:
        await check_access(site, request, "/private/p.val")
    assert info.value.text == "401: Unauthorized: please log in\n"
    assert await explicit_allow(site, request, "/admin/x.val") is True
    assert await explicit_allow(site, request, "/a.val") is False  # abstaining is no allow
    assert await explicit_allow(site, request, "/private/p.val") is False


async def test_static_file_and_listing_answer_get_head_and_options_only(site, make_request) -> None:
    resolved = site.resolve("/sub/plain.txt")
    assert isinstance(static_file(make_request("HEAD", "/sub/plain.txt"), resolved), web.FileResponse)
    assert static_file(make_request("OPTIONS", "/"), resolved).headers["Allow"] == "GET, HEAD, OPTIONS"
    with pytest.raises(web.HTTPMethodNotAllowed) as info:
        static_file(make_request("POST", "/"), resolved)
    assert info.value.headers["Allow"] == "GET,HEAD,OPTIONS"
    listing = site.resolve("/list/")
    with pytest.raises(web.HTTPMethodNotAllowed):
        directory_listing(make_request("DELETE", "/list/"), listing)
    assert STATIC_METHODS == ("GET", "HEAD")


def test_directory_listing_escapes_names_and_hides_dotfiles(site, make_request) -> None:
    os.mkfifo(site.workdir / "wwwroot" / "list" / "pipe")
    resp = directory_listing(make_request("GET", "/list/"), site.resolve("/list/"))
    body = resp.text
    assert resp.content_type == "text/html"
    assert "<b>" not in body and "&lt;b&gt;&amp;x.txt" in body
    assert ".hidden" not in body and "pipe" not in body
    assert body.index("zdir/") < body.index("&lt;b&gt;")  # folders first


async def test_serve_refuses_unknown_methods_before_any_lookup(site, make_request) -> None:
    for method in ("TRACE", "PROPFIND", "CONNECT"):
        with pytest.raises(web.HTTPMethodNotAllowed) as info:
            await serve(site, make_request(method, "/a.val", app=site.app))
        assert "OPTIONS" in info.value.headers["Allow"]


async def test_serve_answers_a_processor_file_and_options_without_running_it(site, make_request) -> None:
    resp = await serve(site, make_request("GET", "/a.val?x=1", app=site.app))
    assert resp.status == 200 and resp.content_type == "application/json"
    options = await serve(site, make_request("OPTIONS", "/a.val", app=site.app))
    assert options.status == 204 and options.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    with pytest.raises(web.HTTPMethodNotAllowed):
        await serve(site, make_request("DELETE", "/a.val", app=site.app))
    with pytest.raises(web.HTTPMethodNotAllowed):
        await serve(site, make_request("POST", "/open.pub", app=site.app))  # its spec: GET only


async def test_serve_redirects_a_folder_keeping_the_query(site, make_request) -> None:
    with pytest.raises(web.HTTPMovedPermanently) as info:
        await serve(site, make_request("GET", "/sub?x=1&y=2", app=site.app))
    assert info.value.location == "/sub/?x=1&y=2"


async def test_serve_refuses_cross_site_subresource_runs_except_for_cross_site_specs(
    site, make_request
) -> None:
    img = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
    with pytest.raises(web.HTTPForbidden) as info:
        await serve(site, make_request("GET", "/a.val", img, app=site.app))
    assert "cross-site request refused by its Sec-Fetch headers" in info.value.text
    assert (await serve(site, make_request("GET", "/open.pub", img, app=site.app))).status == 200
    nav = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert (await serve(site, make_request("GET", "/a.val", nav, app=site.app))).status == 200


async def test_serve_checks_access_even_for_missing_files(site, make_request) -> None:
    with pytest.raises(web.HTTPUnauthorized):
        await serve(site, make_request("GET", "/private/missing.txt", app=site.app))
    with pytest.raises(web.HTTPNotFound):
        await serve(site, make_request("GET", "/public/missing.txt", app=site.app))


async def test_serve_never_leaves_its_context_behind(site, make_request) -> None:
    from ahcore.context import current_context

    await serve(site, make_request("GET", "/a.val", app=site.app))
    with pytest.raises(RuntimeError):
        current_context()
