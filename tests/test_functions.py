"""Function routes (``website.startswiths``) and each application's function registry."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from ahcore.api import hookimpl, register_function, registered_function
from ahcore.app import create_app
from ahcore.appkeys import get_site
from ahcore.testing import SiteTestServer

ROUTES = [
    {"leading": "/api/echo", "registerfunction": "echo"},
    {"leading": "/api/private", "registerfunction": "echo"},
    {"leading": "/api/shapes/", "registerfunction": "shapes"},
    {"leading": "/api/plain", "registerfunction": "plain"},
    {"leading": "/api/boom", "registerfunction": "boom"},
    {"leading": "/api/missing", "registerfunction": "nobody_registered_this"},
    {"leading": "/files", "registerfunction": "idfile"},
    {"leading": "/i18n", "registerfunction": "i18n"},
]


def config(**website: Any) -> dict[str, Any]:
    return {
        "website": {"paths": [["$[workdir]$/wwwroot", ""]], "startswiths": ROUTES, **website},
        "filesroot": "$[workdir]$/files",
        "plugins": {"funcs": True},
    }


async def echo(request: web.Request, params_kw: Any, *args: str, **kw: Any) -> dict[str, Any]:
    """An ahserver-style function: request, params_kw, path parts, the namespace."""
    return {
        "method": request.method,
        "params": dict(params_kw),
        "args": list(args),
        "has_namespace": callable(kw.get("entire_url")) and "DBPools" in kw,
        "no_duplicates": "request" not in kw and "params_kw" not in kw,
        "absolute": kw["entire_url"]("/x"),
    }


def shapes(request: web.Request, params_kw: Any, kind: str = "") -> Any:
    """A plain (sync) function; what it returns follows ahserver's conventions."""
    return {
        "dict": {"a": 1},
        "list": [1, 2],
        "text": "<p>hello</p>",
        "jsontext": '{"b": 2}',
        "response": web.Response(text="as is", status=202, headers={"X-Mine": "1"}),
        "none": None,
        "bytes": b"\x00\x01",
    }[kind]


def plain(request: web.Request, params_kw: Any, entire_url: Any) -> str:
    """No ``**kwargs``: only the namespace names it declares are passed."""
    return entire_url("/y")


async def boom(request: web.Request, params_kw: Any, **kw: Any) -> None:
    raise RuntimeError("secret-detail-of-boom")


class Funcs:
    """A plugin that registers functions at start-up and guards one prefix."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    @hookimpl
    def on_startup(self, app: web.Application) -> None:
        for name, fn in (("echo", echo), ("shapes", shapes), ("plain", plain), ("boom", boom)):
            register_function(app, name, fn)

    @hookimpl
    def auth_check(self, request: web.Request, user: str | None, path: str) -> bool | None:
        self.paths.append(path)
        return False if path.startswith("/api/private") else None


@pytest.fixture
def site(make_site: Any) -> Path:
    path = make_site(
        config=config(),
        files={
            "wwwroot/api/echo/file.txt": "a file the route hides",
            "wwwroot/index.html": "<p>home</p>",
            "files/2024/01/01/abc.txt": "stored upload",
            "secret.txt": "outside filesroot",
            "wwwroot/i18n/zh-cn/i18n.json": '{"Save": "保存"}',
            "wwwroot/words/en/i18n.json": '{"Save": "Save"}',
            "wwwroot/.hidden/en/i18n.json": '{"hidden": true}',
        },
    )
    return path


@pytest.fixture
def funcs() -> Funcs:
    return Funcs()


async def test_function_gets_request_params_path_parts_and_namespace(site, ahcore_client, funcs):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    resp = await client.get("/api/echo/12/lines?q=1")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    body = await resp.json()
    assert body["args"] == ["12", "lines"]
    assert body["params"] == {"q": "1"}
    assert body["has_namespace"] and body["no_duplicates"]
    assert body["absolute"] == f"http://{client.host}:{client.port}/x"

    resp = await client.post("/api/echo", json={"name": "x"})
    body = await resp.json()
    assert (body["method"], body["params"], body["args"]) == ("POST", {"name": "x"}, [])


async def test_routes_win_over_files_and_other_paths_are_files(site, ahcore_client, funcs):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    resp = await client.get("/api/echo/file.txt")
    assert (await resp.json())["args"] == ["file.txt"]
    resp = await client.get("/")
    assert await resp.text() == "<p>home</p>"


async def test_leading_is_a_plain_string_prefix_as_in_ahserver(site, ahcore_client, funcs):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    # "/api/echo" also matches "/api/echoes": the rest is "es".
    assert (await (await client.get("/api/echoes")).json())["args"] == ["es"]
    # "/api/shapes/" (with the slash) does not match "/api/shapes".
    assert (await client.get("/api/shapes")).status == 404


async def test_return_conventions(site, ahcore_client, funcs):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})

    async def get(kind: str) -> web.Response:
        return await client.get(f"/api/shapes/{kind}")

    resp = await get("dict")
    assert resp.content_type == "application/json" and await resp.json() == {"a": 1}
    resp = await get("list")
    assert await resp.json() == [1, 2]
    resp = await get("text")
    assert resp.content_type == "text/html" and await resp.text() == "<p>hello</p>"
    resp = await get("jsontext")
    assert resp.content_type == "application/json" and await resp.json() == {"b": 2}
    resp = await get("response")
    assert (resp.status, resp.headers["X-Mine"], await resp.text()) == (202, "1", "as is")
    resp = await get("none")
    assert resp.status == 200 and await resp.read() == b""
    resp = await get("bytes")
    assert resp.content_type == "application/octet-stream" and await resp.read() == b"\x00\x01"


async def test_function_without_kwargs_gets_only_the_names_it_declares(
    site, ahcore_client, funcs
):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    resp = await client.get("/api/plain")
    assert resp.status == 200
    assert await resp.text() == f"http://{client.host}:{client.port}/y"


async def test_unregistered_function_is_501_and_logged_once_at_start(
    site, ahcore_client, funcs, caplog
):
    with caplog.at_level(logging.ERROR, logger="ahcore.functions"):
        client = await ahcore_client(site, extra_plugins={"funcs": funcs})
        resp = await client.get("/api/missing/x")
        await client.get("/api/missing/y")
    assert resp.status == 501
    assert "nobody_registered_this" in await resp.text()
    logged = [r for r in caplog.records if "nobody_registered_this" in r.getMessage()]
    assert len(logged) == 1 and "website.startswiths[5]" in logged[0].getMessage()
    # Functions registered at start-up are not reported.
    assert not [r for r in caplog.records if "'echo'" in r.getMessage()]


async def test_a_function_registered_while_running_is_used(site, ahcore_client, funcs):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    assert (await client.get("/api/missing")).status == 501
    app = client.server.app
    register_function(app, "nobody_registered_this", lambda request, params_kw: "late")
    assert registered_function(app, "nobody_registered_this") is not None
    assert await (await client.get("/api/missing")).text() == "late"


async def test_exception_is_500_without_traceback(site, ahcore_client, funcs, caplog):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    with caplog.at_level(logging.ERROR, logger="ahcore.errors"):
        resp = await client.get("/api/boom")
    assert resp.status == 500
    text = await resp.text()
    assert "secret-detail-of-boom" not in text and "Traceback" not in text
    assert resp.headers["X-Error-Id"] in text
    assert "secret-detail-of-boom" in caplog.text


async def test_access_control_applies_to_the_canonical_path(site, ahcore_client, funcs):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    resp = await client.get("/api/private/x")
    assert resp.status == 401
    # Dot segments and doubled slashes cannot slip past the check.
    resp = await client.get("/api//./private/x")
    assert resp.status == 401
    assert "/api/private/x" in funcs.paths
    # Traversal is refused (as for files) before any route is tried.
    raw = URL("/api/echo/%2e%2e/%2e%2e/secret.txt", encoded=True)
    resp = await client.get(raw)
    assert resp.status == 404 and "secret" not in await resp.text()


async def test_methods(site, ahcore_client, funcs):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    for method in ("PUT", "PATCH", "DELETE"):
        resp = await client.request(method, "/api/echo")
        assert (await resp.json())["method"] == method
    resp = await client.request("HEAD", "/api/echo")
    assert resp.status == 200
    for method in ("TRACE", "PROPFIND"):
        resp = await client.request(method, "/api/echo")
        assert resp.status == 405, method
        assert "POST" in resp.headers["Allow"]
    resp = await client.options("/api/echo")
    assert resp.status == 204
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) == {
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"
    }


async def test_two_apps_do_not_share_a_registry(site, aiohttp_client, funcs):
    first = create_app(site, extra_plugins={"funcs": funcs})
    second = create_app(site, extra_plugins={"funcs": Funcs()})
    register_function(first, "nobody_registered_this", lambda request, params_kw: "first only")
    a = await aiohttp_client(SiteTestServer(first))
    b = await aiohttp_client(SiteTestServer(second))
    assert await (await a.get("/api/missing")).text() == "first only"
    assert (await b.get("/api/missing")).status == 501
    assert registered_function(second, "nobody_registered_this") is None


async def test_idfile_sends_stored_uploads_only(site, ahcore_client, funcs):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    resp = await client.get("/files", params={"path": "/2024/01/01/abc.txt"})
    assert resp.status == 200 and await resp.text() == "stored upload"
    assert "Content-Disposition" not in resp.headers
    resp = await client.get("/files", params={"path": "2024/01/01/abc.txt", "download": "1"})
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"abc.txt\"; filename*=utf-8''abc.txt"
    )
    assert (await client.get("/files", params={"path": "../secret.txt"})).status == 400
    assert (await client.get("/files", params={"path": "2024/none.txt"})).status == 404
    assert (await client.get("/files")).status == 400


async def test_the_i18n_function_sends_a_languages_file_as_ahserver(site, ahcore_client, funcs):
    # ahserver's registered i18n (globalEnv.py): <root>/<i18n or 'i18n'>/<lang>/i18n.json,
    # what the bricks I18n class fetches; a language without a file gives {}.
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    resp = await client.get("/i18n", params={"lang": "zh-cn"})
    assert resp.status == 200 and await resp.json() == {"Save": "保存"}
    assert await (await client.get("/i18n?lang=en&i18n=words")).json() == {"Save": "Save"}
    assert await (await client.get("/i18n?lang=fr")).json() == {}
    # ahserver joined the parameters into a path unchecked; here they are plain names
    for query in ("lang=../../secret.txt", "lang=en&i18n=.hidden", "lang=en&i18n=a/b", "", "lang="):
        resp = await client.get("/i18n?" + query)
        assert resp.status == 400, query
        assert "plain name" in await resp.text()


async def test_a_site_without_routes_serves_files_as_before(make_site, ahcore_client):
    site = make_site(files={"wwwroot/api/echo/file.txt": "plain file"})
    client = await ahcore_client(site)
    assert await (await client.get("/api/echo/file.txt")).text() == "plain file"
    assert get_site(client.server.app).config.website.startswiths == []


async def test_routes_follow_a_reloaded_config(site, ahcore_client, funcs):
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    view = get_site(client.server.app)
    assert (await client.get("/api/echo")).status == 200
    from ahcore.config import load_config

    cfg = config()
    cfg["website"]["startswiths"] = []
    (site / "conf" / "config.json").write_text(json.dumps(cfg))
    view.apply_config(load_config(site))  # what the hot-reload watcher does
    assert (await client.get("/api/echo")).status == 404


async def test_cross_site_subresource_requests_are_refused(site, ahcore_client, funcs):
    (site / "conf" / "config.json").write_text(json.dumps(config(cross_site_paths=["/api/echo"])))
    client = await ahcore_client(site, extra_plugins={"funcs": funcs})
    fetch = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    resp = await client.get("/api/plain", headers=fetch)
    assert resp.status == 403
    # A route whose leading is listed is meant for other sites.
    assert (await client.get("/api/echo/1", headers=fetch)).status == 200
    # A top-level navigation from another site is a visit, not a subresource.
    navigate = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert (await client.get("/api/plain", headers=navigate)).status == 200
