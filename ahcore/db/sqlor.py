"""The sqlor interface scripts use: ``C R U D RP sqlExe sqlPaging`` on one connection.

A :class:`SQLor` lives for one ``sqlorContext`` block: one connection, one
transaction. It is driver-independent; it writes SQL only from names found
in the schema (:mod:`ahcore.db.schema`) and binds every value.

Beside the sqlor calls, data-source plugins use :meth:`SQLor.select` to
bind a query once and then read it as they need: a capped buffer
(:meth:`SQLor.rows`), a count, a truncation probe, or a stream of batches
(:meth:`SQLor.stream`) for answers too large to hold in memory.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ahcore.db.driver import ColumnDetail, ColumnInfo, Connection, FetchResult, RowStream
from ahcore.db.errors import BadQuery, integrity_error
from ahcore.db.fieldtypes import sqlor_model_type
from ahcore.db.records import to_records
from ahcore.db.schema import SchemaCache, TableInfo, check_table_name
from ahcore.db.sqltext import (
    MAX_PAGEROWS,
    escape_percent,
    limit_clause,
    page_window,
    parse_sort,
    prepare,
    strip_statement,
)
from ahcore.dictobject import DictObject

log = logging.getLogger("ahcore.db")

# Keys of a CRUD namespace that steer paging, never column filters.
PAGING_KEYS = frozenset({"page", "pagerows", "sort"})
_STATEMENT_CACHE_SIZE = 512
_SCALARS = (str, int, float, bool, bytes, decimal.Decimal, datetime.date, datetime.time, uuid.UUID)


def _check_value(key: str, value: Any) -> Any:
    if value is None or isinstance(value, _SCALARS):
        return value
    raise BadQuery(f"value of {key!r} must be a single value, not {type(value).__name__}")


@dataclass(frozen=True)
class Select:
    """A bound query and its checked ``ORDER BY`` (from :meth:`SQLor.select`).

    ``text`` has the driver's placeholders, ``params`` their values;
    ``order`` is ``""`` or `` ORDER BY …`` over the query's result columns.
    """

    text: str
    params: list[Any]
    order: str = ""

    def sql(self, limit: int | None = None, offset: int = 0) -> str:
        """The query as a subquery, sorted and windowed (an ``offset`` needs a ``limit``)."""
        sql = f"SELECT * FROM ({self.text}) ahcore_q{self.order}"
        if limit is None:
            if offset:
                raise ValueError("an offset needs a limit")
            return sql
        return sql + limit_clause(limit, offset)


class _BufferedStream:
    """A whole fetched result posing as a stream (drivers without ``stream``)."""

    def __init__(self, result: FetchResult, batch_rows: int) -> None:
        self.columns = result.columns
        self._rows = result.rows
        self._batch = max(1, batch_rows)

    async def __aiter__(self) -> AsyncIterator[list[Sequence[Any]]]:
        for start in range(0, len(self._rows), self._batch):
            yield list(self._rows[start : start + self._batch])


async def commit_or_refuse(conn: Connection, dbname: str) -> None:
    """COMMIT ``conn``'s transaction; one the database refuses is rolled back and answered.

    Refused at COMMIT (a deferred constraint): nothing of the transaction
    stays, and the visitor gets a 409/400 that names no table or value
    instead of a 500. For the end of a block and for ``sor.commit()``.
    """
    try:
        await conn.commit()
    except Exception as error:
        await conn.rollback()
        answer = integrity_error(error)
        if answer is None:
            raise
        log.warning("database %r: commit refused: %s", dbname, error)
        raise answer from None


class _EndedConnection:
    """What a :class:`SQLor` holds once its block has ended: every use is an error.

    The block's connection is back in the pool by then, maybe lent to
    another request: a ``sor`` kept past its ``async with`` must not reach it.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(
            "this sor's sqlorContext block has ended: use it inside its 'async with' block"
        )


_ENDED: Any = _EndedConnection()


class SQLor:
    """Table operations and SQL execution inside one transaction.

    Method names are sqlor's (ahserver scripts call them unchanged).
    """

    def __init__(
        self,
        conn: Connection,
        schema: SchemaCache,
        dbname: str = "",
        read_only: bool = False,
        time_limit_ms: int | None = None,
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.dbname = dbname
        # How the block began its transaction: commit() and rollback() begin
        # the next one the same way.
        self.read_only = read_only
        self.time_limit_ms = time_limit_ms
        self.dialect = conn.dialect
        self._mark = "?" if self.dialect.paramstyle == "qmark" else "%s"
        # A driver that can answer a read at once (SQLite on the loop's
        # thread) spares a coroutine per statement (NowaitConnection).
        self._fetch_nowait: Callable[..., FetchResult | Awaitable[FetchResult]] | None = getattr(
            conn, "fetch_nowait", None
        )

    def end(self) -> None:
        """Called by the block as it ends: any later use of this object is an error."""
        self.conn = _ENDED
        self._fetch_nowait = None

    # ------------------------------------------------------------ helpers

    def _bind(self, sql: str, ns: Mapping[str, Any], strip: bool = False) -> tuple[str, list[Any]]:
        """:func:`~ahcore.db.sqltext.bind` (of the stripped statement), parsed once per text."""
        key = (sql, strip)
        prepared = self.schema.statements.get(key)
        if prepared is None:
            statements = self.schema.statements
            if len(statements) >= _STATEMENT_CACHE_SIZE:
                statements.clear()
            prepared = statements[key] = prepare(strip_statement(sql) if strip else sql, self.dialect)
        text, names = prepared
        return text, [ns.get(name) for name in names]

    def _q(self, name: str) -> str:
        return escape_percent(self.dialect.ident(name), self.dialect)

    async def _table(self, table: str) -> TableInfo:
        return await self.schema.table(self.conn, table)

    def _where(
        self, info: TableInfo, ns: Mapping[str, Any], skip: frozenset[str] = PAGING_KEYS
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for key, value in ns.items():
            if key in skip:
                continue
            column = info.column(key)
            if column is None:
                continue
            value = _check_value(key, value)
            if value is None:
                clauses.append(f"{self._q(column)} IS NULL")
            else:
                clauses.append(f"{self._q(column)} = {self._mark}")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    async def _records(self, sql: str, params: list[Any]) -> list[DictObject]:
        result = await self.conn.fetch(sql, params)
        return to_records(result.columns, result.rows)

    async def _count(self, sql: str, params: list[Any]) -> int:
        result = await self.conn.fetch(f"SELECT COUNT(*) FROM ({sql}) ahcore_q", params)
        return int(result.rows[0][0])

    # ------------------------------------------------------------ CRUD

    async def C(self, table: str, ns: Mapping[str, Any]) -> int:
        """Insert one row from the keys of ``ns`` that are columns; others are ignored."""
        info = await self._table(table)
        columns, params = [], []
        for key, value in ns.items():
            column = info.column(key)
            if column is not None:
                columns.append(self._q(column))
                params.append(_check_value(key, value))
        if not columns:
            raise BadQuery(f"nothing to insert into {info.name!r}: no known columns given")
        marks = ", ".join([self._mark] * len(columns))
        sql = f"INSERT INTO {self._q(info.name)} ({', '.join(columns)}) VALUES ({marks})"
        return await self.conn.execute(sql, params)

    async def R(self, table: str, ns: Mapping[str, Any] | None = None) -> list[DictObject]:
        """Rows whose columns equal the values in ``ns`` (unknown and paging keys ignored)."""
        info = await self._table(table)
        where, params = self._where(info, ns or {})
        return await self._records(f"SELECT * FROM {self._q(info.name)}{where}", params)

    async def U(self, table: str, ns: Mapping[str, Any]) -> int:
        """Update the row with primary key ``id`` from the other known keys of ``ns``."""
        info = await self._table(table)
        id_column = self._id_column(info, ns)
        sets, params = [], []
        for key, value in ns.items():
            column = info.column(key)
            if column is None or column == id_column:
                continue
            sets.append(f"{self._q(column)} = {self._mark}")
            params.append(_check_value(key, value))
        if not sets:
            return 0
        params.append(_check_value("id", ns[id_column] if id_column in ns else ns.get("id")))
        sql = (
            f"UPDATE {self._q(info.name)} SET {', '.join(sets)} "
            f"WHERE {self._q(id_column)} = {self._mark}"
        )
        return await self.conn.execute(sql, params)

    async def D(self, table: str, ns: Mapping[str, Any]) -> int:
        """Delete the row with primary key ``id``."""
        info = await self._table(table)
        id_column = self._id_column(info, ns)
        value = _check_value("id", ns[id_column] if id_column in ns else ns.get("id"))
        sql = f"DELETE FROM {self._q(info.name)} WHERE {self._q(id_column)} = {self._mark}"
        return await self.conn.execute(sql, [value])

    def _id_column(self, info: TableInfo, ns: Mapping[str, Any]) -> str:
        column = info.column("id")
        if column is None:
            raise BadQuery(f"table {info.name!r} has no 'id' column")
        if ns.get("id") is None and ns.get(column) is None:
            raise BadQuery("'id' is required")
        return column

    async def RP(self, table: str, ns: Mapping[str, Any]) -> DictObject:
        """A page of :meth:`R`: ``{total, rows}`` by ``page``, ``pagerows`` and ``sort``."""
        info = await self._table(table)
        limit, offset = page_window(ns, max_rows=MAX_PAGEROWS)
        order = parse_sort(ns.get("sort"), info.names, self.dialect)
        where, params = self._where(info, ns)
        base = f"SELECT * FROM {self._q(info.name)}{where}"
        total = await self._count(base, params)
        sql = base + (f" ORDER BY {order}" if order else "") + limit_clause(limit, offset)
        return DictObject(total=total, rows=await self._records(sql, params))

    # ------------------------------------------------------------ schema

    async def tables(self) -> list[DictObject]:
        """The database's tables as sqlor listed them: ``[{name, title}, …]``.

        ``name`` is lower case (sqlor's habit); ``title`` is the table's
        comment, or its name when it has none. Views are not listed.
        """
        lister = getattr(self.conn, "list_tables", None)
        if lister is None:
            raise NotImplementedError(
                f"the {self.dialect.name!r} driver cannot list tables (no list_tables)"
            )
        return [
            DictObject(name=t.name.lower(), title=t.comment or t.name.lower())
            for t in await lister()
        ]

    async def getTableDesc(self, table: str) -> DictObject:  # noqa: N802 - sqlor's name
        """sqlor's ``getTableDesc(table)``: the same description as :meth:`I` (sqlor's ``I`` calls it)."""
        return await self.I(table)

    async def I(self, table: str) -> DictObject:  # noqa: E743 - sqlor's name
        """sqlor's description of ``table``: ``{summary, fields, indexes}``.

        - ``summary``: ``[{name, title, primary: [column, …]}]``
        - ``fields``: ``[{name, title, type, length, dec, nullable}, …]`` in
          column order; ``type`` is sqlor's model type (``str``, ``char``,
          ``text``, ``short``, ``long``, ``float``, ``date``, ``time``,
          ``datetime``, ``timestamp``, ``file``), ``nullable`` is ``'yes'`` or
          ``'no'``, ``title`` the column's comment or else its name.
        - ``indexes``: ``[{name, idxtype: 'unique'|'index', idxfields: […]}]``,
          the primary key's own index left out.

        Names are lower case, as sqlor gave them. An unknown table is a 400.
        """
        check_table_name(table)
        describe = getattr(self.conn, "describe_table", None)
        if describe is not None:
            detail = await describe(table)
            if detail is None:
                raise BadQuery(f"no such table {table!r}")
            name, comment = detail.name, detail.comment
            columns, primary, indexes = detail.columns, detail.primary, detail.indexes
        else:  # a driver with only the basic contract: names and types
            info = await self._table(table)
            name, comment, primary, indexes = info.name, "", (), ()
            columns = tuple(ColumnDetail(c.name, c.type) for c in info.columns)
        engine = self.dialect.name
        return DictObject(
            summary=[
                DictObject(
                    name=name.lower(),
                    title=comment or name.lower(),
                    primary=[p.lower() for p in primary],
                )
            ],
            fields=[
                DictObject(
                    name=c.name.lower(),
                    title=c.comment or c.name.lower(),
                    type=sqlor_model_type(c.type, engine),
                    length=c.length,
                    dec=c.scale,
                    nullable="yes" if c.nullable else "no",
                )
                for c in columns
            ],
            indexes=[
                DictObject(
                    name=i.name.lower(),
                    idxtype="unique" if i.unique else "index",
                    idxfields=[f.lower() for f in i.columns],
                )
                for i in indexes
            ],
        )

    # ------------------------------------------------------------ SQL

    async def sqlExe(self, sql: str, ns: Mapping[str, Any] | None = None) -> Any:
        """Run ``sql`` with ``${name}$`` values bound from ``ns``.

        A statement with a result set returns its records; any other
        statement returns the affected row count.
        """
        text, params = self._bind(sql, ns or {})
        nowait = self._fetch_nowait
        if nowait is not None:
            answer = nowait(text, params)
            result = answer if type(answer) is FetchResult else await answer  # type: ignore[misc]
        else:
            result = await self.conn.fetch(text, params)
        if result.columns:
            return to_records(result.columns, result.rows)
        return result.rowcount

    # ------------------------------------------------------------ sqlor's other names
    #
    # What sqlor 2.1.2's ``SQLor`` also offered scripts, on the same binding
    # and checks as the methods above (values bound, sort items checked).

    async def commit(self) -> None:
        """sqlor's ``commit()``: make what the block wrote so far permanent, and go on.

        The block goes on in a new transaction, begun as the block's was
        (read-only, time limit), and still commits or rolls back what follows
        when it ends. A commit the database refuses (a deferred constraint)
        rolls back and answers 409/400 as at the end of a block.
        """
        await commit_or_refuse(self.conn, self.dbname)
        await self._begin_again()

    async def rollback(self) -> None:
        """sqlor's ``rollback()``: undo what the block wrote since it began (or last committed).

        The block goes on in a new transaction, as after :meth:`commit`.
        """
        await self.conn.rollback()
        await self._begin_again()

    async def _begin_again(self) -> None:
        conn = self.conn
        await conn.begin(read_only=self.read_only)
        if self.time_limit_ms:
            await conn.set_time_limit(self.time_limit_ms)

    async def executemany(self, sql: str, values: Sequence[Mapping[str, Any]]) -> int:
        """sqlor's ``executemany(sql, values)``: one write statement, once per mapping of values.

        Each run binds ``${name}$`` from its mapping, as :meth:`sqlExe`;
        the statement must not return rows (a SELECT is a 400). Returns the
        rows affected in all.
        """
        total = 0
        for ns in values:
            text, params = self._bind(sql, ns)
            result = await self.conn.fetch(text, params)
            if result.columns:
                raise BadQuery("executemany takes a statement that writes, not a query")
            total += max(result.rowcount, 0)
        return total

    async def execute(self, sql: str, ns: Mapping[str, Any] | None = None) -> Any:
        """sqlor's ``execute(sql, ns)``: as :meth:`sqlExe` (the row count of a write)."""
        return await self.sqlExe(sql, ns)

    async def record_count(self, sql: str, ns: Mapping[str, Any] | None = None) -> int:
        """sqlor's ``record_count(sql, ns)``: how many rows the query ``sql`` gives."""
        text, params = self._bind(sql, ns or {}, strip=True)
        return await self._count(text, params)

    async def pagingdata(self, sql: str, ns: Mapping[str, Any]) -> list[DictObject]:
        """sqlor's ``pagingdata(sql, ns)``: the records of page ``page`` of ``rows`` rows.

        Sorted by ``sort``; without one by ``id`` when the query has that
        column, as sqlor did (it sorted by ``id`` whatever the query).
        """
        window = dict(ns)
        if window.get("rows") not in (None, ""):
            window["pagerows"] = window["rows"]
        limit, offset = page_window(window, max_rows=MAX_PAGEROWS)
        text, params = self._bind(sql, ns, strip=True)
        sort = ns.get("sort")
        if not sort and "id" in [c.lower() for c in await self.result_columns(text, params)]:
            sort = "id"
        page = await self.paged(sql, ns, limit=limit, offset=offset, sort=sort)
        return cast("list[DictObject]", page.rows)

    async def fields(self, table: str) -> list[DictObject]:
        """sqlor's ``fields(table)``: the ``fields`` of :meth:`I`."""
        return cast("list[DictObject]", (await self.I(table)).fields)

    async def primary(self, table: str) -> list[DictObject]:
        """sqlor's ``primary(table)``: ``[{name}]`` of the primary key's columns, in key order."""
        summary = (await self.I(table)).summary[0]
        return [DictObject(name=column) for column in summary.primary]

    async def indexes(self, table: str) -> list[DictObject]:
        """sqlor's ``indexes(table)``: the ``indexes`` of :meth:`I` (the key's own left out)."""
        return cast("list[DictObject]", (await self.I(table)).indexes)

    async def sqlPaging(self, sql: str, ns: Mapping[str, Any]) -> DictObject:
        """A page of a query's rows: ``{total, rows}`` by ``page``, ``pagerows``, ``sort``."""
        limit, offset = page_window(ns, max_rows=MAX_PAGEROWS)
        return await self.paged(sql, ns, limit=limit, offset=offset, sort=ns.get("sort"))

    async def paged(
        self, sql: str, values: Mapping[str, Any], *, limit: int, offset: int = 0, sort: Any = None
    ) -> DictObject:
        """``{total, rows}`` for one window of a query; ``sort`` checked against its columns."""
        text, params = self._bind(sql, values, strip=True)
        order = await self.order_by(text, params, sort)
        total = await self._count(text, params)
        page = f"SELECT * FROM ({text}) ahcore_q{order}{limit_clause(limit, offset)}"
        return DictObject(total=total, rows=await self._records(page, params))

    async def query(
        self, sql: str, ns: Mapping[str, Any], *, sort: Any = None, max_rows: int | None = None
    ) -> tuple[list[DictObject], bool]:
        """Rows of a query, optionally sorted, capped at ``max_rows``; and whether it was cut.

        The database stops after row ``max_rows + 1`` (a ``LIMIT``, or on
        SQLite a statement stepped no further), so a huge result is never read.
        """
        sel = await self.select(sql, ns, sort=sort)
        if max_rows is None:
            result = await self.conn.fetch(sel.sql(), sel.params)
            return to_records(result.columns, result.rows), False
        result = await self.rows(sel, max_rows + 1)
        rows = result.rows
        truncated = len(rows) > max_rows
        if truncated:
            rows = rows[:max_rows]
        return to_records(result.columns, rows), truncated

    # ------------------------------------------------------------ bound queries

    async def select(self, sql: str, values: Mapping[str, Any], *, sort: Any = None) -> Select:
        """Bind ``sql`` (a query; ``${name}$`` from ``values``) and check ``sort`` against it."""
        text, params = self._bind(sql, values, strip=True)
        if sort is None or sort == "" or sort == []:
            return Select(text, params)  # unsorted (most requests): no order_by coroutine
        return Select(text, params, await self.order_by(text, params, sort))

    async def rows(
        self, sel: Select, limit: int, offset: int = 0, *, standalone: bool = False
    ) -> FetchResult:
        """At most ``limit`` rows of ``sel`` (after ``offset``), read into memory.

        On an engine whose fetch is lazy (SQLite) an unsorted first window is
        read straight from the query, without a ``LIMIT`` wrapper.
        ``standalone``: this read need not share a snapshot with the
        statements after it (see :meth:`ahcore.db.driver.Connection.fetch`).
        """
        if self.dialect.lazy_fetch and not sel.order and not offset:
            nowait = self._fetch_nowait
            if nowait is not None:
                answer = nowait(sel.text, sel.params, max_rows=limit, standalone=standalone)
                return answer if type(answer) is FetchResult else await answer  # type: ignore[misc]
            return await self.conn.fetch(
                sel.text, sel.params, max_rows=limit, standalone=standalone
            )
        return await self.conn.fetch(sel.sql(limit, offset), sel.params, standalone=standalone)

    async def count(self, sel: Select) -> int:
        """The number of rows of ``sel``."""
        return await self._count(sel.text, sel.params)

    async def has_more_than(self, sel: Select, n: int) -> bool:
        """Whether ``sel`` has more than ``n`` rows; the database stops at row ``n + 1``."""
        probe = f"SELECT 1 FROM ({sel.text}) ahcore_q{limit_clause(1, n)}"
        return bool((await self.conn.fetch(probe, sel.params)).rows)

    @contextlib.asynccontextmanager
    async def stream(
        self, sel: Select, *, limit: int | None = None, offset: int = 0, batch_rows: int = 1000
    ) -> AsyncIterator[RowStream]:
        """The rows of ``sel`` (windowed by ``limit``/``offset``) in batches of ``batch_rows``.

        Memory holds one batch (for a driver without ``stream``, the whole
        window). See :meth:`ahcore.db.driver.Connection.stream` for the time
        limit and for leaving the block early.
        """
        sql = sel.sql(limit, offset) if sel.order or limit is not None or offset else sel.text
        streamer = getattr(self.conn, "stream", None)
        if streamer is None:
            yield _BufferedStream(await self.conn.fetch(sql, sel.params), batch_rows)
            return
        async with streamer(sql, sel.params, batch_rows=batch_rows) as rows:
            yield rows

    async def describe(self, sql: str, values: Mapping[str, Any]) -> list[ColumnInfo]:
        """Result columns of a query with their field types (:mod:`ahcore.db.fieldtypes`)."""
        text, params = self._bind(sql, values, strip=True)
        describe = getattr(self.conn, "describe", None)
        if describe is None:
            return [ColumnInfo(c, "str") for c in await self.result_columns(text, params)]
        return list(await describe(text, params))

    async def order_by(self, text: str, params: list[Any], sort: Any) -> str:
        """`` ORDER BY …`` for ``sort`` checked against the query's result columns."""
        if sort is None or sort == "" or sort == []:
            return ""
        columns = await self.result_columns(text, params)
        order = parse_sort(sort, columns, self.dialect)
        return f" ORDER BY {order}" if order else ""

    async def result_columns(self, text: str, params: list[Any]) -> list[str]:
        """Column names of a bound query, from the database (cached per SQL text)."""
        columns = self.schema.result_columns(text)
        if columns is None:
            result = await self.conn.fetch(f"SELECT * FROM ({text}) ahcore_q LIMIT 0", params)
            columns = list(result.columns)
            self.schema.remember_result_columns(text, columns)
        return columns
