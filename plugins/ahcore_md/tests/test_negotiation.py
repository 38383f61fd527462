"""Markdown by content negotiation (SPEC §15): the page for browsers, the source for scripts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ahcore_md.processor import negotiate
from ahcore_md.source import rewrite_source
from ahcore_md.urls import LinkRewriter

from ahcore.api import PluginError

SOURCE = """\
# Guide

See [next](next.md) and [up](../index.md "Up") or ![logo](img/logo.png).
Two on a line: [a](a.md) [b](/b.md) and an [anchor](#guide) and [ext](https://e.org/x).
Nested [text [with] brackets](deep/page.md) and <https://auto.example>.
Bad: [x](javascript:alert(1)) [spaced](<my file.md>)

`[not](a-link.md)` in code, ``[nor `this`](one.md)``.

```markdown
[inside](fence.md)
```

[ref]: refs/target.md "Title"
[abs]: https://example.org/r
"""

FIREFOX = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
}
FETCH = {"Accept": "*/*", "Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors"}


def config(md: Any = True) -> dict[str, Any]:
    return {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""], ["$[workdir]$/other", "/other"]],
            "processors": [[".md", "md"]],
        },
        "plugins": {"md": md},
    }


FILES = {"wwwroot/docs/guide.md": SOURCE, "other/page.md": "[sib](sib.md)\n"}


@pytest.fixture
async def client(make_site: Any, ahcore_client: Any) -> Any:
    return await ahcore_client(make_site(config=config(), files=FILES))


def origin(client: Any) -> str:
    return f"http://{client.server.host}:{client.server.port}"


async def test_a_browser_opening_the_page_gets_html(client: Any) -> None:
    r = await client.get("/docs/guide.md", headers=FIREFOX)
    assert r.status == 200
    assert r.content_type == "text/html" and r.charset == "utf-8"
    assert (await r.text()).startswith("<!doctype html>")
    assert r.headers["Vary"] == "Accept, Sec-Fetch-Dest"


async def test_fetch_gets_the_source_with_absolute_links(client: Any) -> None:
    r = await client.get("/docs/guide.md", headers=FETCH)
    assert r.status == 200
    assert r.content_type == "text/markdown" and r.charset == "utf-8"
    assert r.headers["Vary"] == "Accept, Sec-Fetch-Dest"
    base = origin(client)
    assert await r.text() == SOURCE.replace("(next.md)", f"({base}/docs/next.md)").replace(
        '(../index.md "Up")', f'({base}/index.md "Up")'
    ).replace("(img/logo.png)", f"({base}/docs/img/logo.png)").replace(
        "(a.md)", f"({base}/docs/a.md)"
    ).replace("(/b.md)", f"({base}/b.md)").replace(
        "(deep/page.md)", f"({base}/docs/deep/page.md)"
    ).replace("(javascript:alert(1))", "(#harmful-link)").replace(
        "(<my file.md>)", f"(<{base}/docs/my file.md>)"
    ).replace("]: refs/target.md", f"]: {base}/docs/refs/target.md")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (FIREFOX, "text/html"),
        ({"Accept": "text/html"}, "text/html"),  # an Accept naming text/html
        ({"Sec-Fetch-Dest": "document", "Accept": "*/*"}, "text/html"),
        ({"Sec-Fetch-Dest": "iframe", "Accept": "*/*"}, "text/html"),
        # htmx and friends fetch with Accept: text/html and want HTML
        ({"Sec-Fetch-Dest": "empty", "Accept": "text/html, */*;q=0.1"}, "text/html"),
        (FETCH, "text/markdown"),
        ({"Accept": "*/*"}, "text/markdown"),  # fetch() without fetch metadata
        ({"Accept": "text/markdown"}, "text/markdown"),
        ({"Accept": "text/plain, application/json"}, "text/markdown"),
        ({"Accept": "text/html;q=0, */*"}, "text/markdown"),  # refuses HTML
        ({"Sec-Fetch-Dest": "empty"}, "text/markdown"),
    ],
)
async def test_negotiation(client: Any, headers: dict[str, str], expected: str) -> None:
    r = await client.get("/docs/guide.md", headers=headers)
    assert r.status == 200
    assert r.content_type == expected


async def test_no_accept_header_at_all_gets_html(make_site: Any, ahcore_server: Any) -> None:
    # A raw request: client libraries add an Accept of their own.
    server = await ahcore_server(make_site(config=config(), files=FILES))
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET /docs/guide.md HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n")
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Type: text/html; charset=utf-8" in head
    assert b"Vary: Accept, Sec-Fetch-Dest" in head
    assert body.startswith(b"<!doctype html>")


async def test_source_links_follow_the_host_and_the_root_prefix(client: Any) -> None:
    one = await (await client.get("/docs/guide.md", headers={**FETCH, "Host": "one.test"})).text()
    two = await (
        await client.get("/other/page.md", headers={**FETCH, "Host": "two.test:81"})
    ).text()
    assert "[next](http://one.test/docs/next.md)" in one
    assert two == "[sib](http://two.test:81/other/sib.md)\n"


async def test_a_hostile_host_cannot_end_a_source_link(client: Any) -> None:
    # A Host that is no host name is refused where the site's absolute URLs are made.
    resp = await client.get("/other/page.md", headers={**FETCH, "Host": "h)x(y"})
    assert resp.status == 400 and "sib" not in await resp.text()


async def test_head_answers_like_get(client: Any) -> None:
    for headers, kind in ((FETCH, "text/markdown"), (FIREFOX, "text/html")):
        r = await client.head("/docs/guide.md", headers=headers)
        assert r.status == 200 and r.content_type == kind
        assert await r.read() == b""


@pytest.mark.parametrize(
    ("mode", "fetch_gets", "browser_gets"),
    [("html", "text/html", "text/html"), ("source", "text/markdown", "text/markdown")],
)
async def test_mode_forces_one_answer(
    make_site: Any, ahcore_client: Any, mode: str, fetch_gets: str, browser_gets: str
) -> None:
    client = await ahcore_client(make_site(config=config({"mode": mode}), files=FILES))
    fetched = await client.get("/docs/guide.md", headers=FETCH)
    browsed = await client.get("/docs/guide.md", headers=FIREFOX)
    assert (fetched.content_type, browsed.content_type) == (fetch_gets, browser_gets)
    assert "Vary" not in fetched.headers and "Vary" not in browsed.headers  # nothing varies


@pytest.mark.parametrize("mode", ["markdown", "", None, True, ["html"]])
async def test_a_bad_mode_stops_start_up(make_site: Any, ahcore_client: Any, mode: Any) -> None:
    with pytest.raises(PluginError, match="plugins.md.mode"):
        await ahcore_client(make_site(config=config({"mode": mode}), files=FILES))


async def test_path_call_still_gets_the_rendered_page(make_site: Any, ahcore_client: Any) -> None:
    pytest.importorskip("ahcore_tmpl")
    cfg = config()
    cfg["website"]["processors"].append([".tmpl", "tmpl"])
    cfg["plugins"]["tmpl"] = True
    files = {**FILES, "wwwroot/embed.tmpl": "{{ path_call('docs/guide.md')[:9] }}"}
    client = await ahcore_client(make_site(config=cfg, files=files))
    assert await (await client.get("/embed.tmpl", headers=FETCH)).text() == "&lt;!doctype"


@pytest.mark.parametrize(
    ("headers", "answer"),
    [
        ({}, "html"),
        ({"Accept": ""}, "html"),
        ({"Accept": "TEXT/HTML"}, "html"),
        ({"Accept": "text/html;q=0.0"}, "source"),
        ({"Accept": "text/html;q=bogus"}, "source"),
        ({"Accept": "text/htmlx"}, "source"),
        ({"Sec-Fetch-Dest": "image", "Accept": "image/*"}, "source"),
        ({"Sec-Fetch-Dest": "Document"}, "html"),
    ],
)
def test_negotiate(headers: dict[str, str], answer: str) -> None:
    assert negotiate(headers) == answer
    assert negotiate(headers, "html") == "html" and negotiate(headers, "source") == "source"


def test_rewrite_source_leaves_everything_else_alone() -> None:
    rewrite = LinkRewriter("/d/p.md", "T")
    assert rewrite_source("[a](b.md) x [c](d.md)\n", rewrite) == "[a](T/d/b.md) x [c](T/d/d.md)\n"
    assert rewrite_source("a ] ( b [c] (d)", rewrite) == "a ] ( b [c] (d)"
    assert rewrite_source("[x](y.md 'single') [z](w.md (paren))", rewrite) == (
        "[x](T/d/y.md 'single') [z](T/d/w.md (paren))"
    )
    assert rewrite_source("[p](a_(b).md)", rewrite) == "[p](T/d/a_(b).md)"
    assert rewrite_source("\\[no](x.md)", rewrite) == "\\[no](x.md)"
    assert rewrite_source("~~~\n[in](x.md)\n~~~\n[out](x.md)", rewrite) == (
        "~~~\n[in](x.md)\n~~~\n[out](T/d/x.md)"
    )
    assert (
        rewrite_source("````\n```\n[in](x.md)\n````\n", rewrite) == "````\n```\n[in](x.md)\n````\n"
    )
    assert rewrite_source("`unclosed [a](b.md)", rewrite) == "`unclosed [a](T/d/b.md)"
    assert rewrite_source("[e]()", rewrite) == "[e]()"
    assert rewrite_source("\r\n[a](b.md)\r\n", rewrite) == "\r\n[a](T/d/b.md)\r\n"
