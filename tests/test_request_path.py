"""One request path: a plugin's routes and the site's own pages fail in exactly the same way.

Every route — the catch-all, a route a plugin adds in ``register_routes``
or in ``on_startup``, a route ``init(app)`` adds before the server starts —
goes through the same guard, so an error raised anywhere is rendered in one
place, in the form the client asked for, with no middleware layer.
"""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from ahcore.api import (
    Processor,
    ProcessorSpec,
    RequestContext,
    bad_request,
    hookimpl,
    not_found,
    server_error,
)
from ahcore.testing import SiteTestServer, build_app

COOKIE = "AHCORE_SESSION"


def fail(what: str) -> web.StreamResponse:
    """Fail as ``what`` says: the same code behind every kind of route."""
    if what == "bad":
        bad_request("page must be a number")
    if what == "missing":
        not_found()
    if what == "teapot":
        server_error(418, "short and stout")
    if what == "put":
        raise web.HTTPMethodNotAllowed("PUT", ["GET", "HEAD"], text="PUT: use GET\n")
    if what == "boom":
        raise RuntimeError("a secret the visitor must not see")
    return web.Response(text=f"fine: {what}")


async def fail_view(request: web.Request) -> web.StreamResponse:
    return fail(request.query.get("what", ""))


class FailProcessor(Processor):
    async def respond(self, context: RequestContext) -> web.StreamResponse:
        return fail(context.request.query.get("what", ""))


class Failing:
    """A page processor and two routes that fail alike; one route added at registration, one at start-up."""

    @hookimpl
    def register_processor(self) -> ProcessorSpec:
        return ProcessorSpec("fail", (".fail",), FailProcessor, methods=("GET", "POST"))

    @hookimpl
    def register_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/early", fail_view)

    @hookimpl
    def on_startup(self, app: web.Application) -> None:
        app.router.add_route("*", "/late", fail_view)


@pytest.fixture
async def client(make_site, aiohttp_client):
    site = make_site(
        config={"plugins": {"failing": True}, "website": {"processors": [[".fail", "fail"]]}},
        files={"wwwroot/page.fail": ""},
    )
    app = build_app(site, extra_plugins={"failing": Failing()})
    app.router.add_route("*", "/init", fail_view)  # as webapp(init) does, after create_app
    return await aiohttp_client(SiteTestServer(app))


ROUTES = ("/page.fail", "/early", "/late", "/init")
ACCEPTS = ("application/json", "text/html", "*/*")


def _comparable(status: int, content_type: str, headers: dict[str, str], body: str) -> tuple:
    return status, content_type, headers, re.sub(r"\b[0-9a-f]{12}\b", "ID", body)


async def _answer(client, path: str, what: str, accept: str, method: str = "GET", **headers: str):
    resp = await client.request(method, f"{path}?what={what}", headers={"Accept": accept, **headers})
    kept = {k: resp.headers[k] for k in ("Allow",) if k in resp.headers}
    return _comparable(resp.status, resp.content_type, kept, await resp.text())


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("what", ["bad", "missing", "teapot", "put", "boom"])
async def test_plugin_routes_and_pages_give_identical_errors(client, what, accept) -> None:
    answers = {path: await _answer(client, path, what, accept) for path in ROUTES}
    page = answers["/page.fail"]
    assert page[0] >= 400 and "secret" not in page[3] and "Traceback" not in page[3]
    assert answers == dict.fromkeys(ROUTES, page)


@pytest.mark.parametrize("accept", ACCEPTS)
async def test_csrf_is_refused_alike_on_every_route(client, accept) -> None:
    cross_site = {"Cookie": f"{COOKIE}=x", "Sec-Fetch-Site": "cross-site"}
    answers = {
        path: await _answer(client, path, "fine", accept, "POST", **cross_site) for path in ROUTES
    }
    page = answers["/page.fail"]
    assert page[0] == 403 and "Sec-Fetch-Site" in page[3]
    assert answers == dict.fromkeys(ROUTES, page)


async def test_the_app_has_no_middleware_and_every_route_is_guarded(client) -> None:
    app = client.server.app
    assert list(app.middlewares) == []
    names = {r.resource.canonical: getattr(r.handler, "__name__", "") for r in app.router.routes()}
    assert names == {
        "/early": "guarded_fail_view",
        "/late": "guarded_fail_view",
        "/init": "guarded_fail_view",
        "/{tail}": "guarded_serve",
    }
    assert (await client.get("/late?what=ok")).status == 200
