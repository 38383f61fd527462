"""ahcore-bui through a running site: wrapped and bare pages, layouts, escaping, methods."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from ahcore_bui import wants_bare

PROCESSORS = [[".tmpl", "tmpl"], [".ui", "bui"], [".app", "app"]]

HEADER = '<html><head><title>{{ params_kw.title or "bricks" }}</title></head><body>'
FOOTER = "<footer>{{ request.path }}</footer></body></html>"
APP = '<html><body><script>bricks.run({"widget": ${appdic}$});</script></body></html>'

FILES: dict[str, str] = {
    "wwwroot/bricks/header.tmpl": HEADER,
    "wwwroot/bricks/footer.tmpl": FOOTER,
    "wwwroot/bricks/bricksapp.tmpl": APP,
    # the recommended way to put a value into JSON: |tojson
    "wwwroot/pages/hello.ui": '{"widgettype": "Text", "options": {"text": {{ params_kw.q|tojson }}}}',
    "wwwroot/pages/escaped.ui": "<p>{{ params_kw.q }}</p>",
    "wwwroot/pages/part.tmpl": "PART {{ params_kw.q }}",
    "wwwroot/pages/includes.ui": '[{% include "part.tmpl" %}]',
    "wwwroot/pages/main.app": '{"widgettype": "VBox", "id": {{ params_kw.id|tojson }}}',
    "wwwroot/uses.tmpl": '{{ path_call("/pages/hello.ui", q="called")|safe }}',
    "wwwroot/_modules/shop/page.ui": '{"widgettype": "Shop"}',
}


def site_config(processors: list[list[str]] = PROCESSORS) -> dict[str, Any]:
    return {"website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": processors}}


@pytest.fixture
def site(make_site: Any) -> Path:
    path = make_site(config=site_config(), files=FILES)
    # A module-based site: wwwroot/<module> is a link to the module's own folder
    # (kept inside the root here: links out of a root are the resolver's business).
    os.symlink(path / "wwwroot" / "_modules" / "shop", path / "wwwroot" / "shop")
    return path


async def test_a_page_is_wrapped_in_header_and_footer(site, ahcore_client):
    client = await ahcore_client(site)
    resp = await client.get("/pages/hello.ui", params={"q": "hi", "title": "Shop"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    page = '{"widgettype": "Text", "options": {"text": "hi"}}'
    # The layout templates see the page's params_kw and request.
    expected = (
        "<html><head><title>Shop</title></head><body>"
        + page
        + "<footer>/pages/hello.ui</footer></body></html>"
    )
    assert await resp.text() == expected


@pytest.mark.parametrize("value", ["1", "2", "true"])
async def test_webbricks_asks_for_the_bare_output_as_json(site, ahcore_client, value):
    client = await ahcore_client(site)
    resp = await client.get("/pages/hello.ui", params={"q": "hi", "_webbricks_": value})
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await resp.json() == {"widgettype": "Text", "options": {"text": "hi"}}


async def test_bricks_loader_posting_json_gets_the_bare_output(site, ahcore_client):
    client = await ahcore_client(site)
    resp = await client.post("/pages/hello.ui", json={"_webbricks_": 1, "q": "posted"})
    assert await resp.json() == {"widgettype": "Text", "options": {"text": "posted"}}


@pytest.mark.parametrize("value", ["0", "", " 0 "])
async def test_webbricks_zero_or_empty_is_wrapped(site, ahcore_client, value):
    client = await ahcore_client(site)
    resp = await client.get("/pages/hello.ui", params={"_webbricks_": value})
    assert resp.content_type == "text/html"
    assert (await resp.text()).startswith("<html><head><title>bricks</title>")


def test_wants_bare_compares_text_and_ints_alike():
    for value in (None, "", "0", " 0 ", 0, False, [], ["1", "0"]):
        assert wants_bare(value) is False, value
    for value in ("1", 1, 2, "yes", True, ["0", "1"]):
        assert wants_bare(value) is True, value


async def test_bare_output_that_is_not_json_is_html(site, ahcore_client):
    client = await ahcore_client(site)
    resp = await client.get("/pages/escaped.ui", params={"q": "x", "_webbricks_": "1"})
    assert resp.content_type == "text/html"
    assert await resp.text() == "<p>x</p>"


async def test_autoescape_as_for_tmpl_and_tojson_stays_valid_json(site, ahcore_client):
    client = await ahcore_client(site)
    hostile = '<script>alert("x")</script>'
    resp = await client.get("/pages/escaped.ui", params={"q": hostile, "_webbricks_": "1"})
    assert await resp.text() == "<p>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</p>"
    resp = await client.get("/pages/hello.ui", params={"q": hostile, "_webbricks_": "1"})
    raw = await resp.text()
    assert "<script>" not in raw  # safe inside the HTML page too
    assert json.loads(raw)["options"]["text"] == hostile
    # Wrapped, the same value cannot close the page's markup either.
    resp = await client.get("/pages/hello.ui", params={"q": hostile})
    assert (await resp.text()).count("<script>") == 0


async def test_includes_resolve_beside_the_page(site, ahcore_client):
    client = await ahcore_client(site)
    resp = await client.get("/pages/includes.ui", params={"q": "<i>", "_webbricks_": 1})
    assert await resp.text() == "[PART &lt;i&gt;]"


async def test_app_page_is_put_into_bricksapp(site, ahcore_client):
    client = await ahcore_client(site)
    resp = await client.get("/pages/main.app", params={"id": "m1"})
    assert resp.content_type == "text/html"
    assert await resp.text() == (
        '<html><body><script>bricks.run({"widget": {"widgettype": "VBox", "id": "m1"}});'
        "</script></body></html>"
    )
    resp = await client.get("/pages/main.app", params={"id": "m1", "_webbricks_": 1})
    assert await resp.json() == {"widgettype": "VBox", "id": "m1"}


async def test_page_in_a_symlinked_module_folder(site, ahcore_client):
    client = await ahcore_client(site)
    resp = await client.get("/shop/page.ui")
    assert resp.status == 200
    text = await resp.text()
    assert '{"widgettype": "Shop"}' in text and text.endswith("</html>")


async def test_path_call_of_a_page_returns_its_bare_output(site, ahcore_client):
    client = await ahcore_client(site)
    resp = await client.get("/uses.tmpl")
    assert json.loads(await resp.text()) == {"widgettype": "Text", "options": {"text": "called"}}


async def test_methods(site, ahcore_client):
    client = await ahcore_client(site)
    for method in ("PUT", "DELETE", "PATCH"):
        resp = await client.request(method, "/pages/hello.ui")
        assert resp.status == 405, method
        allow = set(resp.headers["Allow"].replace(" ", "").split(","))
        assert allow == {"GET", "HEAD", "POST", "OPTIONS"}
    resp = await client.options("/pages/hello.ui")
    assert resp.status == 204  # answered by the kernel, nothing rendered
    resp = await client.head("/pages/hello.ui")
    assert resp.status == 200 and await resp.read() == b""


async def test_a_missing_layout_is_a_500_naming_it(make_site, ahcore_client, caplog):
    files = {k: v for k, v in FILES.items() if k != "wwwroot/bricks/footer.tmpl"}
    site = make_site(config=site_config(), files=files)
    with caplog.at_level(logging.WARNING, logger="ahcore_bui"):
        client = await ahcore_client(site)
        started = [r for r in caplog.records if "/bricks/footer.tmpl" in r.getMessage()]
        assert len(started) == 1 and started[0].levelno == logging.WARNING  # once, at start
        resp = await client.get("/pages/hello.ui")
    assert resp.status == 500
    text = await resp.text()
    assert "/bricks/footer.tmpl" in text and "/bricks/header.tmpl" not in text
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "/pages/hello.ui" in failed[-1].getMessage()
    assert "/bricks/footer.tmpl" in failed[-1].getMessage()
    # The bricks loader's requests do not need the layout.
    resp = await client.get("/pages/hello.ui", params={"_webbricks_": 1, "q": "ok"})
    assert resp.status == 200 and (await resp.json())["options"]["text"] == "ok"
    # An app page has its own layout, which is there.
    assert (await client.get("/pages/main.app")).status == 200


async def test_a_layout_no_processor_serves_is_a_500(make_site, ahcore_client):
    # .tmpl not mapped: the header would be a raw file, never rendered.
    site = make_site(config=site_config([[".ui", "bui"]]), files=FILES)
    client = await ahcore_client(site)
    resp = await client.get("/pages/escaped.ui")
    assert resp.status == 500
    assert "/bricks/header.tmpl" in await resp.text()


async def test_a_changed_page_is_used_on_the_next_request(site, ahcore_client):
    client = await ahcore_client(site)
    page = site / "wwwroot" / "pages" / "escaped.ui"
    assert await (await client.get("/pages/escaped.ui?_webbricks_=1&q=a")).text() == "<p>a</p>"
    page.write_text("<b>{{ params_kw.q }}</b>")
    st = page.stat()
    os.utime(page, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert await (await client.get("/pages/escaped.ui?_webbricks_=1&q=a")).text() == "<b>a</b>"
