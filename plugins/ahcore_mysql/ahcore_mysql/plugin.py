"""The ``mysql`` driver: aiomysql's pool behind ahcore's driver interface.

Database kwargs are aiomysql's: ``{host, port, user, password, db}``.
``maxconn`` is the pool's ``maxsize``; a connection is made on demand
(``minsize=0``), so a site starts while the server is down, and waiting
longer than ``acquire_timeout`` for one is a 503. aiomysql drops pooled
connections the server has closed; one that fails during a request is
closed here, so it is never reused.

Connections run with autocommit off, so the transaction starts with the
first statement and costs no extra round trip. ``U`` reports matched rows
(``FOUND_ROWS``), like the other engines. The statement time limit is
``SET STATEMENT max_statement_time`` on MariaDB and ``max_execution_time``
(SELECT only) on MySQL.

A streamed query is an unbuffered result (aiomysql's ``SSCursor``) read a
batch at a time; the server's time limit covers it from start to last row.
Leaving a stream before its end closes the connection rather than reading
the rest of the rows. Result field types come from the MySQL field types
of the result description (binary strings and blobs are ``bytes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import aiomysql
import pymysql
from pymysql.constants import CLIENT, FIELD_TYPE
from pymysql.converters import encoders, escape_bytes

from ahcore.api import (
    FIELD_TYPES,
    BatchedRowStream,
    ColumnDetail,
    ColumnInfo,
    DatabaseUnavailable,
    Dialect,
    DriverSpec,
    FetchResult,
    IndexDetail,
    StatementTimeout,
    TableDetail,
    TableSummary,
    hookimpl,
)
from ahcore_mysql.checks import check_settings  # noqa: F401 (a hook of this plugin)

if TYPE_CHECKING:
    from ahcore.api import DatabaseConfig, SiteView

log = logging.getLogger("ahcore_mysql")

MYSQL = Dialect("mysql", "format", "`")
_CONNECT_KEYS = ("host", "port", "user", "password", "db", "unix_socket", "charset")
# Client-side "gone away", "lost connection", "can't connect" and friends.
_CONNECTION_ERRORS = frozenset({2003, 2006, 2013, 2014, 2045, 2055, 1053, 1927})
_TIMEOUT_ERRORS = frozenset({1969, 3024})  # MariaDB max_statement_time, MySQL max_execution_time

_FIND_TABLE = """
SELECT table_name FROM information_schema.tables
WHERE table_schema = DATABASE() AND lower(table_name) = lower(%s)
ORDER BY (table_name = %s) DESC LIMIT 1
"""
_COLUMNS = """
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position
"""
_LIST_TABLES = """
SELECT table_name, table_comment FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name
"""
_FIND_TABLE_COMMENT = """
SELECT table_name, table_comment FROM information_schema.tables
WHERE table_schema = DATABASE() AND lower(table_name) = lower(%s)
ORDER BY (table_name = %s) DESC LIMIT 1
"""
_COLUMN_DETAILS = """
SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale,
       is_nullable, column_comment
FROM information_schema.columns
WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position
"""
_PRIMARY_KEY = """
SELECT column_name FROM information_schema.key_column_usage
WHERE table_schema = DATABASE() AND table_name = %s AND constraint_name = 'PRIMARY'
ORDER BY ordinal_position
"""
_INDEXES = """
SELECT index_name, non_unique, column_name FROM information_schema.statistics
WHERE table_schema = DATABASE() AND table_name = %s AND index_name <> 'PRIMARY'
ORDER BY index_name, seq_in_index
"""


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _text(value: Any) -> str:
    """information_schema text (bytes on some server versions) as str; NULL as ""."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


# MySQL field types (the result description's type codes) → field types.
_FIELD_TYPES: dict[int, str] = {
    FIELD_TYPE.TINY: "int",
    FIELD_TYPE.SHORT: "int",
    FIELD_TYPE.LONG: "int",
    FIELD_TYPE.INT24: "int",
    FIELD_TYPE.LONGLONG: "int",
    FIELD_TYPE.YEAR: "int",
    FIELD_TYPE.FLOAT: "float",
    FIELD_TYPE.DOUBLE: "float",
    FIELD_TYPE.DECIMAL: "decimal",
    FIELD_TYPE.NEWDECIMAL: "decimal",
    FIELD_TYPE.DATE: "date",
    FIELD_TYPE.NEWDATE: "date",
    FIELD_TYPE.DATETIME: "datetime",
    FIELD_TYPE.TIMESTAMP: "datetime",
    FIELD_TYPE.TIME: "time",
    FIELD_TYPE.BIT: "bytes",
    FIELD_TYPE.GEOMETRY: "bytes",
}
# Text and binary share these codes; the character set 63 ("binary") tells them apart.
_STRING_TYPES = frozenset(
    {
        FIELD_TYPE.VARCHAR,
        FIELD_TYPE.VAR_STRING,
        FIELD_TYPE.STRING,
        FIELD_TYPE.TINY_BLOB,
        FIELD_TYPE.MEDIUM_BLOB,
        FIELD_TYPE.LONG_BLOB,
        FIELD_TYPE.BLOB,
    }
)
_BINARY_CHARSET = 63
assert set(_FIELD_TYPES.values()) <= set(FIELD_TYPES)


class _Binary:
    """A bytes parameter. aiomysql 0.3 escapes ``bytes`` with a helper that
    PyMySQL ≥ 1.1 replaced by a placeholder string (binding bytes raised
    ``TypeError``); this type goes through PyMySQL's encoder table instead."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _escape_binary(value: _Binary, mapping: Any = None) -> str:
    return cast("str", escape_bytes(value.data))


encoders[_Binary] = _escape_binary  # our own type: no other user of PyMySQL is affected
_BYTES = (bytes, bytearray, memoryview)


def _params(params: Sequence[Any]) -> Sequence[Any]:
    if any(isinstance(v, _BYTES) for v in params):
        return [_Binary(bytes(v)) if isinstance(v, _BYTES) else v for v in params]
    return params


def field_type(type_code: int, charsetnr: int | None) -> str:
    """The field type of a MySQL result column."""
    if type_code in _STRING_TYPES:
        return "bytes" if charsetnr == _BINARY_CHARSET else "str"
    return _FIELD_TYPES.get(type_code, "str")


class MysqlConnection:
    """An aiomysql connection behind the driver-neutral interface."""

    dialect = MYSQL

    def __init__(self, raw: aiomysql.Connection, name: str) -> None:
        self.raw = raw
        self.name = name
        self.broken = False
        self.mariadb = "mariadb" in (raw.get_server_info() or "").lower()
        self._limit_ms: int | None = None
        self._session_limit = False

    def _lost(self, exc: BaseException) -> DatabaseUnavailable:
        self.broken = True
        log.warning("database %r: connection lost: %s", self.name, exc)
        return DatabaseUnavailable(f"database {self.name!r} is unavailable")

    def timeout_error(self) -> StatementTimeout:
        return StatementTimeout(f"the query ran longer than the time limit of {self._limit_ms} ms")

    @contextlib.contextmanager
    def _translated(self) -> Any:
        """Driver errors to HTTP answers: 504 for the time limit, 503 for a lost connection."""
        try:
            yield
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else 0
            if code in _TIMEOUT_ERRORS:
                raise self.timeout_error() from None
            if code in _CONNECTION_ERRORS:
                raise self._lost(exc) from None
            raise
        except pymysql.err.InterfaceError as exc:
            raise self._lost(exc) from None
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise self._lost(exc) from None

    def _limited(self, sql: str) -> str:
        if self._limit_ms and self.mariadb:
            return f"SET STATEMENT max_statement_time={self._limit_ms / 1000:.3f} FOR {sql}"
        return sql

    async def _run(self, sql: str, params: Sequence[Any], max_rows: int | None) -> FetchResult:
        sql = self._limited(sql)
        with self._translated():
            async with self.raw.cursor() as cur:
                await cur.execute(sql, _params(params))
                if cur.description is None:
                    return FetchResult([], [], cur.rowcount)
                columns = [d[0] for d in cur.description]
                rows = await (cur.fetchall() if max_rows is None else cur.fetchmany(max_rows))
                return FetchResult(columns, list(rows), cur.rowcount)

    @contextlib.asynccontextmanager
    async def stream(
        self, sql: str, params: Sequence[Any], *, batch_rows: int = 1000
    ) -> AsyncIterator[MysqlRowStream]:
        deadline = time.monotonic() + self._limit_ms / 1000 if self._limit_ms else None
        cur = await self.raw.cursor(aiomysql.SSCursor)
        stream: MysqlRowStream | None = None
        try:
            with self._translated():
                await cur.execute(self._limited(sql), _params(params))
            columns = [d[0] for d in cur.description or ()]
            stream = MysqlRowStream(self, cur, columns, max(1, batch_rows), deadline)
            yield stream
        finally:
            if stream is not None and not stream.done and not self.broken:
                # Reading the rest of an unbuffered result could take long:
                # drop the connection instead (the transaction dies with it).
                self.broken = True
                self.raw.close()
            elif not self.broken:
                try:
                    await cur.close()
                except Exception:
                    self.broken = True
                    self.raw.close()

    async def describe(self, sql: str, params: Sequence[Any]) -> list[ColumnInfo]:
        with self._translated():
            async with self.raw.cursor() as cur:
                sql = self._limited(f"SELECT * FROM ({sql}) ahcore_q LIMIT 0")
                await cur.execute(sql, _params(params))
                fields = getattr(getattr(cur, "_result", None), "fields", None) or []
                out = []
                for i, d in enumerate(cur.description or ()):
                    charset = getattr(fields[i], "charsetnr", None) if i < len(fields) else None
                    out.append(ColumnInfo(d[0], field_type(d[1], charset)))
                return out

    async def begin(self, *, read_only: bool = False) -> None:
        # Autocommit is off: the first statement opens the transaction.
        if read_only:
            await self._run("START TRANSACTION READ ONLY", [], None)

    async def _end(self, word: str) -> None:
        if self._session_limit:
            self._session_limit = False
            await self._run("SET SESSION max_execution_time = 0", [], None)
        self._limit_ms = None
        await self._run(word, [], None)

    async def commit(self) -> None:
        await self._end("COMMIT")

    async def rollback(self) -> None:
        if self.broken:
            return  # closed by the pool instead
        try:
            await self._end("ROLLBACK")
        except Exception as exc:
            self.broken = True
            log.warning("database %r: rollback failed: %s", self.name, exc)

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        return (await self._run(sql, params, None)).rowcount

    async def fetch(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        max_rows: int | None = None,
        standalone: bool = False,
    ) -> FetchResult:
        return await self._run(sql, params, max_rows)

    async def table_columns(self, table: str) -> tuple[str, list[ColumnInfo]] | None:
        found = await self._run(_FIND_TABLE, [table, table], None)
        if not found.rows:
            return None
        real = found.rows[0][0]
        cols = await self._run(_COLUMNS, [real], None)
        return real, [ColumnInfo(r[0], r[1]) for r in cols.rows]

    async def list_tables(self) -> list[TableSummary]:
        found = await self._run(_LIST_TABLES, [], None)
        return [TableSummary(_text(r[0]), _text(r[1])) for r in found.rows]

    async def describe_table(self, table: str) -> TableDetail | None:
        found = await self._run(_FIND_TABLE_COMMENT, [table, table], None)
        if not found.rows:
            return None
        real, comment = _text(found.rows[0][0]), _text(found.rows[0][1])
        cols = await self._run(_COLUMN_DETAILS, [real], None)
        columns = tuple(
            ColumnDetail(
                _text(name),
                _text(data_type),
                _int(char_len if char_len is not None else prec),
                _int(scale),
                nullable=_text(nullable).upper() == "YES",
                comment=_text(col_comment),
            )
            for name, data_type, char_len, prec, scale, nullable, col_comment in cols.rows
        )
        primary = tuple(_text(r[0]) for r in (await self._run(_PRIMARY_KEY, [real], None)).rows)
        grouped: dict[str, tuple[bool, list[str]]] = {}
        for index, non_unique, column in (await self._run(_INDEXES, [real], None)).rows:
            entry = grouped.setdefault(_text(index), (not int(non_unique), []))
            if column is not None:  # a functional key part has no column
                entry[1].append(_text(column))
        indexes = tuple(IndexDetail(n, u, tuple(c)) for n, (u, c) in grouped.items())
        return TableDetail(real, columns, primary, indexes, comment)

    async def set_time_limit(self, ms: int | None) -> None:
        self._limit_ms = int(ms) if ms else None
        if self._limit_ms and not self.mariadb:
            await self._run(f"SET SESSION max_execution_time = {self._limit_ms}", [], None)
            self._session_limit = True


class MysqlRowStream(BatchedRowStream):
    """The batches of one unbuffered result."""

    async def fetch_batch(self) -> list[Any]:
        with self.conn._translated():  # noqa: SLF001 - the driver's own connection class
            return list(await self.cur.fetchmany(self.batch_rows))


class MysqlPool:
    """aiomysql's pool, sized and timed from the config."""

    dialect = MYSQL

    def __init__(self, name: str, pool: aiomysql.Pool, acquire_timeout: float) -> None:
        self.name = name
        self.pool = pool
        self.acquire_timeout = acquire_timeout

    async def _get(self) -> aiomysql.Connection:
        try:
            async with asyncio.timeout(self.acquire_timeout):
                return await self.pool.acquire()
        except TimeoutError:
            raise DatabaseUnavailable(
                f"database {self.name!r} is busy: no free connection within "
                f"{self.acquire_timeout:g} s (pool of {self.pool.maxsize})"
            ) from None
        except (pymysql.err.OperationalError, OSError) as exc:
            log.warning("database %r: cannot connect: %s", self.name, exc)
            raise DatabaseUnavailable(f"database {self.name!r} is unavailable") from None

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[MysqlConnection]:
        raw = await self._get()
        conn = MysqlConnection(raw, self.name)
        try:
            yield conn
        finally:
            if conn.broken:
                raw.close()
            await self.pool.release(raw)
            if raw.closed:
                # aiomysql wakes a request waiting for a connection only when
                # one is put back, not when one is dropped: wake it here, so
                # it opens a new connection instead of waiting out its timeout.
                wakeup = getattr(self.pool, "_wakeup", None)
                if wakeup is not None:
                    await wakeup()

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()


def connect_kwargs(config: DatabaseConfig) -> dict[str, Any]:
    """aiomysql connection arguments from the config (ahserver spellings accepted)."""
    kw = dict(config.kwargs)
    for other in ("dbname", "database"):
        if other in kw and "db" not in kw:
            kw["db"] = kw.pop(other)
    if "db" not in kw and config.dbname:
        kw["db"] = config.dbname
    out = {k: kw[k] for k in _CONNECT_KEYS if k in kw and kw[k] is not None}
    if "port" in out:
        out["port"] = int(out["port"])
    out.setdefault("charset", "utf8mb4")
    out["connect_timeout"] = max(1.0, float(config.acquire_timeout))
    return out


async def create_pool(name: str, config: DatabaseConfig, site: SiteView) -> MysqlPool:
    """Create (without connecting) the pool of database ``name``."""
    pool = await aiomysql.create_pool(
        minsize=0,
        maxsize=config.maxconn,
        autocommit=False,
        pool_recycle=3600,
        client_flag=CLIENT.FOUND_ROWS,
        **connect_kwargs(config),
    )
    return MysqlPool(name, pool, config.acquire_timeout)


@hookimpl
def register_db_driver() -> DriverSpec:
    return DriverSpec(
        name="mysql",
        aliases=("aiomysql", "mysql.connector", "pymysql", "mariadb"),
        create_pool=create_pool,
    )
