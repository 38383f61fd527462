"""ahcore.datatable called directly: what ``tests/test_datatable.py`` leaves out.

That file covers who gets HTML, escaping, links, the pager and cell values;
this one the response's headers, the arguments form and the sort helpers.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from aiohttp.test_utils import make_mocked_request

from ahcore.datatable import (
    CSP,
    VARY,
    DataPage,
    FormField,
    TableColumn,
    data_page_response,
    render_data_page,
    sort_keys,
    sort_text,
    wants_html,
)


def page(**kw: object) -> DataPage:
    base: dict[str, object] = dict(
        title="t", columns=[TableColumn("n")], rows=[{"n": 1}], total=1, query={}
    )
    base.update(kw)
    return DataPage(**base)  # type: ignore[arg-type]


def test_the_response_is_html_that_varies_and_runs_no_script() -> None:
    response = data_page_response(page(), status=400)
    assert response.status == 400 and response.content_type == "text/html"
    assert response.charset == "utf-8"
    assert response.headers["Vary"] == VARY == "Accept, Sec-Fetch-Dest"
    assert response.headers["Content-Security-Policy"] == CSP
    assert "script-src" not in CSP and "default-src 'none'" in CSP


def test_the_csp_allows_exactly_the_pages_own_style() -> None:
    body = render_data_page(page())
    (style,) = re.findall(r"<style>(.*?)</style>", body, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CSP  # else the browser drops the styling


def test_sort_text_is_what_sort_keys_reads() -> None:
    keys = [("price", True), ("id", False)]
    assert sort_text(keys) == "price desc,id"
    assert sort_keys(sort_text(keys)) == keys
    assert sort_text([]) == ""
    assert sort_keys(["a", 3, None, "b desc"]) == [("a", False), ("b", True)]  # non-text skipped
    assert sort_keys(("x ASC",)) == [("x", False)]


@pytest.mark.parametrize(
    ("total", "page_rows", "pages"), [(0, 10, 1), (10, 10, 1), (11, 10, 2), (5, 0, 1), (5, -1, 1)]
)
def test_pages_is_at_least_one(total: int, page_rows: int, pages: int) -> None:
    assert page(total=total, page_rows=page_rows).pages == pages


def test_the_form_keeps_the_sort_and_shows_each_field() -> None:
    body = render_data_page(page(
        sort=[("n", True)],
        max_rows=500,
        fields=[
            FormField("kind", "Kind", "select", value="b", options=("a", "b", "<c>")),
            FormField("price", input_type="number", value="2.5", step="0.01"),
        ],
    ))
    form = body[body.index("<form"): body.index("</form>")]
    assert '<input type="hidden" name="action" value="pagingdata">' in form
    assert '<input type="hidden" name="page" value="1">' in form  # a new query starts at page 1
    assert '<input type="hidden" name="sort" value="n desc">' in form
    assert '<select name="kind"><option>a</option><option selected>b</option><option>&lt;c&gt;</option></select>' in form
    assert '<label>price <input type="number" name="price" value="2.5" step="0.01"></label>' in form
    assert 'name="rows" min="1" max="500" value="80"' in form


def test_a_descending_column_links_back_to_ascending() -> None:
    body = render_data_page(page(sort=[("n", True)]))
    assert '<th scope="col" aria-sort="descending">' in body
    assert 'title="sort ascending">n ▼</a>' in body
    head = body.split("<thead>")[1].split("</thead>")[0]
    assert 'href="?action=pagingdata&amp;page=1&amp;rows=80&amp;sort=n"' in head


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html;q=abc, application/json", False),  # a q that is not a number counts as 0
        ("application/json;q=0.1, TEXT/HTML;q=0.9", True),
        (" , text/html", True),
        ("text/html;level=1", True),
    ],
)
def test_accept_edge_cases(accept: str, html: bool) -> None:
    assert wants_html(make_mocked_request("GET", "/a", headers={"Accept": accept})) is html
