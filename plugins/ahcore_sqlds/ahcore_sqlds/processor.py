"""The ``.sqlds`` processor: one parsed data source per file, answering four actions.

``action`` (query or form parameter):

- ``getdata`` (default): a JSON list of records, at most ``row_cap`` of
  them; when cut, the response has the header ``X-Truncated: true``.
  Optional ``sort``.
- ``pagingdata``: ``{"total": n, "rows": [...]}`` by ``page``,
  ``rows``/``pagerows`` (clamped to ``row_cap``) and ``sort`` (default the
  file's ``sortfield``); ``"truncated": true`` is added when the clamp cut
  the page (more rows were asked for than ``row_cap`` and more followed).
- ``arguments``: the file's ``arguments`` list.
- ``resultFields``: the file's ``datadesc``, or ``name``/``type``/``label``
  of each result column, ``type`` from the database
  (:mod:`ahcore.db.fieldtypes`).

Small answers and large ones differ only on the wire. ``getdata`` first
reads at most ``batch_rows + 1`` rows (one statement, the database stops
there): an answer that fits is sent whole, with ``Content-Length``. A
longer one is streamed: one more statement asks the database whether a row
exists past ``row_cap`` (so ``X-Truncated`` is exact and goes out with the
headers), then the rows are read ``batch_rows`` at a time from a cursor and
written as they come, chunked. ``pagingdata`` streams a page longer than
``batch_rows`` the same way (its ``total`` is known first). A failure after
the headers were sent cuts the connection: the client sees an incomplete
body, never a short well-formed one. The connection goes back to the pool
when the answer ends, fails, or the client goes away.

A data source is read-only: its statement must be a query
(:func:`ahcore.api.is_query`: a CTE in front of a ``DELETE`` is not) and runs
in a read-only transaction; a statement that writes is a 403, before it
runs or when the database refuses it. With ``"writable": true`` a non-query
statement is allowed, by POST only, and answers ``{"rowcount": n}``. Every
statement is stopped after ``time_limit_ms`` (504).

A person's browser opening a query source (``getdata`` or ``pagingdata``;
who counts as one: :func:`ahcore.api.wants_html`) gets the page of
:mod:`ahcore.datatable` instead: a ``pagingdata`` window as a table with
sort links, a pager and the arguments as a form; a bad argument or sort is
the page with the message, status 400. Those two actions answer with
``Vary: Accept, Sec-Fetch-Dest`` either way. ``plugins.sqlds.html: false``
turns the page off (JSON for everyone, no ``Vary``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, cast

import msgspec
from aiohttp import web

from ahcore.api import (
    MAX_INT_PARAM,
    VARY,
    BadQuery,
    DataPage,
    DictObject,
    JsonRowsWriter,
    Problem,
    Processor,
    Select,
    SQLor,
    TableColumn,
    data_page_response,
    encode_rows,
    json_error,
    json_response,
    parse_int,
    sort_keys,
    wants_html,
)
from ahcore_sqlds.arguments import bind_values
from ahcore_sqlds.browse import argument_query, form_fields
from ahcore_sqlds.settings import SqldsSettings
from ahcore_sqlds.source import SqlDataSource

if TYPE_CHECKING:
    from ahcore.api import RequestContext

ACTIONS = ("getdata", "pagingdata", "arguments", "resultFields")


@dataclass
class Answer:
    """A value for the client and the headers that go with it."""

    value: Any
    headers: dict[str, str] = field(default_factory=dict)


class SqldsProcessor(Processor):
    """Serves one ``.sqlds`` file; the file is parsed in :meth:`load`, never per request."""

    source: SqlDataSource

    async def load(self) -> None:
        raw = await asyncio.to_thread(self.path.read_bytes)
        try:
            data = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ValueError(json_error(self.path, raw, exc)) from None
        self.source = SqlDataSource.from_json(data, str(self.path))
        self.settings = SqldsSettings.of(self.site)

    async def check(self) -> list[Problem]:
        """The database ``sqldesc.db`` names must be configured."""
        databases = self.site.config.databases
        if self.source.db in databases:
            return []
        known = ", ".join(sorted(databases)) or "none"
        return [
            Problem(
                f"sqldesc.db: {self.source.db!r} is not in databases (configured: {known}); "
                "add it to databases in conf/config.json or correct the name (until then "
                "its requests fail)",
                self.path,
            )
        ]

    async def produce(self, context: RequestContext) -> Any:
        return (await self.answer(context)).value

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        params = await context.params()
        if self.source.is_query:
            action = params.get("action") or "getdata"
            if action in ("getdata", "pagingdata"):
                vary = {"Vary": VARY} if self.settings.html else {}
                if vary and wants_html(context.request):
                    return await self._respond_html(context, params)
                if action == "getdata":
                    return await self._respond_getdata(context, params, vary)
                return await self._respond_pagingdata(context, params, vary)
        answer = await self.answer(context)
        response = json_response(answer.value)
        response.headers.update(answer.headers)
        return response

    async def _respond_html(self, context: RequestContext, params: DictObject) -> web.Response:
        """A ``pagingdata`` window as the kernel's browsable page (ahcore.datatable)."""
        src = self.source
        labels = {
            d["name"]: str(d.get("label") or d["name"])
            for d in src.datadesc or ()
            if isinstance(d, dict) and isinstance(d.get("name"), str)
        }
        page = DataPage(
            title=context.url,
            columns=(),
            rows=(),
            total=0,
            fields=form_fields(src.arguments, src.arguments_raw, params),
            query=argument_query(src.arguments, params),
            max_rows=self.settings.row_cap,
        )
        try:
            limit, offset, sort, _capped = self._page(params)
            page = dataclasses.replace(
                page, page=offset // limit + 1, page_rows=limit, sort=sort_keys(sort)
            )
            values = bind_values(src.arguments, params, strict=True)
            async with self._context(context) as sor:
                sel = await sor.select(src.sql, values, sort=sort)
                total = await sor.count(sel)
                result = await sor.rows(sel, limit, offset)
        except web.HTTPBadRequest as exc:
            message = (exc.text or exc.reason).strip()
            return data_page_response(dataclasses.replace(page, error=message), status=400)
        columns = [TableColumn(c, labels.get(c, c)) for c in result.columns]
        return data_page_response(
            dataclasses.replace(page, columns=columns, rows=result.rows, total=total)
        )

    async def _respond_getdata(
        self, context: RequestContext, params: DictObject, vary: dict[str, str]
    ) -> web.StreamResponse:
        values = bind_values(self.source.arguments, params, strict=True)
        cap = self.settings.row_cap
        batch = self.settings.batch_rows
        first = min(cap, batch)
        writer: JsonRowsWriter | None = None
        try:
            async with self._context(context) as sor:
                sel = await sor.select(self.source.sql, values, sort=params.get("sort"))
                # Alone in its transaction: when the answer is larger, the
                # probe and the stream below share one snapshot of their own.
                result = await sor.rows(sel, first + 1, standalone=True)
                if len(result.rows) <= first or cap <= first:
                    # The common case: the whole answer is in hand.
                    truncated = len(result.rows) > cap
                    rows = result.rows[:cap] if truncated else result.rows
                    return _json_body(
                        b"[" + encode_rows(result.columns, rows) + b"]",
                        {**vary, "X-Truncated": "true"} if truncated else vary,
                    )
                truncated = await sor.has_more_than(sel, cap)
                writer = JsonRowsWriter(
                    context.request,
                    headers={**vary, "X-Truncated": "true"} if truncated else vary,
                )
                await _send(writer, sor, sel, limit=cap, batch_rows=batch)
            return await writer.finish()
        except Exception as exc:
            if writer is None or not writer.started:
                raise
            return writer.abort(exc)

    async def _respond_pagingdata(
        self, context: RequestContext, params: DictObject, vary: dict[str, str]
    ) -> web.StreamResponse:
        values = bind_values(self.source.arguments, params, strict=True)
        limit, offset, sort, capped = self._page(params)
        writer: JsonRowsWriter | None = None
        try:
            async with self._context(context) as sor:
                sel = await sor.select(self.source.sql, values, sort=sort)
                total = await sor.count(sel)
                tail = b'],"truncated":true}' if capped and total - offset > limit else b"]}"
                if min(limit, total - offset) <= self.settings.batch_rows:
                    result = await sor.rows(sel, limit, offset)
                    return _json_body(
                        b'{"total":%d,"rows":[%s%s'
                        % (total, encode_rows(result.columns, result.rows), tail),
                        vary,
                    )
                writer = JsonRowsWriter(
                    context.request,
                    head=b'{"total":%d,"rows":[' % total,
                    tail=tail,
                    headers=vary,
                )
                await _send(
                    writer,
                    sor,
                    sel,
                    limit=limit,
                    offset=offset,
                    batch_rows=self.settings.batch_rows,
                )
            return await writer.finish()
        except Exception as exc:
            if writer is None or not writer.started:
                raise
            return writer.abort(exc)

    async def answer(self, context: RequestContext) -> Answer:
        params = await context.params()
        action = params.get("action") or "getdata"
        if action == "arguments":
            return Answer(self.source.arguments_raw)
        if action == "resultFields":
            return Answer(await self._result_fields(context, params))
        if action == "getdata":
            return await self._getdata(context, params)
        if action == "pagingdata":
            return Answer(await self._pagingdata(context, params))
        raise BadQuery(f"unknown action {str(action)[:40]!r}; use one of {', '.join(ACTIONS)}")

    def _context(self, context: RequestContext) -> Any:
        pools = context.site.pools
        return pools.sqlorContext(
            self.source.db,
            read_only=not self.source.writable,
            time_limit_ms=self.settings.time_limit_ms,
        )

    async def _getdata(self, context: RequestContext, params: DictObject) -> Answer:
        src = self.source
        values = bind_values(src.arguments, params, strict=True)
        if not src.is_query:
            if not src.writable:
                _read_only()
            if context.request.method != "POST":
                raise web.HTTPMethodNotAllowed(
                    context.request.method, ["POST"], text="a writing data source needs POST\n"
                )
            async with self._context(context) as sor:
                return Answer({"rowcount": await sor.sqlExe(src.sql, values)})
        async with self._context(context) as sor:
            rows, truncated = await sor.query(
                src.sql, values, sort=params.get("sort"), max_rows=self.settings.row_cap
            )
        return Answer(rows, {"X-Truncated": "true"} if truncated else {})

    def _page(self, params: DictObject) -> tuple[int, int, Any, bool]:
        """``(limit, offset, sort, capped)`` of a ``pagingdata`` request.

        ``capped``: the page size asked for (80 by default) is over the row
        cap, so ``limit`` is the cap; the page is cut when more rows follow.
        """
        page = parse_int(params.get("page"), "page", 1, maximum=MAX_INT_PARAM)
        raw_rows = params.get("rows")
        if raw_rows is None or raw_rows == "":
            raw_rows = params.get("pagerows")
        wanted = parse_int(raw_rows, "rows", 80)
        rows = min(wanted, self.settings.row_cap)
        sort = params.get("sort") or self.source.sortfield
        return rows, (page - 1) * rows, sort, wanted > rows

    async def _pagingdata(self, context: RequestContext, params: DictObject) -> DictObject:
        src = self.source
        if not src.is_query:
            if not src.writable:
                _read_only()
            raise BadQuery("pagingdata needs a query (SELECT) data source")
        values = bind_values(src.arguments, params, strict=True)
        limit, offset, sort, capped = self._page(params)
        async with self._context(context) as sor:
            answer = cast(
                "DictObject",
                await sor.paged(src.sql, values, limit=limit, offset=offset, sort=sort),
            )
        if capped and answer["total"] - offset > limit:
            answer["truncated"] = True
        return answer

    async def _result_fields(self, context: RequestContext, params: DictObject) -> list[Any]:
        src = self.source
        if src.datadesc is not None:
            return src.datadesc
        if not src.is_query:
            return []
        values = bind_values(src.arguments, params, strict=False)
        async with self._context(context) as sor:
            fields = await sor.describe(src.sql, values)
        return [{"name": f.name, "type": f.type, "label": f.name} for f in fields]


async def _send(writer: JsonRowsWriter, sor: SQLor, sel: Select, **window: Any) -> None:
    """Run the query, then send the headers and its rows batch by batch.

    The query starts before the headers go out, so a statement that fails
    at once (a time limit, a lost connection) is still an error status.
    """
    if not writer.wants_body:  # HEAD: the headers are the answer
        await writer.start()
        return
    async with sor.stream(sel, **window) as stream:
        await writer.start()
        async for rows in stream:
            await writer.write(stream.columns, rows)


def _read_only() -> NoReturn:
    """Raise 403 for a statement that writes in a data source that is not ``writable``."""
    raise web.HTTPForbidden(
        text="this data source is read-only: its statement writes; nothing was changed\n"
    )


def _json_body(body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=body, content_type="application/json", charset="utf-8", headers=headers
    )
