"""ahcore.datatable: who gets the HTML page, and what the page holds."""

from __future__ import annotations

import datetime
import decimal
import re
from html import unescape

import pytest
from aiohttp.test_utils import make_mocked_request

from ahcore.api import DataPage, FormField, TableColumn, render_data_page, sort_keys, wants_html

CHROME = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize(
    "method, url, headers, html",
    [
        ("GET", "/a.sqlds", {"Sec-Fetch-Dest": "document", "Accept": CHROME}, True),
        ("GET", "/a.sqlds", {"Sec-Fetch-Dest": "document"}, True),
        ("HEAD", "/a.sqlds", {"Sec-Fetch-Dest": "document"}, True),
        ("GET", "/a.sqlds", {"Sec-Fetch-Dest": "empty", "Accept": "text/html"}, False),
        ("GET", "/a.sqlds", {"Sec-Fetch-Dest": "iframe", "Accept": CHROME}, False),
        ("GET", "/a.sqlds", {"Sec-Fetch-Dest": "document", "Accept": "application/json"}, True),
        ("GET", "/a.sqlds", {"Accept": CHROME}, True),
        ("GET", "/a.sqlds", {"Accept": "text/html"}, True),
        ("GET", "/a.sqlds", {"Accept": "application/xhtml+xml"}, True),
        ("GET", "/a.sqlds", {"Accept": "application/json;q=0.5, text/html"}, True),
        ("GET", "/a.sqlds", {"Accept": "application/json, text/html"}, False),
        ("GET", "/a.sqlds", {"Accept": "text/html;q=0, application/json"}, False),
        ("GET", "/a.sqlds", {"Accept": "*/*"}, False),
        ("GET", "/a.sqlds", {"Accept": ""}, False),
        ("GET", "/a.sqlds", {}, False),
        ("POST", "/a.sqlds", {"Sec-Fetch-Dest": "document", "Accept": CHROME}, False),
        ("GET", "/a.sqlds?_format=json", {"Sec-Fetch-Dest": "document"}, False),
        ("GET", "/a.sqlds?_format=html", {}, True),
        ("GET", "/a.sqlds?_format=xml", {"Sec-Fetch-Dest": "document"}, True),
    ],
)
def test_who_gets_html(method: str, url: str, headers: dict[str, str], html: bool) -> None:
    assert wants_html(make_mocked_request(method, url, headers=headers)) is html


def test_sort_keys_reads_what_data_sources_accept() -> None:
    assert sort_keys("price desc, id") == [("price", True), ("id", False)]
    assert sort_keys(["a", "b DESC"]) == [("a", False), ("b", True)]
    assert sort_keys(None) == sort_keys("") == []
    assert sort_keys("a sideways,b c d") == []


def page(**kw) -> DataPage:
    base = dict(
        title="t<1>",
        columns=[TableColumn("n", "Name"), TableColumn("v", "Value", sortable=False)],
        rows=[{"n": "<script>x</script>", "v": 1}, ("b\"q", None)],
        total=5,
        page=2,
        page_rows=2,
        sort=[("n", False)],
        query={"who": "a&b"},
    )
    base.update(kw)
    return DataPage(**base)


def test_everything_is_escaped() -> None:
    body = render_data_page(
        page(fields=[FormField("who", "W<ho>", value='"><script>')], error=None)
    )
    assert "<script>" not in body
    assert "&lt;script&gt;x&lt;/script&gt;" in body
    assert "<title>t&lt;1&gt;</title>" in body
    assert "b&quot;q" in body and "W&lt;ho&gt;" in body
    assert 'value="&quot;&gt;&lt;script&gt;"' in body
    assert '<td class="null"></td>' in body and '<td class="num">1</td>' in body
    error = render_data_page(page(error="bad <sort>"))
    assert "bad &lt;sort&gt;" in error and "<table" not in error


def test_links_and_pager() -> None:
    body = render_data_page(page())
    links = [unescape(h) for h in re.findall(r'href="([^"]*)"', body)]
    # The current ascending sort column links to descending; the query is kept.
    assert "?who=a%26b&action=pagingdata&page=1&rows=2&sort=n%20desc" in links
    assert not any("sort=v" in h for h in links)  # not sortable
    assert "?who=a%26b&action=pagingdata&page=1&rows=2&sort=n" in links  # first, previous
    assert "?who=a%26b&action=pagingdata&page=3&rows=2&sort=n" in links  # next, last
    assert "?who=a%26b&action=pagingdata&page=2&rows=2&sort=n&_format=json" in links
    assert "rows 3–4 of 5 · page 2 of 3" in body
    last = render_data_page(page(page=3))
    assert '<span class="off">next ›</span>' in last
    beyond = render_data_page(page(page=9, rows=[]))
    assert "no rows on this page (5 in all)" in beyond and ">no rows</td>" in beyond


def test_cell_values() -> None:
    body = render_data_page(
        page(
            columns=[TableColumn(c) for c in "abcdef"],
            rows=[(True, decimal.Decimal("1.50"), datetime.date(2024, 1, 2), b"xyz", {"k": [1]}, 2.5)],
        )
    )
    assert "<td>true</td>" in body and '<td class="num">1.50</td>' in body
    assert "<td>2024-01-02</td>" in body and "<td>&lt;3 bytes&gt;</td>" in body
    assert "{&quot;k&quot;: [1]}" in body and '<td class="num">2.5</td>' in body
