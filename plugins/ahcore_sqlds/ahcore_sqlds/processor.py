"""The ``.sqlds`` processor: one parsed data source per file, answering four actions.

``action`` (query or form parameter):

- ``getdata`` (default): a JSON list of records, at most ``row_cap`` of
  them (the database stops at ``row_cap + 1``); when cut, the response has
  the header ``X-Truncated: true``. Optional ``sort``.
- ``pagingdata``: ``{"total": n, "rows": [...]}`` by ``page``,
  ``rows``/``pagerows`` (clamped to ``row_cap``) and ``sort`` (default the
  file's ``sortfield``).
- ``arguments``: the file's ``arguments`` list.
- ``resultFields``: the file's ``datadesc``, or ``name``/``type``/``label``
  of each result column.

A data source is read-only: its statement must be a query and runs in a
read-only transaction. With ``"writable": true`` a non-query statement is
allowed, by POST only, and answers ``{"rowcount": n}``. Every statement is
stopped after ``time_limit_ms`` (504).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from ahcore import Processor
from ahcore.db.errors import BadQuery
from ahcore.db.pools import get_pools
from ahcore.db.sqltext import bind, parse_int, strip_statement
from ahcore.dictobject import DictObject
from ahcore.jsonutil import json_response
from ahcore_sqlds.arguments import bind_values
from ahcore_sqlds.settings import SqldsSettings
from ahcore_sqlds.source import SqlDataSource

if TYPE_CHECKING:
    from ahcore.context import RequestContext

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
            raise ValueError(f"{self.path}: not valid JSON: {exc}") from None
        self.source = SqlDataSource.from_json(data, str(self.path))
        self.settings = SqldsSettings.of(self.site)

    async def produce(self, context: RequestContext) -> Any:
        return (await self.answer(context)).value

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        answer = await self.answer(context)
        response = json_response(answer.value)
        response.headers.update(answer.headers)
        return response

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
        pools = get_pools(context.request.app)
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
                raise web.HTTPForbidden(text="this data source is read-only\n")
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

    async def _pagingdata(self, context: RequestContext, params: DictObject) -> DictObject:
        src = self.source
        if not src.is_query:
            raise BadQuery("pagingdata needs a query (SELECT) data source")
        values = bind_values(src.arguments, params, strict=True)
        page = parse_int(params.get("page"), "page", 1)
        raw_rows = params.get("rows")
        if raw_rows is None or raw_rows == "":
            raw_rows = params.get("pagerows")
        rows = min(parse_int(raw_rows, "rows", 80), self.settings.row_cap)
        sort = params.get("sort") or src.sortfield
        async with self._context(context) as sor:
            return await sor.paged(src.sql, values, limit=rows, offset=(page - 1) * rows, sort=sort)

    async def _result_fields(self, context: RequestContext, params: DictObject) -> list[Any]:
        src = self.source
        if src.datadesc is not None:
            return src.datadesc
        if not src.is_query:
            return []
        values = bind_values(src.arguments, params, strict=False)
        async with self._context(context) as sor:
            text, bound = bind(strip_statement(src.sql), values, sor.dialect)
            columns = await sor.result_columns(text, bound)
        return [{"name": c, "type": "str", "label": c} for c in columns]
