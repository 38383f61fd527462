"""ahcore-md through a running site: rendering, links per host, hostile HTML, caching, layout."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import mistune
import pytest
from ahcore_md import is_safe_url, sanitize_html

from ahcore.api import PluginError

PAGE = """\
# Guide & tips

Intro with ~~old~~ text.

## Setup

| name | value |
|:-----|------:|
| a    | 1     |

```python
print("<hi>")
```

## Setup

- [next](next.md)
- [up](../index.md?x=1#top)
- [root](/about.md)
- [ext](https://example.org/x)
- [mail](mailto:me@example.org)
- [anchor](#setup)
- ![logo](img/logo.png)
"""

HOSTILE = """\
# Hostile

<script>alert(1)</script>

Inline <img src=x onerror=alert(2)> and <a href="javascript:alert(3)" onclick="alert(4)">raw</a>.

<div onmouseover="alert(5)"><b>bold</b><iframe src="https://evil.example"></iframe></div>

[x](javascript:alert(6)) [y](JaVaScRiPt:alert(7)) [z](java%0Ascript:alert(8))
[v](vbscript:msgbox(9)) ![d](data:image/png;base64,AAAA) [e](jav&#x61;script:alert(10))
<javascript:alert(11)>

<img src="ok.png" alt="fine"> <a href="jav&#x61;script:alert(12)">enc</a>
<svg><script>alert(13)</script></svg>
"""


def config(md_settings: dict[str, Any], with_tmpl: bool = True) -> dict[str, Any]:
    processors = [[".md", "md"]] + ([[".tmpl", "tmpl"]] if with_tmpl else [])
    plugins: dict[str, Any] = {"md": md_settings}
    if with_tmpl:
        plugins["tmpl"] = True
    return {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""], ["$[workdir]$/other", "/other"]],
            "processors": processors,
        },
        "plugins": plugins,
    }


FILES = {
    "wwwroot/docs/guide.md": PAGE,
    "wwwroot/hostile.md": HOSTILE,
    "wwwroot/plain.md": "no heading here\n",
    "wwwroot/layout.tmpl": (
        "<html><head><title>{{ params_kw.title }}</title></head>"
        "<body><nav>{{ request.path }}</nav><main>{{ params_kw.content }}</main></body></html>"
    ),
    "other/page.md": "# Other\n\n[sib](sib.md)\n",
}


@pytest.fixture
def site_factory(make_site: Any) -> Any:
    def make(md_settings: dict[str, Any] | None = None, with_tmpl: bool = True) -> Path:
        return make_site(config=config(md_settings or {}, with_tmpl), files=FILES)

    return make


@pytest.fixture
async def client(ahcore_client: Any, site_factory: Any) -> Any:
    return await ahcore_client(site_factory({"allow_html": False}))


def bump(path: Path, text: str) -> None:
    """Rewrite ``path`` and move its mtime forward, as an editor saving it would."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def origin(client: Any) -> str:
    return f"http://{client.server.host}:{client.server.port}"


# What a browser opening a page sends (Firefox's Accept); see test_negotiation.py.
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Dest": "document",
}


async def browse(client: Any, url: str, headers: dict[str, str] | None = None) -> Any:
    """GET ``url`` as a browser opening it (the rendered page, not the source)."""
    return await client.get(url, headers={**BROWSER, **(headers or {})})


# ---------------------------------------------------------------- rendering


async def test_page_is_a_complete_html_document(client: Any) -> None:
    resp = await browse(client, "/docs/guide.md")
    assert resp.status == 200
    assert resp.content_type == "text/html" and resp.charset == "utf-8"
    text = await resp.text()
    assert text.startswith("<!doctype html>")
    assert '<meta charset="utf-8">' in text
    assert "<title>Guide &amp; tips</title>" in text


async def test_tables_fenced_code_strikethrough_and_heading_ids(client: Any) -> None:
    text = await (await browse(client, "/docs/guide.md")).text()
    assert "<table>" in text and '<th style="text-align:left">name</th>' in text
    assert '<td style="text-align:right">1</td>' in text
    assert '<pre><code class="language-python">print(&quot;&lt;hi&gt;&quot;)' in text
    assert "<del>old</del>" in text
    assert '<h1 id="guide-tips">Guide &amp; tips</h1>' in text
    # Repeated headings get unique ids.
    assert '<h2 id="setup">Setup</h2>' in text
    assert '<h2 id="setup-1">Setup</h2>' in text


async def test_title_falls_back_to_file_name(client: Any) -> None:
    text = await (await browse(client, "/plain.md")).text()
    assert "<title>plain</title>" in text


# ---------------------------------------------------------------- links


async def test_links_become_absolute_with_the_request_origin(client: Any) -> None:
    text = await (await browse(client, "/docs/guide.md")).text()
    base = origin(client)
    assert f'href="{base}/docs/next.md"' in text
    assert f'href="{base}/index.md?x=1#top"' in text
    assert f'href="{base}/about.md"' in text
    assert f'src="{base}/docs/img/logo.png"' in text
    assert 'href="https://example.org/x"' in text
    assert 'href="mailto:me@example.org"' in text
    assert 'href="#setup"' in text


async def test_links_follow_the_host_the_client_used(client: Any) -> None:
    one = await (await browse(client, "/docs/guide.md", headers={"Host": "one.test:8080"})).text()
    two = await (await browse(client, "/docs/guide.md", headers={"Host": "two.test"})).text()
    assert 'href="http://one.test:8080/docs/next.md"' in one
    assert 'href="http://two.test/docs/next.md"' in two
    assert "one.test" not in two


async def test_a_hostile_host_header_cannot_break_out_of_attributes(client: Any) -> None:
    text = await (await browse(client, "/docs/guide.md", headers={"Host": 'h"><b>x'})).text()
    assert '"><b>x' not in text


async def test_links_in_a_prefixed_root_are_relative_to_its_url(client: Any) -> None:
    text = await (await browse(client, "/other/page.md")).text()
    assert f'href="{origin(client)}/other/sib.md"' in text


# ---------------------------------------------------------------- hostile content


class TagCollector(HTMLParser):
    """Every real start tag of a page, as a browser would parse it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def script_vectors(page: str) -> list[str]:
    """What in ``page`` could run script: script-ish tags, handlers, bad URLs."""
    collector = TagCollector()
    collector.feed(page)
    found = []
    for tag, attrs in collector.tags:
        if tag in ("script", "iframe", "svg", "object", "embed"):
            found.append(tag)
        for name, value in attrs:
            if name.startswith("on"):
                found.append(f"{tag}.{name}")
            if name in ("href", "src") and re.match(
                r"\s*(javascript|vbscript|data):", value or "", re.IGNORECASE
            ):
                found.append(f"{tag}.{name}={value}")
    return found


@pytest.mark.parametrize("allow_html", [False, True])
async def test_hostile_markdown_is_neutralised(
    ahcore_client: Any, site_factory: Any, allow_html: bool
) -> None:
    client = await ahcore_client(site_factory({"allow_html": allow_html}))
    text = await (await browse(client, "/hostile.md")).text()
    assert script_vectors(text) == []
    assert text.count('="#harmful-link"') == 7  # six links and the data: image
    if allow_html:
        assert "<b>bold</b>" in text
        assert '<img src="ok.png" alt="fine" />' in text
        assert "alert(1)" not in text and "alert(13)" not in text  # script bodies dropped
    else:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "<b>bold</b>" not in text


def test_sanitizer_keeps_structure_and_drops_script() -> None:
    out = sanitize_html(
        '<p class="x" style="color:red" onclick="y">a &amp; b<script>bad()</script></p>'
        '<details open><summary>s</summary></details><form><input value="v">t</form>'
    )
    assert out == '<p class="x">a &amp; b</p><details open="open"><summary>s</summary></details>t'


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("page.md", True),
        ("/a/b", True),
        ("#x", True),
        ("https://e.org", True),
        ("mailto:a@b.c", True),
        ("javascript:alert(1)", False),
        (" JAVASCRIPT:x", False),
        ("java\tscript:x", False),
        ("javascript%3Ax", False),
        ("data:text/html,x", False),
        ("vbscript:x", False),
    ],
)
def test_url_safety(url: str, safe: bool) -> None:
    assert is_safe_url(url) is safe


# ---------------------------------------------------------------- caching and changes


async def test_rendering_is_cached_per_change(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_parse = mistune.Markdown.parse

    def counting_parse(self: mistune.Markdown, s: str, state: Any = None) -> Any:
        calls.append(s)
        return real_parse(self, s, state)

    monkeypatch.setattr(mistune.Markdown, "parse", counting_parse)
    for host in ("a.test", "b.test", "a.test"):
        resp = await browse(client, "/docs/guide.md", headers={"Host": host})
        assert f"http://{host}/docs/next.md" in await resp.text()
    assert len(calls) == 1


async def test_changed_markdown_is_served_fresh(ahcore_client: Any, site_factory: Any) -> None:
    site = site_factory()
    client = await ahcore_client(site)
    assert '<h1 id="plain">' not in await (await browse(client, "/plain.md")).text()
    bump(site / "wwwroot" / "plain.md", "# Plain\n\nnew text\n")
    text = await (await browse(client, "/plain.md")).text()
    assert '<h1 id="plain">Plain</h1>' in text and "new text" in text


# ---------------------------------------------------------------- layout template


async def test_layout_template_wraps_the_page(ahcore_client: Any, site_factory: Any) -> None:
    client = await ahcore_client(site_factory({"template": "/layout.tmpl"}))
    resp = await browse(client, "/docs/guide.md")
    assert resp.status == 200 and resp.content_type == "text/html"
    text = await resp.text()
    assert text.startswith("<html><head><title>Guide &amp; tips</title>")
    assert "<nav>/docs/guide.md</nav>" in text
    # The body is inserted as HTML, not escaped, with links for this host.
    assert '<main><h1 id="guide-tips">Guide &amp; tips</h1>' in text
    assert f'href="{origin(client)}/docs/next.md"' in text
    assert "<!doctype html>" not in text


async def test_layout_change_takes_effect(ahcore_client: Any, site_factory: Any) -> None:
    site = site_factory({"template": "/layout.tmpl"})
    client = await ahcore_client(site)
    await browse(client, "/plain.md")
    bump(site / "wwwroot" / "layout.tmpl", "<section>{{ params_kw.content }}</section>")
    text = await (await browse(client, "/plain.md")).text()
    assert text == "<section><p>no heading here</p>\n</section>"


async def test_layout_is_ignored_without_a_template_processor(
    ahcore_client: Any, site_factory: Any
) -> None:
    client = await ahcore_client(site_factory({"template": "/layout.tmpl"}, with_tmpl=False))
    text = await (await browse(client, "/docs/guide.md")).text()
    assert text.startswith("<!doctype html>")
    assert "<nav>" not in text


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"allow_html": "yes"}, "plugins.md.allow_html"),
        ({"template": ["/layout.tmpl"]}, "plugins.md.template"),
    ],
)
async def test_wrong_settings_stop_start_up(
    ahcore_client: Any, site_factory: Any, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(PluginError, match=message):
        await ahcore_client(site_factory(settings))


async def test_markdown_can_be_path_called_from_a_template(
    ahcore_client: Any, make_site: Any
) -> None:
    site = make_site(
        config=config({}),
        files={
            "wwwroot/a.md": "# A\n\n[b](b.md)",
            "wwwroot/embed.tmpl": "{{ path_call('a.md') | length > 0 }}",
        },
    )
    client = await ahcore_client(site)
    assert await (await client.get("/embed.tmpl")).text() == "True"
