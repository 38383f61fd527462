"""A data source as a page a person can browse: who gets HTML, and the page itself.

ahcore's data sources (``.sqlds``, ``.xlsxds``) answer programs with JSON.
A person who opens one in a browser gets this module's page instead: the
rows in a table whose column headers sort it, a pager, the source's
arguments as a form, and a link to the same data as JSON. The page is
plain HTML with a small style sheet and no script, so it works with
JavaScript off and is a safe place to show any value (everything is
escaped, and the page's ``Content-Security-Policy`` allows no script at all).

Who gets HTML (:func:`wants_html`), in this order:

1. ``_format=json`` or ``_format=html`` in the query string decides (the
   page's JSON link uses it, since following a link is itself a navigation).
2. Only ``GET`` and ``HEAD``: a ``POST`` is a program's call.
3. A request with ``Sec-Fetch-Dest`` (every current browser sends it) gets
   HTML when it is ``document``: a top-level navigation (typing the URL,
   following a link, submitting a form). ``fetch()`` and XHR send ``empty``,
   so a script in a page gets JSON whatever ``Accept`` it sends.
4. Without it (an old browser, or a program), HTML when the ``Accept``
   header's first preference (highest ``q``, first listed among equals) is
   ``text/html`` or ``application/xhtml+xml``. No ``Accept``, ``*/*`` or
   ``application/json`` is JSON: curl, aiohttp, requests and the bricks
   widgets get what they always got.

Either answer carries ``Vary: Accept, Sec-Fetch-Dest`` (:data:`VARY`) so
a cache never serves one to the other. A plugin builds a :class:`DataPage`
and answers with :func:`data_page_response`; the links it renders use the
data sources' own parameters (``action=pagingdata``, ``page``, ``rows``,
``sort``), so the data source validates them exactly as it does for JSON.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

VARY = "Accept, Sec-Fetch-Dest"
"""The request headers a negotiated answer depends on (send it with the JSON too)."""

FORMAT_PARAM = "_format"
"""Query parameter that overrides negotiation: ``json`` or ``html``."""

HTML_TYPES = ("text/html", "application/xhtml+xml")

CSS = """\
body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1d2733;background:#f7f9fb}
header,form,.error,.pager,.scroll{margin:1rem 1.5rem}
h1{font-size:1.3rem;margin:1.2rem 0 .2rem;word-break:break-all}
.meta{color:#5b6776;margin:0}
a{color:#0b5cad}
form{display:flex;flex-wrap:wrap;gap:.6rem 1rem;align-items:flex-end}
label{display:flex;flex-direction:column;font-size:.85rem;color:#5b6776}
input,select,button{font:inherit;padding:.25rem .4rem}
.error{background:#fdecea;color:#8a1c13;border:1px solid #f5c2bd;padding:.6rem .8rem;border-radius:6px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;background:#fff;min-width:50%}
th,td{border:1px solid #dde3ea;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#eef2f6;white-space:nowrap}
th a{color:inherit;text-decoration:none}
th a:hover{text-decoration:underline}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.null{background:#fafbfc}
td.empty{color:#5b6776;text-align:center}
.pager{display:flex;gap:1rem;align-items:center;color:#5b6776}
.pager span.off{color:#aab3bd}
"""

# The page runs no script; its only style is the one above, allowed by hash.
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)


def _accept_first(accept: str) -> str | None:
    """The media type an ``Accept`` header prefers most (``None`` when it names none)."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        # Highest q wins; among equals, the first listed (browsers list in order).
        if best is None or q > best[0]:
            best = (q, position, media.lower())
    return best[2] if best else None


def wants_html(request: web.Request) -> bool:
    """Whether ``request`` is a person's browser opening the page (see the module docs)."""
    forced = request.query.get(FORMAT_PARAM)
    if forced in ("json", "html"):
        return forced == "html"
    if request.method not in ("GET", "HEAD"):
        return False
    dest = request.headers.get("Sec-Fetch-Dest")
    if dest is not None:
        return dest.strip().lower() == "document"
    accept = request.headers.get("Accept")
    return accept is not None and _accept_first(accept) in HTML_TYPES


def sort_keys(value: Any) -> list[tuple[str, bool]]:
    """``sort`` as ``[(column, descending), …]``, for showing it (never for SQL).

    Accepts what data sources accept (``"price desc,id"``, a list of such
    strings) and skips anything malformed: the data source has already
    validated the value it ran.
    """
    if value is None or value == "":
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    keys: list[tuple[str, bool]] = []
    for item in items:
        if not isinstance(item, str):
            continue
        for part in item.split(","):
            words = part.split()
            if not words or len(words) > 2:
                continue
            direction = words[1].lower() if len(words) == 2 else "asc"
            if direction in ("asc", "desc"):
                keys.append((words[0], direction == "desc"))
    return keys


def sort_text(keys: Sequence[tuple[str, bool]]) -> str:
    """``[("price", True), ("id", False)]`` → ``"price desc,id"`` (the ``sort`` parameter)."""
    return ",".join(f"{name} desc" if desc else name for name, desc in keys)


@dataclass(frozen=True)
class TableColumn:
    """One column: the field ``name`` (what ``sort`` names) and its header ``label``."""

    name: str
    label: str = ""
    sortable: bool = True


@dataclass(frozen=True)
class FormField:
    """One input of the arguments form.

    ``input_type`` is an HTML ``<input type>`` (``text``, ``number``,
    ``date``, ``datetime-local``, ``time``) or ``select`` with ``options``.
    ``value`` is what the field shows: the request's value, else the
    declared default.
    """

    name: str
    label: str = ""
    input_type: str = "text"
    value: str = ""
    options: tuple[str, ...] = ()
    step: str = ""


@dataclass(frozen=True)
class DataPage:
    """Everything the page shows; built by a data-source plugin per request.

    ``rows`` are records (mappings by column name) or sequences in column
    order. ``page`` and ``page_rows`` are the ``pagingdata`` window, ``total``
    the number of rows of the whole result. ``sort`` is the order the rows
    are in. ``query`` holds the request's argument values that every link
    and the form keep. ``error`` replaces the table by a message (a 400).
    ``max_rows`` bounds the rows-per-page input.
    """

    title: str
    columns: Sequence[TableColumn]
    rows: Sequence[Mapping[str, Any] | Sequence[Any]]
    total: int
    page: int = 1
    page_rows: int = 80
    sort: Sequence[tuple[str, bool]] = ()
    fields: Sequence[FormField] = ()
    query: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    max_rows: int | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_rows)) if self.page_rows > 0 else 1

    def link(
        self,
        *,
        page: int | None = None,
        sort: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """A relative URL (``?…``) of this source with this page's parameters, changed."""
        params: dict[str, str] = {**self.query}
        params["action"] = "pagingdata"
        params["page"] = str(self.page if page is None else page)
        params["rows"] = str(self.page_rows)
        text = sort_text(self.sort) if sort is None else sort
        if text:
            params["sort"] = text
        params.update(extra or {})
        return "?" + urlencode(params, quote_via=quote)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="null"></td>'
    if isinstance(value, bool):
        return f"<td>{'true' if value else 'false'}</td>"
    if isinstance(value, (int, float, decimal.Decimal)):
        return f'<td class="num">{_esc(value)}</td>'
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<td>&lt;{len(bytes(value))} bytes&gt;</td>"
    if isinstance(value, (datetime.date, datetime.time)):
        return f"<td>{_esc(value.isoformat())}</td>"
    if isinstance(value, (dict, list, tuple)):
        return f"<td>{_esc(json.dumps(value, ensure_ascii=False, default=str))}</td>"
    return f"<td>{_esc(value)}</td>"


def _header(page: DataPage, column: TableColumn) -> str:
    label = _esc(column.label or column.name)
    current = page.sort[0] if page.sort else None
    if not column.sortable:
        return f'<th scope="col">{label}</th>'
    aria = ""
    mark = ""
    if current is not None and current[0] == column.name:
        aria = ' aria-sort="descending"' if current[1] else ' aria-sort="ascending"'
        mark = " ▼" if current[1] else " ▲"
    ascending_now = current is not None and current[0] == column.name and not current[1]
    target = f"{column.name} desc" if ascending_now else column.name
    href = _esc(page.link(page=1, sort=target))
    title = "sort descending" if ascending_now else "sort ascending"
    return f'<th scope="col"{aria}><a href="{href}" title="{title}">{label}{mark}</a></th>'


def _form(page: DataPage) -> str:
    parts = ['<form method="get" class="arguments">']
    hidden = {"action": "pagingdata", "page": "1"}
    if page.sort:
        hidden["sort"] = sort_text(page.sort)
    for name, value in hidden.items():
        parts.append(f'<input type="hidden" name="{_esc(name)}" value="{_esc(value)}">')
    for f in page.fields:
        label = _esc(f.label or f.name)
        name = _esc(f.name)
        if f.input_type == "select":
            options = "".join(
                f'<option{" selected" if o == f.value else ""}>{_esc(o)}</option>'
                for o in f.options
            )
            control = f'<select name="{name}">{options}</select>'
        else:
            step = f' step="{_esc(f.step)}"' if f.step else ""
            control = (
                f'<input type="{_esc(f.input_type)}" name="{name}" value="{_esc(f.value)}"{step}>'
            )
        parts.append(f"<label>{label} {control}</label>")
    limit = f' max="{page.max_rows}"' if page.max_rows else ""
    parts.append(
        f'<label>rows per page <input type="number" name="rows" min="1"{limit} '
        f'value="{page.page_rows}"></label>'
    )
    parts.append('<button type="submit">Show</button></form>')
    return "".join(parts)


def _pager(page: DataPage) -> str:
    def step(label: str, target: int, enabled: bool) -> str:
        if not enabled:
            return f'<span class="off">{label}</span>'
        return f'<a href="{_esc(page.link(page=target))}">{label}</a>'

    last = page.pages
    first_row = (page.page - 1) * page.page_rows + 1
    last_row = min(page.total, page.page * page.page_rows)
    shown = (
        f"rows {first_row}–{last_row} of {page.total}"
        if first_row <= last_row
        else f"no rows on this page ({page.total} in all)"
    )
    return (
        '<nav class="pager" aria-label="pages">'
        + step("« first", 1, page.page > 1)
        + step("‹ previous", min(page.page - 1, last), page.page > 1)
        + f"<span>{shown} · page {page.page} of {last}</span>"
        + step("next ›", page.page + 1, page.page < last)
        + step("last »", last, page.page < last)
        + "</nav>"
    )


def render_data_page(page: DataPage) -> str:
    """The HTML document for ``page``; every value in it is escaped."""
    json_href = _esc(page.link(extra={FORMAT_PARAM: "json"}))
    out = [
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(page.title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{_esc(page.title)}</h1>",
        f'<p class="meta">{page.total} rows · <a href="{json_href}">this page as JSON</a></p>'
        "</header>",
        _form(page),
    ]
    if page.error is not None:
        out.append(f'<p class="error" role="alert">{_esc(page.error)}</p>')
    else:
        names = [c.name for c in page.columns]
        out.append('<div class="scroll"><table><thead><tr>')
        out.extend(_header(page, c) for c in page.columns)
        out.append("</tr></thead><tbody>")
        for row in page.rows:
            cells: Iterable[Any] = (
                [row.get(n) for n in names] if isinstance(row, Mapping) else row
            )
            out.append("<tr>" + "".join(_cell(v) for v in cells) + "</tr>")
        if not page.rows:
            span = max(1, len(page.columns))
            out.append(f'<tr><td class="empty" colspan="{span}">no rows</td></tr>')
        out.append("</tbody></table></div>")
        out.append(_pager(page))
    out.append("</body></html>\n")
    return "".join(out)


def data_page_response(page: DataPage, *, status: int = 200) -> web.Response:
    """``page`` as a ``text/html`` response with :data:`VARY` and a script-free CSP."""
    return web.Response(
        status=status,
        text=render_data_page(page),
        content_type="text/html",
        charset="utf-8",
        headers={"Vary": VARY, "Content-Security-Policy": CSP},
    )
