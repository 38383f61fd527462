"""A person's browser opening a ``.sqlds`` gets a table; programs keep getting JSON."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from ahcore.api import PluginError

BROWSER = {
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}
ROWS = [
    {"id": "a1", "field1": 1, "name": "apple", "price": "1.50", "created": "2024-01-02"},
    {"id": "b2", "field1": 2, "name": "<script>alert(1)</script>", "price": "0.25"},
    {"id": "c3", "field1": 3, "name": "cherry & co", "price": "12.00"},
]
FILES = {
    "wwwroot/items.sqlds": json.dumps(
        {
            "sqldesc": {
                "sql_string": "select id, field1, name, price from tbl1 where field1 >= ${low}$",
                "db": "db1",
                "sortfield": "id",
            },
            "arguments": [
                {"name": "low", "type": "int", "default": 0, "label": "Lowest field1"},
                {"name": "unused", "type": "date", "default": None},
            ],
            "datadesc": [{"name": "name", "label": "Fruit"}],
        }
    )
}


async def start(db_client, settings=None):
    client = await db_client(files=FILES, plugins={"sqlds": settings or True})
    async with client.pools.sqlorContext("db1") as sor:
        for row in ROWS:
            await sor.C("tbl1", row)
    return client


def cells(body: str) -> list[list[str]]:
    """The table's body rows as text (entities decoded)."""
    tbody = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [unescape(re.sub("<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
        for tr in re.findall(r"<tr>(.*?)</tr>", tbody)
    ]


def hrefs(body: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]*)"', body)]


async def test_a_browser_gets_an_html_table(db_client, engine) -> None:
    client = await start(db_client)
    resp = await client.get("/items.sqlds", headers=BROWSER)
    body = await resp.text()
    assert resp.status == 200, body
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.headers["Vary"] == "Accept, Sec-Fetch-Dest"
    assert "script-src" not in resp.headers["Content-Security-Policy"]  # no script allowed
    assert "<title>/items.sqlds</title>" in body
    # Column labels from datadesc; sorted by the file's sortfield.
    assert re.findall(r'<th scope="col"[^>]*><a [^>]*>([^<]*)</a>', body) == [
        "id ▲", "field1", "Fruit", "price"
    ]
    assert [r[0] for r in cells(body)] == ["a1", "b2", "c3"]
    assert "3 rows" in body


async def test_values_are_escaped(db_client, engine) -> None:
    client = await start(db_client)
    body = await (await client.get("/items.sqlds", headers=BROWSER)).text()
    assert "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "cherry &amp; co" in body


async def test_sort_links_use_the_sources_sort_parameter(db_client, engine) -> None:
    client = await start(db_client)
    body = await (await client.get("/items.sqlds", headers=BROWSER)).text()
    links = {h for h in hrefs(body) if "sort=" in h}
    assert "?action=pagingdata&page=1&rows=80&sort=name" in links
    assert "?action=pagingdata&page=1&rows=80&sort=id%20desc" in links  # id is ascending now
    resp = await client.get("/items.sqlds?action=pagingdata&sort=field1%20desc", headers=BROWSER)
    body = await resp.text()
    assert [r[0] for r in cells(body)] == ["c3", "b2", "a1"]
    assert 'aria-sort="descending"' in body
    # A sort the source refuses is the page with the message, 400, and no table.
    resp = await client.get("/items.sqlds?sort=price;drop table tbl1", headers=BROWSER)
    body = await resp.text()
    assert resp.status == 400
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'class="error"' in body and "<table" not in body
    assert len(await (await client.get("/items.sqlds")).json()) == 3


async def test_pager_and_arguments(db_client, engine) -> None:
    client = await start(db_client)
    resp = await client.get("/items.sqlds?rows=2&low=1", headers=BROWSER)
    body = await resp.text()
    assert [r[0] for r in cells(body)] == ["a1", "b2"]
    assert "rows 1–2 of 3 · page 1 of 2" in body
    assert "?low=1&action=pagingdata&page=2&rows=2&sort=id" in hrefs(body)
    body = await (await client.get(
        "/items.sqlds?low=1&action=pagingdata&page=2&rows=2&sort=id", headers=BROWSER
    )).text()
    assert [r[0] for r in cells(body)] == ["c3"]
    assert "rows 3–3 of 3 · page 2 of 2" in body
    # The declared arguments are the form, with the request's values or defaults.
    assert 'type="number" name="low" value="1" step="1"' in body
    assert "Lowest field1" in body
    assert 'type="date" name="unused" value=""' in body
    # A bad argument: the form and the message, 400.
    resp = await client.get("/items.sqlds?low=many", headers=BROWSER)
    body = await resp.text()
    assert resp.status == 400 and "argument &#x27;low&#x27; must be a int" in body
    assert 'name="low" value="many"' in body


async def test_programs_get_json_unchanged(db_client, engine) -> None:
    client = await start(db_client)
    for headers in (
        {},
        {"Accept": "*/*"},
        {"Accept": "application/json"},
        {"Accept": "application/json, text/html"},
        # fetch() from a page: Sec-Fetch-Dest says it is no navigation.
        {"Sec-Fetch-Dest": "empty", "Accept": "text/html"},
    ):
        resp = await client.get("/items.sqlds", headers=headers)
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8", headers
        assert resp.headers["Vary"] == "Accept, Sec-Fetch-Dest"
        assert [r["id"] for r in await resp.json()] == ["a1", "b2", "c3"]
    resp = await client.get("/items.sqlds?action=pagingdata&rows=1", headers={"Accept": "*/*"})
    assert resp.headers["Vary"] == "Accept, Sec-Fetch-Dest"
    assert (await resp.json())["total"] == 3
    # Without fetch metadata, an Accept preferring HTML is a browser.
    resp = await client.get("/items.sqlds", headers={"Accept": "text/html"})
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    # The page's JSON link, followed by the browser, is JSON.
    body = await (await client.get("/items.sqlds", headers=BROWSER)).text()
    (json_link,) = [h for h in hrefs(body) if "_format=json" in h]
    resp = await client.get("/items.sqlds" + json_link, headers=BROWSER)
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert (await resp.json())["total"] == 3
    # Other actions are never negotiated.
    resp = await client.get("/items.sqlds?action=arguments", headers=BROWSER)
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Vary" not in resp.headers
    # POST is a program's call.
    resp = await client.post("/items.sqlds", headers={"Sec-Fetch-Dest": "document"})
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_html_can_be_turned_off(db_client, engine) -> None:
    client = await start(db_client, {"html": False})
    resp = await client.get("/items.sqlds", headers=BROWSER)
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Vary" not in resp.headers
    assert len(await resp.json()) == 3



async def test_a_wrong_html_setting_stops_start_up(db_client, engine) -> None:
    with pytest.raises(PluginError, match="plugins.sqlds.html"):
        await start(db_client, {"html": "no"})
