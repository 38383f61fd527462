"""Scripts, templates and markdown facing hostile requests.

A visitor never sees a traceback or an exception message, a stuck script is
cut off with a 504, request values are escaped where they are rendered, and
request names cannot shadow namespace names.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from advkit import raw_exchange, request_bytes
from aiohttp import ClientSession

SECRET = "SECRET-7f3a9c"

FILES = {
    "wwwroot/boom.dspy": f'raise RuntimeError("{SECRET} db password hunter2")\n',
    "wwwroot/keyerror.dspy": f'return {{}}["{SECRET}"]\n',
    "wwwroot/syntax.dspy": f'x = "{SECRET}" +\n',
    "wwwroot/stuck.dspy": "await async_sleep(30)\nreturn 'never'\n",
    "wwwroot/quick.dspy": "return {'ok': True}\n",
    "wwwroot/ns.dspy": (
        "return {\n"
        "    'json_is_module': json.__name__ == 'json',\n"
        "    'request_method': request.method,\n"
        "    'params_kw_type': type(params_kw).__name__,\n"
        "    'get_user_callable': callable(get_user),\n"
        "    'params': {k: v for k, v in params_kw.items()},\n"
        "}\n"
    ),
    "wwwroot/page.tmpl": '<p>{{ params_kw.q }}</p><a href="?x={{ params_kw.q }}">l</a>',
    "wwwroot/ns.tmpl": "{{ request.method }}|{{ json.__name__ }}|{{ params_kw.request }}",
    "wwwroot/broken.tmpl": "{{ undefined_function_" + "xyz() }}",
    # includes a visitor may steer, or that point outside the roots
    "wwwroot/part.tmpl": "PART-OK",
    "wwwroot/dyn.tmpl": "[{% include params_kw.part %}]",
    "wwwroot/dyn.html.tmpl": "[{% include params_kw.part %}]",
    "wwwroot/inc/conf.tmpl": '{% include "../../conf/config.json" %}',
    "wwwroot/inc/encoded.tmpl": '{% include "%2e%2e/%2e%2e/conf/config.json" %}',
    "wwwroot/inc/passwd.tmpl": '{% include "/etc/passwd" %}',
    "wwwroot/inc/layout.tmpl": '{% extends "../../conf/config.json" %}',
    "conf/secret.txt": SECRET,
    "wwwroot/evil.md": (
        "# Title\n\n"
        "<script>alert('md-xss')</script>\n\n"
        "<img src=x onerror=alert(1)>\n\n"
        "[click](javascript:alert(1))\n\n"
        "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n\n"
        "![img](vbscript:msgbox)\n\n"
        '<a href="javascript:alert(2)">raw</a>\n\n'
        "<iframe src=//evil.example></iframe>\n"
    ),
}


def config(allow_html: bool = False) -> dict:
    return {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "processors": [[".dspy", "dspy"], [".tmpl", "tmpl"], [".md", "md"]],
            "cookie_secret": "adversarial-pages-secret-32-bytes",
        },
        "plugins": {"dspy": {"time_limit": 0.3}, "tmpl": True, "md": {"allow_html": allow_html}},
    }


@pytest.fixture
def site(make_site) -> Path:
    return make_site(config=config(), files=FILES)


@pytest.fixture
async def server(site, serve):
    return await serve(site)


async def get(server, target: str, **kw):
    return await raw_exchange(server, request_bytes("GET", target), **kw)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("url", ["/boom.dspy", "/keyerror.dspy", "/syntax.dspy", "/broken.tmpl"])
async def test_exceptions_reach_the_visitor_without_traceback_or_message(server, url, caplog):
    r = await get(server, url)
    assert r.status == 500, r.raw[:300]
    r.assert_clean()
    assert SECRET.encode() not in r.raw and b"hunter2" not in r.raw
    error_id = r.headers["x-error-id"]
    assert error_id.encode() in r.body
    assert r.body.startswith(b"500: Internal Server Error")
    # ... while the log has the id (and, for runtime errors, the traceback).
    assert error_id in caplog.text or url == "/syntax.dspy"


async def test_post_to_a_failing_script_changes_nothing(server, site):
    before = sorted(p.name for p in site.rglob("*"))
    r = await raw_exchange(
        server,
        request_bytes(
            "POST", "/boom.dspy", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}
        ),
    )
    assert r.status == 500
    r.assert_clean()
    assert sorted(p.name for p in site.rglob("*")) == before


INCLUDE_REFUSED = [
    "/inc/conf.tmpl",
    "/inc/encoded.tmpl",
    "/inc/passwd.tmpl",
    "/inc/layout.tmpl",
    "/dyn.tmpl?part=../../conf/config.json",
    "/dyn.tmpl?part=..%2f..%2fconf%2fsecret.txt",
    "/dyn.tmpl?part=/etc/passwd",
    "/dyn.tmpl?part=%2fetc%2fpasswd",
    "/dyn.tmpl?part=%2e%2e/conf/secret.txt",
    "/dyn.tmpl?part=/conf/secret.txt",
    "/dyn.tmpl?part=.hidden",
    "/dyn.tmpl?part=no-such-part.tmpl",
    "/dyn.html.tmpl?part=/etc/passwd",
]


@pytest.mark.parametrize("target", INCLUDE_REFUSED)
async def test_an_include_outside_the_roots_is_the_404_of_a_missing_file(server, site, target):
    before = sorted((p.name, p.stat().st_mtime_ns) for p in site.rglob("*") if p.is_file())
    missing = await get(server, "/no-such-page.tmpl")
    assert missing.status == 404
    r = await get(server, target)
    assert r.status == 404, (target, r.status, r.raw[:300])
    assert r.body == missing.body, target
    assert "x-error-id" not in r.headers
    r.assert_clean()
    for leak in (SECRET.encode(), b"cookie_secret", b"root:", b"TemplateNotFound", b"refused"):
        assert leak not in r.raw, (target, leak)
    # a JSON client gets the JSON form of the same 404
    j = await raw_exchange(
        server, request_bytes("GET", target, headers={"Accept": "application/json"})
    )
    assert j.status == 404 and json.loads(j.body) == {
        "error": {"status": 404, "message": "Not Found"}
    }
    # the page works with a part that is there
    ok = await get(server, "/dyn.tmpl?part=part.tmpl")
    assert ok.status == 200 and ok.body == b"[PART-OK]"
    after = sorted((p.name, p.stat().st_mtime_ns) for p in site.rglob("*") if p.is_file())
    assert [n for n, _ in after if n != ".session_secret"] == [
        n for n, _ in before if n != ".session_secret"
    ]


@pytest.mark.parametrize(
    "target",
    ["/nope.dspy", "/nope", "/%ff", "/a/../../x", "/boom.dspy%00", "/.env", "/conf/config.json"],
)
async def test_4xx_bodies_are_short_and_clean(server, target):
    r = await get(server, target)
    assert r.status in (400, 404), (target, r.status)
    r.assert_clean()
    assert len(r.body) < 200


async def test_static_file_refuses_other_methods_cleanly(server, site):
    (site / "wwwroot" / "s.txt").write_text("static")
    r = await raw_exchange(server, request_bytes("DELETE", "/s.txt"))
    assert r.status == 405
    r.assert_clean()
    assert (site / "wwwroot" / "s.txt").read_text() == "static"


# ------------------------------------------------------------------ time limit


async def test_stuck_script_is_cut_off_with_504(server):
    started = time.monotonic()
    r = await get(server, "/stuck.dspy", timeout=10)
    elapsed = time.monotonic() - started
    assert r.status == 504, r.raw[:300]
    assert elapsed < 3, elapsed
    r.assert_clean()
    # The server is still healthy afterwards.
    r = await get(server, "/quick.dspy")
    assert r.status == 200 and json.loads(r.body) == {"ok": True}


async def test_many_stuck_scripts_do_not_starve_others(server):
    stuck = [asyncio.create_task(get(server, "/stuck.dspy", timeout=10)) for _ in range(20)]
    await asyncio.sleep(0.05)
    r = await get(server, "/quick.dspy")
    assert r.status == 200
    assert {x.status for x in await asyncio.gather(*stuck)} == {504}


# ------------------------------------------------------------------ escaping

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'onmouseover='alert(1)",
    "{{ 7*7 }}",
    "{% raw %}x",
    "&lt;already&gt;",
]


@pytest.mark.parametrize("value", HOSTILE)
async def test_request_values_are_escaped_in_templates(server, value):
    r = await get(server, "/page.tmpl?q=" + quote(value, safe=""))
    assert r.status == 200, r.raw[:300]
    assert b"<script" not in r.body and b"<img" not in r.body
    assert b'"' not in r.body.replace(b'href="', b"").replace(b'">l', b"")
    assert b"49" not in r.body  # no template evaluation of request values
    assert "onerror=" not in r.text or "&lt;img" in r.text or "&#34;" in r.text


async def test_request_values_are_escaped_when_posted_as_json(server):
    body = json.dumps({"q": "<script>alert(1)</script>"}).encode()
    r = await raw_exchange(
        server, request_bytes("POST", "/page.tmpl", body, {"Content-Type": "application/json"})
    )
    assert r.status == 200
    assert b"<script>" not in r.body and b"&lt;script&gt;" in r.body


@pytest.mark.parametrize("allow_html", [False, True])
async def test_hostile_html_in_markdown_is_neutralised(make_site, serve, allow_html):
    site = make_site(config=config(allow_html), files=FILES)
    server = await serve(site)
    r = await get(server, "/evil.md")
    assert r.status == 200, r.raw[:300]
    body = r.text.lower()
    assert "<script" not in body
    assert "<iframe" not in body
    assert "#harmful-link" in body
    assert 'href="javascript:' not in body and "href='javascript:" not in body
    assert 'href="data:' not in body and 'src="vbscript:' not in body
    assert '<img src="x" onerror' not in body and "<img src=x onerror" not in body
    assert " onerror=" not in body.replace("&lt;img src=x onerror=", "")


# ------------------------------------------------------------------ shadowing

SHADOW_QUERY = "json=1&params_kw=x&request=y&get_user=z&remember_user=w&__builtins__=b&str=s"


async def test_query_names_cannot_shadow_namespace_names(server):
    r = await get(server, "/ns.dspy?" + SHADOW_QUERY)
    assert r.status == 200, r.raw[:300]
    data = json.loads(r.body)
    assert data["json_is_module"] is True
    assert data["request_method"] == "GET"
    assert data["params_kw_type"] == "DictObject"
    assert data["get_user_callable"] is True
    assert data["params"]["json"] == "1" and data["params"]["request"] == "y"


async def test_json_body_names_cannot_shadow_namespace_names(server):
    body = json.dumps({"json": 1, "request": 2, "params_kw": 3, "get_user": 4}).encode()
    r = await raw_exchange(
        server, request_bytes("POST", "/ns.dspy", body, {"Content-Type": "application/json"})
    )
    assert r.status == 200
    data = json.loads(r.body)
    assert data["json_is_module"] and data["request_method"] == "POST"
    assert data["get_user_callable"] is True
    assert data["params"]["params_kw"] == 3


async def test_query_names_cannot_shadow_template_names(server):
    r = await get(server, "/ns.tmpl?" + SHADOW_QUERY)
    assert r.status == 200
    assert r.text == "GET|json|y"


async def test_cookies_and_headers_are_not_parameters(server):
    async with ClientSession() as http:
        url = f"http://127.0.0.1:{server.port}/ns.dspy?a=1"
        async with http.get(url, headers={"Cookie": "json=1; q=2", "X-Q": "3"}) as resp:
            data = await resp.json()
    assert data["params"] == {"a": "1"}
