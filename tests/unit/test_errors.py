"""ahcore.errors: how an error looks to each client, and the guard every request passes."""

from __future__ import annotations

import asyncio
import html
import json
import logging
from functools import partial

import pytest
from aiohttp import web
from yarl import URL

from ahcore import Processor, ProcessorSpec, hookimpl
from ahcore.csrf import COOKIE_NAME
from ahcore.errors import (
    bad_request,
    error_message,
    error_response,
    guard,
    guard_routes,
    http_error_response,
    internal_error_response,
    is_data_endpoint,
    not_found,
    server_error,
    wants_html,
    wants_json,
)
from ahcore.pipeline import cross_site_refused, method_not_allowed


class DataProcessor(Processor):
    async def produce(self, context):
        return []


class DataPlugin:
    @hookimpl
    def register_processor(self):
        return [ProcessorSpec("rows", (".rows",), DataProcessor, data=True),
                ProcessorSpec("page", (".page",), DataProcessor)]


@pytest.fixture
def app(make_app):
    return make_app(
        {"plugins": {"rows": True}},
        files={"wwwroot/errors/404.html": "<h1>Our own 404</h1>"},
        plugins={"rows": DataPlugin()},
    )


def test_bad_request_and_not_found_raise_like_server_error() -> None:
    with pytest.raises(web.HTTPBadRequest) as bad:
        bad_request("no")
    assert bad.value.text == "no\n"
    with pytest.raises(web.HTTPNotFound) as missing:
        not_found()
    assert missing.value.text == "404: Not Found\n"


@pytest.mark.parametrize(
    ("code", "cls"),
    [(400, web.HTTPBadRequest), (401, web.HTTPUnauthorized), (403, web.HTTPForbidden),
     (404, web.HTTPNotFound), (405, web.HTTPMethodNotAllowed), (408, web.HTTPRequestTimeout),
     (409, web.HTTPConflict), (410, web.HTTPGone), (413, web.HTTPRequestEntityTooLarge),
     (415, web.HTTPUnsupportedMediaType), (429, web.HTTPTooManyRequests),
     (500, web.HTTPInternalServerError), (502, web.HTTPBadGateway),
     (503, web.HTTPServiceUnavailable), (504, web.HTTPGatewayTimeout)],
)
def test_server_error_raises_the_class_of_each_code(code, cls) -> None:
    with pytest.raises(cls) as info:
        server_error(code, "why")
    assert info.value.status == code and info.value.text == "why"


def test_server_error_with_another_code_and_a_string_code() -> None:
    with pytest.raises(web.HTTPException) as info:
        server_error(418)
    assert info.value.status == 418
    with pytest.raises(web.HTTPNotFound):
        server_error("404")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("accept", "json_first"),
    [
        ("", False),
        ("*/*", False),
        ("application/json", True),
        ("application/problem+json", True),
        ("application/json, text/html", True),
        ("text/html, application/json", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("text/plain", False),
    ],
)
def test_wants_json(make_request, accept, json_first) -> None:
    assert wants_json(make_request(headers={"Accept": accept})) is json_first


def test_wants_html(make_request) -> None:
    assert wants_html(make_request(headers={"Sec-Fetch-Dest": "document"}))
    assert wants_html(make_request(headers={"Accept": "text/html,*/*"}))
    assert not wants_html(make_request(headers={"Accept": "*/*"}))
    assert not wants_html(make_request(headers={"Sec-Fetch-Dest": "image"}))


def test_is_data_endpoint(app, make_request) -> None:
    assert is_data_endpoint(make_request(path="/report.rows", app=app))
    assert is_data_endpoint(make_request(path="/sub/dir/report.rows", app=app))
    assert not is_data_endpoint(make_request(path="/report.txt", app=app))
    assert not is_data_endpoint(make_request(path="/.rows", app=app))  # a suffix is no name
    assert not is_data_endpoint(make_request(path="/x.rows", app=web.Application()))


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (web.HTTPNotFound(text="404: Not Found\n"), "Not Found"),
        (web.HTTPBadRequest(text="bad page number\n"), "bad page number"),
        (web.HTTPForbidden(), "Forbidden"),
        (web.HTTPForbidden(text="  "), "Forbidden"),
        (web.HTTPBadRequest(text="4000: not the status\n"), "4000: not the status"),
    ],
)
def test_error_message_without_status_prefix(exc, message) -> None:
    assert error_message(exc) == message


def test_error_response_json_for_a_json_client(app, make_request) -> None:
    request = make_request(headers={"Accept": "application/json"}, app=app)
    resp = error_response(request, 400, "bad <page>", {"Retry-After": "3"})
    assert resp.status == 400 and resp.content_type == "application/json"
    assert json.loads(resp.body) == {"error": {"status": 400, "message": "bad <page>"}}
    assert resp.headers["Retry-After"] == "3"


def test_error_response_json_for_a_data_endpoint_even_for_a_browser(app, make_request) -> None:
    request = make_request(path="/r.rows", headers={"Accept": "text/html"}, app=app)
    assert error_response(request, 500, "x").content_type == "application/json"


def test_error_response_html_page_escapes_the_message(app, make_request) -> None:
    request = make_request(path="/p", headers={"Accept": "text/html"}, app=app)
    resp = error_response(request, 400, "<script>alert(1)</script>")
    assert resp.content_type == "text/html"
    assert "<script>" not in resp.text and "&lt;script&gt;" in resp.text
    assert "<title>400 Bad Request</title>" in resp.text


def test_error_response_uses_the_sites_own_page(app, make_request) -> None:
    request = make_request(path="/missing", headers={"Sec-Fetch-Dest": "document"}, app=app)
    resp = error_response(request, 404, "Not Found")
    assert resp.status == 404 and resp.text == "<h1>Our own 404</h1>"
    # No page of its own for 403: the kernel's.
    assert "403 Forbidden" in error_response(request, 403, "no").text


def test_error_response_plain_text_otherwise(app, make_request) -> None:
    resp = error_response(make_request(app=app), 418, "teapot")
    assert resp.content_type == "text/plain" and resp.text == "418: teapot\n"
    # An unknown status still has a reason on the page.
    page = error_response(make_request(headers={"Accept": "text/html"}, app=app), 599, "odd")
    assert "599 Error" in page.text


def test_http_error_response_keeps_meaningful_headers_only(app, make_request) -> None:
    exc = web.HTTPMethodNotAllowed("PUT", ["GET"], text="405: nope\n", headers={"X-Secret": "1"})
    resp = http_error_response(make_request(app=app), exc)
    assert resp is not None and resp.status == 405
    assert resp.headers["Allow"] == "GET"
    assert "X-Secret" not in resp.headers
    assert resp.text == "405: nope\n"


def test_http_error_response_leaves_redirects_and_json_errors_alone(app, make_request) -> None:
    request = make_request(app=app)
    assert http_error_response(request, web.HTTPFound("/elsewhere")) is None
    plugin_json = web.HTTPBadRequest(text='{"error": "x"}', content_type="application/json")
    assert http_error_response(request, plugin_json) is None


def test_internal_error_logs_the_traceback_and_shows_only_an_id(app, make_request, caplog) -> None:
    try:
        raise RuntimeError("secret-detail")
    except RuntimeError as exc:
        error = exc
    with caplog.at_level(logging.ERROR, logger="ahcore.errors"):
        resp = internal_error_response(error, make_request(path="/p?x=1", app=app), debug=False)
    error_id = resp.headers["X-Error-Id"]
    assert resp.status == 500
    assert error_id in resp.text and "secret-detail" not in resp.text
    assert "Traceback" not in resp.text
    assert error_id in caplog.text and "secret-detail" in caplog.text and "/p?x=1" in caplog.text
    debug = internal_error_response(error, make_request(app=app), debug=True)
    assert "secret-detail" in debug.text and "Traceback" in debug.text
    assert debug.headers["X-Error-Id"] != error_id


def _raises(exc: BaseException):
    async def handler(request):
        raise exc

    return handler


async def _bad_page(request):
    bad_request("page must be a number")


async def _missing(request):
    not_found()


async def _teapot(request):
    server_error(418, "short and stout")


async def _put_here(request):
    method_not_allowed("PUT", ("GET", "HEAD"))


async def _from_elsewhere(request):
    cross_site_refused()


# Every way a handler fails, and the status and message a client then reads.
FAILURES = [
    pytest.param(_bad_page, {}, 400, "page must be a number", id="bad_request"),
    pytest.param(_missing, {}, 404, "Not Found", id="not_found"),
    pytest.param(_teapot, {}, 418, "short and stout", id="server_error"),
    pytest.param(_put_here, {}, 405, "PUT is not allowed here; use GET, HEAD, OPTIONS", id="405"),
    pytest.param(_from_elsewhere, {}, 403, "Forbidden: another site's page", id="fetch-metadata"),
    pytest.param(
        _raises(AssertionError("never seen")), {}, 500, "Internal Server Error (error id",
        id="unexpected exception",
    ),
    pytest.param(
        _raises(AssertionError("the handler must not run")),
        {"method": "POST", "headers": {"Cookie": f"{COOKIE_NAME}=s", "Sec-Fetch-Site": "cross-site"}},
        403, "cross-site request refused (Sec-Fetch-Site)", id="csrf",
    ),
]

SHAPES = {
    "json": {"Accept": "application/json"},
    "html": {"Accept": "text/html"},
    "text": {},
}


def _message(resp: web.Response, shape: str) -> str:
    if shape == "json":
        assert resp.content_type == "application/json"
        body = json.loads(resp.text)
        assert set(body) == {"error"} and body["error"]["status"] == resp.status
        return str(body["error"]["message"])
    if shape == "html":
        assert resp.content_type == "text/html"
        assert f"<title>{resp.status} " in resp.text
        return html.unescape(resp.text.split("<p>", 1)[1].split("</p>", 1)[0])
    assert resp.content_type == "text/plain"
    status, _, message = resp.text.partition(": ")
    assert status == str(resp.status) and message.endswith("\n")
    return message[:-1]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("handler", "request_kw", "status", "message"), FAILURES)
async def test_every_error_has_one_negotiated_shape(
    make_app, make_request, handler, request_kw, status, message, shape
) -> None:
    app = make_app()
    headers = {**request_kw.get("headers", {}), **SHAPES[shape]}
    request = make_request(request_kw.get("method", "GET"), "/page", headers, app=app)
    resp = await guard(handler)(request)
    assert resp.status == status
    assert _message(resp, shape).startswith(message)
    assert "never seen" not in resp.text and "Traceback" not in resp.text
    if status == 405:
        assert resp.headers["Allow"] == "GET,HEAD,OPTIONS"
    if status == 500:
        assert resp.headers["X-Error-Id"] in resp.text


async def test_a_trusted_proxys_malformed_forwarded_header_is_refused(make_app, make_request) -> None:
    app = make_app({"website": {"trusted_proxies": ["10.0.0.0/8"]}})
    page = guard(_raises(AssertionError("the handler must not run")))
    request = make_request(headers={"X-Forwarded-Port": "99999"}, app=app, remote="10.1.2.3")
    resp = await page(request)
    assert resp.status == 400 and "X-Forwarded-Port" in resp.text
    # From a peer that is not a trusted proxy the header means nothing.
    fine = guard(_ok)
    ok = await fine(make_request(headers={"X-Forwarded-Port": "99999"}, app=app, remote="192.0.2.1"))
    assert ok.status == 200


async def _ok(request):
    return web.Response(text="ok")


async def test_redirects_cancellation_resets_and_json_api_errors_pass_through(app, make_request) -> None:
    with pytest.raises(web.HTTPFound):
        await guard(_raises(web.HTTPFound("/there")))(make_request(app=app))
    with pytest.raises(asyncio.CancelledError):
        await guard(_raises(asyncio.CancelledError()))(make_request(app=app))
    with pytest.raises(ConnectionResetError):
        await guard(_raises(ConnectionResetError()))(make_request(app=app))
    api = web.HTTPConflict(text='{"error": "taken"}', content_type="application/json")
    with pytest.raises(web.HTTPConflict):
        await guard(_raises(api))(make_request(app=app))
    assert (await guard(_ok)(make_request(app=app))).text == "ok"


def test_guard_wraps_once_and_keeps_the_name() -> None:
    wrapped = guard(_ok)
    assert wrapped.__name__ == "guarded__ok"
    assert guard(wrapped) is wrapped
    assert guard(partial(_ok)).__name__ == "guarded__ok"


def test_guard_routes_wraps_each_route_once_and_keeps_names(make_request) -> None:
    app = web.Application()
    app.router.add_get("/a", _ok, name="a")
    app.router.add_route("*", "/b/{x}", _ok)
    app.router.add_static("/static", ".")
    guard_routes(app)
    handlers = {r.resource.canonical: r.handler for r in app.router.routes() if r.resource}
    assert getattr(handlers["/a"], "__name__", "") == "guarded__ok"
    assert getattr(handlers["/b/{x}"], "__name__", "") == "guarded__ok"
    assert app.router["a"].url_for() == URL("/a")
    before = list(app.router.routes())
    guard_routes(app)
    assert list(app.router.routes()) == before  # nothing wrapped twice
