"""ahcore.errors: how an error looks to each client, and the guard every request passes."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web

from ahcore import Processor, ProcessorSpec, hookimpl
from ahcore.csrf import COOKIE_NAME
from ahcore.errors import (
    bad_request,
    error_message,
    error_response,
    guard,
    guarded,
    http_error_response,
    internal_error_response,
    is_data_endpoint,
    not_found,
    server_error,
    wants_html,
    wants_json,
)


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


def test_bad_request_and_not_found() -> None:
    assert isinstance(bad_request("no"), web.HTTPBadRequest)
    assert bad_request("no").text == "no\n"
    assert not_found().status == 404 and not_found().text == "404: Not Found\n"


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


async def test_guard_renders_errors_and_hides_exceptions(app, make_request) -> None:
    async def boom(request):
        raise ValueError("secret")

    async def missing(request):
        raise not_found()

    async def redirect(request):
        raise web.HTTPFound("/there")

    async def fine(request):
        return web.Response(text="ok")

    assert (await guard(make_request(app=app), fine)).text == "ok"
    resp = await guard(make_request(app=app), boom)
    assert resp.status == 500 and "secret" not in resp.text
    assert (await guard(make_request(app=app), missing)).status == 404
    with pytest.raises(web.HTTPFound):
        await guard(make_request(app=app), redirect)


async def test_guard_refuses_a_cross_site_post_before_the_handler_runs(app, make_request) -> None:
    ran = []

    async def handler(request):
        ran.append(1)
        return web.Response()

    request = make_request(
        "POST", "/x", {"Cookie": f"{COOKIE_NAME}=s", "Sec-Fetch-Site": "cross-site"}, app=app
    )
    resp = await guard(request, handler)
    assert resp.status == 403 and "Sec-Fetch-Site" in resp.text
    assert ran == []


async def test_guard_lets_cancellation_and_resets_through(app, make_request) -> None:
    async def cancelled(request):
        raise asyncio.CancelledError

    async def reset(request):
        raise ConnectionResetError

    with pytest.raises(asyncio.CancelledError):
        await guard(make_request(app=app), cancelled)
    with pytest.raises(ConnectionResetError):
        await guard(make_request(app=app), reset)


async def test_guarded_wraps_a_handler(app, make_request) -> None:
    async def page(request):
        raise web.HTTPForbidden()

    wrapped = guarded(page)
    assert wrapped.__name__ == "guarded_page"
    assert (await wrapped(make_request(app=app))).status == 403
