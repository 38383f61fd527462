"""A person's browser opening a ``.xlsxds`` gets a table; programs keep getting JSON."""

from __future__ import annotations

import io
import json
import re
from html import unescape
from typing import Any

import openpyxl
import pytest

from ahcore.api import PluginError

BROWSER = {
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}
DESCRIPTOR = {"xlsxfile": "./book.xlsx", "label_at": 1, "name_at": 2, "listhide_at": 3}
SHEET = [
    ["SKU", "Item", "Price", "Secret"],
    ["sku", "item", "price", "secret"],
    [None, None, None, "Y"],
    ["P1", "drill", 99.5, "s1"],
    ["P2", "<script>alert(1)</script>", 1.25, "s2"],
    ["P3", "saw & blade", 12, "s3"],
]


def config(settings: Any = True) -> dict[str, Any]:
    return {
        "website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".xlsxds", "xlsxds"]]},
        "plugins": {"xlsxds": settings},
    }


def workbook() -> bytes:
    wb = openpyxl.Workbook()
    for row in SHEET:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.fixture
def files() -> dict[str, Any]:
    return {"wwwroot/book.xlsx": workbook(), "wwwroot/prices.xlsxds": json.dumps(DESCRIPTOR)}


def cells(body: str) -> list[list[str]]:
    tbody = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [unescape(re.sub("<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
        for tr in re.findall(r"<tr>(.*?)</tr>", tbody)
    ]


async def test_a_browser_gets_a_sortable_paged_table(make_site, ahcore_client, files) -> None:
    client = await ahcore_client(make_site(config=config(), files=files))
    resp = await client.get("/prices.xlsxds", headers=BROWSER)
    body = await resp.text()
    assert resp.status == 200, body
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.headers["Vary"] == "Accept, Sec-Fetch-Dest"
    # Labels as headers; the listhide column is left out of the list.
    assert re.findall(r'<th scope="col"[^>]*><a [^>]*>([^<]*)</a>', body) == ["SKU", "Item", "Price"]
    assert cells(body) == [
        ["P1", "drill", "99.5"],
        ["P2", "<script>alert(1)</script>", "1.25"],
        ["P3", "saw & blade", "12"],
    ]
    assert "<script>" not in body and "&lt;script&gt;" in body
    links = [unescape(h) for h in re.findall(r'href="([^"]*)"', body)]
    assert "?action=pagingdata&page=1&rows=80&sort=price" in links
    # Sorted and paged through the source's own parameters.
    resp = await client.get("/prices.xlsxds?action=pagingdata&rows=2&sort=price", headers=BROWSER)
    body = await resp.text()
    assert [r[0] for r in cells(body)] == ["P2", "P3"]
    assert "rows 1–2 of 3 · page 1 of 2" in body
    assert 'href="?action=pagingdata&amp;page=2&amp;rows=2&amp;sort=price"' in body
    assert 'aria-sort="ascending"' in body
    # A bad sort field is the page with the message, 400.
    resp = await client.get("/prices.xlsxds?sort=nope", headers=BROWSER)
    assert resp.status == 400
    assert "unknown field &#x27;nope&#x27;" in await resp.text()


async def test_programs_get_json_unchanged(make_site, ahcore_client, files) -> None:
    client = await ahcore_client(make_site(config=config(), files=files))
    for headers in ({}, {"Accept": "*/*"}, {"Sec-Fetch-Dest": "empty", "Accept": "text/html"}):
        resp = await client.get("/prices.xlsxds", headers=headers)
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        assert resp.headers["Vary"] == "Accept, Sec-Fetch-Dest"
        assert [r["sku"] for r in await resp.json()] == ["P1", "P2", "P3"]
    resp = await client.get("/prices.xlsxds?action=pagingdata&rows=1")
    assert resp.headers["Vary"] == "Accept, Sec-Fetch-Dest"
    assert (await resp.json())["rows"][0]["secret"] == "s1"  # JSON keeps every field
    resp = await client.get("/prices.xlsxds?_format=json", headers=BROWSER)
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_html_can_be_turned_off(make_site, ahcore_client, files) -> None:
    client = await ahcore_client(make_site(config=config({"html": False}), files=files))
    resp = await client.get("/prices.xlsxds", headers=BROWSER)
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Vary" not in resp.headers


async def test_a_wrong_html_setting_stops_start_up(make_site, ahcore_client, files) -> None:
    site = make_site(config=config({"html": "yes"}), files=files)
    with pytest.raises(PluginError, match="plugins.xlsxds.html"):
        await ahcore_client(site)
