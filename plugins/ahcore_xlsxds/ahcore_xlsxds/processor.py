"""The ``.xlsxds`` processor: parse once, answer every request from memory.

The kernel rebuilds a processor when the ``.xlsxds`` file itself changes. The
workbook is a second file the kernel does not watch, so each request also
stats the workbook (one ``os.stat``) and re-parses when its mtime, size or
inode changed. Parsing runs in a thread behind an :class:`asyncio.Lock`:
requests arriving during a parse wait for that one parse instead of starting
their own.

A person's browser opening the source (``getdata`` or ``pagingdata``; who
counts as one: :func:`ahcore.api.wants_html`) gets the kernel's browsable
page (:mod:`ahcore.datatable`): a ``pagingdata`` window with sort links and
a pager, ``listhide`` columns left out. Those two actions answer with
``Vary: Accept, Sec-Fetch-Dest`` either way; ``plugins.xlsxds.html: false``
sends everyone JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ahcore.api import (
    VARY,
    DataPage,
    DictObject,
    Processor,
    RequestContext,
    TableColumn,
    bad_request,
    data_page_response,
    json_response,
    wants_html,
)
from ahcore_xlsxds.sheet import (
    Descriptor,
    DescriptorError,
    SheetData,
    SortSpec,
    parse_sheet,
    resolve_workbook,
)

if TYPE_CHECKING:
    from ahcore.api import SiteView

PLUGIN_NAME = "xlsxds"
DEFAULT_PAGE_ROWS = 80
MAX_PAGE_ROWS = 1000

# Action names are matched case-insensitively; values are the canonical names.
ACTIONS = {
    "getdata": "getdata",
    "pagingdata": "pagingdata",
    "resultfields": "resultFields",
    "arguments": "arguments",
}

Stamp = tuple[int, int, int]


def _first(value: Any) -> Any:
    """A repeated parameter arrives as a list; scalar parameters use its first value."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _int_param(params: DictObject, names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = _first(params.get(name))
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            bad_request(f"parameter {name!r} must be an integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            bad_request(f"parameter {name!r} must be an integer, got {value!r}")
        if number < 1:
            bad_request(f"parameter {name!r} must be at least 1, got {number}")
        return number
    return default


def parse_sort(value: Any, names: tuple[str, ...]) -> SortSpec:
    """``sort`` as ``((field, descending), …)``; only known fields, ``asc``/``desc``.

    Accepts ``"price desc,id"``, a repeated parameter (a list) or a JSON list.
    Anything else is a 400, so sort text can never be more than a field name.
    """
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    spec: list[tuple[str, bool]] = []
    for item in items:
        if not isinstance(item, str):
            bad_request(f"parameter 'sort' must be text like 'field desc', got {item!r}")
        for part in item.split(","):
            words = part.split()
            if not words:
                continue
            name, direction = words[0], (words[1].lower() if len(words) > 1 else "asc")
            if len(words) > 2 or direction not in ("asc", "desc"):
                bad_request(f"bad sort {part.strip()!r}: expected 'field [asc|desc]'")
            if name not in names:
                bad_request(
                    f"bad sort {part.strip()!r}: unknown field {name!r} "
                    f"(fields: {', '.join(names)})"
                )
            spec.append((name, direction == "desc"))
    return tuple(spec)


def _json_bytes(body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=body, content_type="application/json", charset="utf-8", headers=headers
    )


def html_enabled(site: SiteView) -> bool:
    """``plugins.xlsxds.html`` (default true): whether browsers get the HTML table."""
    html = site.plugin_settings(PLUGIN_NAME).get("html", True)
    if not isinstance(html, bool):
        raise ValueError(f"plugins.xlsxds.html: expected true or false, got {html!r}")
    return html


def settings_problems(settings: Mapping[str, Any]) -> list[str]:
    """``plugins.xlsxds``: ``html`` a boolean, ``max_rows`` and ``default_rows`` positive integers."""
    found = []
    html = settings.get("html", True)
    if not isinstance(html, bool):
        found.append(f"plugins.xlsxds.html: expected true or false, got {html!r}")
    for key, default in (("max_rows", MAX_PAGE_ROWS), ("default_rows", DEFAULT_PAGE_ROWS)):
        value = settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            found.append(
                f"plugins.xlsxds.{key}: expected a positive whole number of rows, got "
                f"{value!r}; write e.g. {default}, or leave it out (default {default})"
            )
    return found


class XlsxdsProcessor(Processor):
    """One ``.xlsxds`` file: its descriptor, its workbook's path and the last parse."""

    def __init__(self, path: Path, site: SiteView) -> None:
        super().__init__(path, site)
        settings = site.plugin_settings(PLUGIN_NAME)
        self.html = html_enabled(site)
        self.max_rows = int(settings.get("max_rows", MAX_PAGE_ROWS))
        # As configured: a default over max_rows is cut (and says so) like a request.
        self.asked_default_rows = int(settings.get("default_rows", DEFAULT_PAGE_ROWS))
        self.default_rows = min(self.asked_default_rows, self.max_rows)
        self.descriptor: Descriptor | None = None
        self.workbook: Path | None = None
        self._data: SheetData | None = None
        self._stamp: Stamp | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------ loading

    async def load(self) -> None:
        """Read the descriptor and parse the workbook (both in a thread).

        A bad descriptor or an ``xlsxfile`` outside the allowed folders raises
        :class:`DescriptorError`: the kernel answers 500 and logs the message.
        """
        self.descriptor, self.workbook = await asyncio.to_thread(self._read_descriptor)
        await self.sheet()

    def _read_descriptor(self) -> tuple[Descriptor, Path]:
        descriptor = Descriptor.from_json(self.path.read_bytes(), str(self.path))
        allowed = [root.real for root in self.site.roots]
        return descriptor, resolve_workbook(self.path, descriptor.xlsxfile, allowed)

    def _workbook_stamp(self) -> Stamp:
        assert self.workbook is not None
        try:
            st = os.stat(self.workbook)
        except FileNotFoundError:
            raise DescriptorError(f"{self.path}: workbook {self.workbook} does not exist") from None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    async def sheet(self) -> SheetData:
        """The current parse, re-parsed first if the workbook changed on disk."""
        stamp = self._workbook_stamp()
        data = self._data
        if data is not None and stamp == self._stamp:
            return data
        async with self._lock:
            # A request that waited here usually finds the parse it waited for.
            if self._data is not None and stamp == self._stamp:
                return self._data
            assert self.descriptor is not None and self.workbook is not None
            # The stamp was taken before parsing: a write during the parse
            # leaves it stale, so the next request parses again.
            data = await asyncio.to_thread(
                parse_sheet, self.descriptor, self.workbook, str(self.path)
            )
            self._data, self._stamp = data, stamp
            return data

    # ------------------------------------------------------------ answering

    async def _action(self, context: RequestContext) -> tuple[str, DictObject]:
        params = await context.params()
        raw = _first(params.get("action"))
        if raw is None or raw == "":
            return "getdata", params
        action = ACTIONS.get(str(raw).lower())
        if action is None:
            bad_request(
                f"unknown action {raw!r}; expected one of: getdata, pagingdata, resultFields"
            )
        return action, params

    def _window(self, data: SheetData, params: DictObject) -> tuple[int, int, SortSpec, bool]:
        """``(page, rows, sort, capped)`` of a ``pagingdata`` request, checked (400 otherwise).

        ``capped``: more rows were asked for (or are the configured default)
        than ``max_rows`` allows, so ``rows`` is the cap.
        """
        page = _int_param(params, ("page",), 1)
        wanted = _int_param(params, ("rows", "pagerows"), self.asked_default_rows)
        rows = min(wanted, self.max_rows)
        return page, rows, parse_sort(params.get("sort"), data.names), wanted > rows

    def _page(self, data: SheetData, params: DictObject) -> dict[str, Any]:
        """``{"total", "rows"}``, and ``"truncated": true`` when ``max_rows`` cut the page
        (the page size was capped and more rows follow it)."""
        page, rows, sort, capped = self._window(data, params)
        records = data.sorted_records(sort)
        start = (page - 1) * rows
        answer: dict[str, Any] = {"total": len(records), "rows": records[start : start + rows]}
        if capped and len(records) - start > rows:
            answer["truncated"] = True
        return answer

    def _html(self, context: RequestContext, data: SheetData, params: DictObject) -> web.Response:
        """A ``pagingdata`` window as the kernel's browsable page (ahcore.datatable)."""
        columns = [
            TableColumn(f["name"], str(f.get("label") or f["name"]))
            for f in data.fields
            if not f.get("listhide")
        ]
        page = DataPage(
            title=context.url,
            columns=columns,
            rows=(),
            total=len(data.records),
            page_rows=self.default_rows,
            max_rows=self.max_rows,
        )
        try:
            number, rows, sort, _capped = self._window(data, params)
        except web.HTTPBadRequest as exc:
            message = (exc.text or exc.reason).strip()
            return data_page_response(dataclasses.replace(page, error=message), status=400)
        records = data.sorted_records(sort)
        start = (number - 1) * rows
        return data_page_response(
            dataclasses.replace(
                page,
                rows=records[start : start + rows],
                page=number,
                page_rows=rows,
                sort=sort,
            )
        )

    async def produce(self, context: RequestContext) -> Any:
        """The action's answer as Python data (what ``path_call`` returns).

        Records are fresh :class:`DictObject` copies, so a calling script may
        change them without touching the shared parse.
        """
        action, params = await self._action(context)
        data = await self.sheet()
        if action == "getdata":
            return [DictObject(r) for r in data.records]
        if action == "pagingdata":
            answer = self._page(data, params)
            answer["rows"] = [DictObject(r) for r in answer["rows"]]
            return answer
        if action == "resultFields":
            return [DictObject(f) for f in data.fields]
        return []  # "arguments": a spreadsheet source takes none

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        """Like :meth:`produce`, but getdata/resultFields send pre-encoded bytes."""
        action, params = await self._action(context)
        data = await self.sheet()
        if action in ("getdata", "pagingdata") and self.html:
            if wants_html(context.request):
                return self._html(context, data, params)
            if action == "getdata":
                return _json_bytes(data.getdata_body, {"Vary": VARY})
            response = json_response(self._page(data, params))
            response.headers["Vary"] = VARY
            return response
        if action == "getdata":
            return _json_bytes(data.getdata_body)
        if action == "pagingdata":
            return json_response(self._page(data, params))
        if action == "resultFields":
            return _json_bytes(data.fields_body)
        return _json_bytes(b"[]")
