"""Methods, fetch metadata, response headers and error bodies, over raw sockets (SPEC §14, §16).

A request a file does not answer must never run it: each script here
appends to a file when it runs, and every refusal checks that file is
unchanged.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from advkit import raw_exchange, request_bytes

RUN_LOG = "files/ran.txt"

SCRIPT = """
open(file_realpath('ran.txt'), 'a').write(request.method + '\\n')
return {'ran': request.method}
"""


def _site(make_site, **website) -> Path:
    return make_site(
        config={
            "website": {
                "processors": [[".dspy", "dspy"], [".tmpl", "tmpl"], [".md", "md"], [".sqlds", "sqlds"]],
                **website,
            },
            "filesroot": "$[workdir]$/files",
            "plugins": {"dspy": True, "tmpl": True, "md": True, "sqlds": True},
        },
        files={
            "wwwroot/act.dspy": SCRIPT,
            "wwwroot/postonly.dspy": "# methods: POST\n" + SCRIPT,
            "wwwroot/page.tmpl": "hello {{ 1 + 1 }}",
            "wwwroot/doc.md": "# Doc\n",
            "wwwroot/plain.txt": "plain",
            "wwwroot/public/api.dspy": SCRIPT,
            "files/.keep": "",
        },
    )


def _runs(site: Path) -> list[str]:
    path = site / RUN_LOG
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "MKCOL", "LOCK", "SEARCH"])
async def test_trace_connect_and_webdav_methods_are_405_and_never_run(make_site, serve, method):
    site = _site(make_site)
    server = await serve(site)
    reply = await raw_exchange(server, request_bytes(method, "/act.dspy"))
    assert reply.status == 405
    assert "GET" in reply.headers["allow"] and method not in reply.headers["allow"]
    reply.assert_clean()
    assert _runs(site) == []


@pytest.mark.parametrize(
    "head",
    [
        b"POST /act.dspy HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST /act.dspy HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /act.dspy HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
    ],
)
async def test_a_malformed_request_is_a_400_and_no_traceback_in_the_log(
    make_site, serve, caplog, head
):
    # aiohttp's parser answers these itself and logged each as an ERROR with a
    # full traceback: anyone could fill the site's log. Now a debug line.
    site = _site(make_site)
    server = await serve(site)
    caplog.set_level(logging.INFO, logger="aiohttp.server")
    reply = await raw_exchange(server, head)
    assert reply.status == 400
    assert _runs(site) == []
    noisy = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert noisy == [], [r.getMessage() for r in noisy]
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    await raw_exchange(server, head)
    quiet = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert quiet and all(r.levelno == logging.DEBUG and not r.exc_info for r in quiet)
    assert "400" in quiet[-1].getMessage()


@pytest.mark.parametrize("method", ["TRACK", "BREW", "CONNECT"])
async def test_methods_aiohttp_refuses_never_reach_the_site(make_site, serve, method):
    """aiohttp's parser knows a fixed list of methods (TRACK, BREW: 400), and
    CONNECT's authority-form target matches no route (404): none reaches a file."""
    site = _site(make_site)
    server = await serve(site)
    reply = await raw_exchange(server, request_bytes(method, "/act.dspy"))
    assert reply.status in (400, 404)
    reply.assert_clean()
    assert _runs(site) == []


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("/act.dspy", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        ("/postonly.dspy", "POST, OPTIONS"),
        ("/page.tmpl", "GET, HEAD, POST, OPTIONS"),
        ("/doc.md", "GET, HEAD, OPTIONS"),
        ("/plain.txt", "GET, HEAD, OPTIONS"),
    ],
)
async def test_options_is_answered_by_the_kernel_without_running_the_file(make_site, serve, url, allow):
    site = _site(make_site)
    server = await serve(site)
    reply = await raw_exchange(server, request_bytes("OPTIONS", url))
    assert reply.status == 204
    assert reply.headers["allow"] == allow
    assert reply.body == b""
    assert _runs(site) == []


@pytest.mark.parametrize(
    ("method", "url"),
    [("DELETE", "/page.tmpl"), ("POST", "/doc.md"), ("PUT", "/plain.txt"), ("GET", "/postonly.dspy")],
)
async def test_a_method_the_file_does_not_answer_is_405_with_allow(make_site, serve, method, url):
    site = _site(make_site)
    server = await serve(site)
    reply = await raw_exchange(server, request_bytes(method, url))
    assert reply.status == 405
    assert "OPTIONS" in reply.headers["allow"]
    assert method.encode() in reply.body
    assert _runs(site) == []


async def test_a_declared_method_runs(make_site, serve):
    site = _site(make_site)
    server = await serve(site)
    reply = await raw_exchange(server, request_bytes("POST", "/postonly.dspy"))
    assert reply.status == 200
    assert _runs(site) == ["POST"]


async def test_a_typo_in_the_methods_declaration_is_a_500_not_an_open_door(make_site, serve):
    site = _site(make_site)
    (site / "wwwroot/typo.dspy").write_text("# methods: GETT\n" + SCRIPT)
    server = await serve(site)
    reply = await raw_exchange(server, request_bytes("GET", "/typo.dspy"))
    assert reply.status == 500
    reply.assert_clean()
    assert _runs(site) == []


CROSS_SITE_IMG = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}


@pytest.mark.parametrize(
    "headers",
    [
        CROSS_SITE_IMG,
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"},
    ],
)
async def test_cross_site_subresource_requests_to_scripts_are_refused_before_running(
    make_site, serve, headers
):
    site = _site(make_site)
    server = await serve(site)
    reply = await raw_exchange(server, request_bytes("GET", "/act.dspy", headers=headers))
    assert reply.status == 403
    assert b"cross-site" in reply.body
    assert _runs(site) == []


async def test_top_level_navigation_same_site_and_listed_paths_pass(make_site, serve):
    site = _site(make_site, cross_site_paths=["/public/api.dspy"])
    server = await serve(site)
    navigate = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    same = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    assert (await raw_exchange(server, request_bytes("GET", "/act.dspy", headers=navigate))).status == 200
    assert (await raw_exchange(server, request_bytes("GET", "/act.dspy", headers=same))).status == 200
    assert (await raw_exchange(server, request_bytes("GET", "/act.dspy"))).status == 200  # no metadata
    listed = await raw_exchange(server, request_bytes("GET", "/public/api.dspy", headers=CROSS_SITE_IMG))
    assert listed.status == 200
    # markdown pages are content, not code: another site may fetch them
    md = await raw_exchange(server, request_bytes("GET", "/doc.md", headers=CROSS_SITE_IMG))
    assert md.status == 200
    assert _runs(site) == ["GET", "GET", "GET", "GET"]


@pytest.mark.parametrize("url", ["/plain.txt", "/act.dspy", "/missing.html"])
async def test_every_answer_carries_the_security_headers_and_no_versions(make_site, serve, url):
    server = await serve(_site(make_site))
    reply = await raw_exchange(server, request_bytes("GET", url))
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert reply.headers["x-frame-options"] == "SAMEORIGIN"
    assert reply.headers["server"] == "ahcore"


async def test_security_headers_are_configurable(make_site, serve):
    site = _site(
        make_site,
        security_headers={"X-Frame-Options": None, "Content-Security-Policy": "default-src 'self'"},
        server_header="web",
    )
    server = await serve(site)
    reply = await raw_exchange(server, request_bytes("GET", "/plain.txt"))
    assert "x-frame-options" not in reply.headers
    assert reply.headers["content-security-policy"] == "default-src 'self'"
    assert reply.headers["server"] == "web"


async def test_errors_are_json_for_clients_that_ask_and_for_data_endpoints(make_site, serve):
    site = _site(make_site)
    server = await serve(site)
    reply = await raw_exchange(
        server, request_bytes("GET", "/missing.dspy", headers={"Accept": "application/json"})
    )
    assert reply.status == 404
    assert reply.headers["content-type"].startswith("application/json")
    assert json.loads(reply.body) == {"error": {"status": 404, "message": "Not Found"}}
    data = await raw_exchange(server, request_bytes("GET", "/nothing.sqlds"))
    assert data.status == 404
    assert json.loads(data.body)["error"]["status"] == 404
    bad = await raw_exchange(
        server, request_bytes("DELETE", "/page.tmpl", headers={"Accept": "application/json"})
    )
    assert bad.status == 405 and "allow" in bad.headers
    assert json.loads(bad.body)["error"]["status"] == 405


async def test_browsers_get_an_html_error_page_a_site_can_replace(make_site, serve):
    site = _site(make_site)
    server = await serve(site)
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Sec-Fetch-Dest": "document"}
    reply = await raw_exchange(server, request_bytes("GET", "/missing<b>.html", headers=browser))
    assert reply.status == 404
    assert reply.headers["content-type"].startswith("text/html")
    assert b"<h1>404 Not Found</h1>" in reply.body
    (site / "wwwroot/errors").mkdir()
    (site / "wwwroot/errors/404.html").write_text("<p>our own page</p>")
    own = await raw_exchange(server, request_bytes("GET", "/missing.html", headers=browser))
    assert own.status == 404
    assert own.body == b"<p>our own page</p>"


async def test_a_500_is_json_for_json_clients_with_an_id_and_no_traceback(make_site, serve):
    site = _site(make_site)
    (site / "wwwroot/boom.dspy").write_text("raise RuntimeError('secret-detail')")
    server = await serve(site)
    reply = await raw_exchange(
        server, request_bytes("GET", "/boom.dspy", headers={"Accept": "application/json"})
    )
    assert reply.status == 500
    reply.assert_clean()
    error = json.loads(reply.body)["error"]
    assert error["status"] == 500
    assert reply.headers["x-error-id"] in error["message"]
