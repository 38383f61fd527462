"""The ``postgres`` driver: a psycopg_pool pool behind ahcore's driver interface.

Database kwargs are psycopg's: ``{host, port, user, password, dbname}``.
``maxconn`` is the pool's ``max_size``; ``acquire_timeout`` its ``timeout``.
No connection is made at start-up (``min_size=0``), so a site starts while
the server is down; a connection that cannot be made is retried for
``2 × acquire_timeout`` (at least 2 s), then the next request tries afresh,
so the pool is whole again within seconds of the server's return. Each
connection is checked when it leaves the pool, so one killed server-side
(restart, ``pg_terminate_backend``) is replaced before a request sees it.
Errors that mean the server is going away (SQLSTATE classes 08 and 57P,
e.g. ``admin_shutdown`` during ``pg_ctl stop``) are 503s like a lost
connection.

Read-only transactions run at ``REPEATABLE READ``: every statement of one
sees the same snapshot (a streamed answer, its truncation check and a
page's count agree), and a read-only transaction can never fail to
serialize. A streamed query is a server-side cursor read with ``FETCH``;
``statement_timeout`` stops each ``FETCH``, and the stream as a whole is
stopped once the time limit has passed since it started. Result field
types come from the type OIDs of the result description.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import errors as pgerrors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ahcore.api import (
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
    from_sql_name,
    hookimpl,
)
from ahcore_postgres.checks import check_settings  # noqa: F401 (a hook of this plugin)

if TYPE_CHECKING:
    from ahcore.api import DatabaseConfig, SiteView

log = logging.getLogger("ahcore_postgres")

POSTGRES = Dialect("postgres", "format", '"')
_CONNECT_KEYS = ("host", "port", "user", "password", "dbname", "sslmode", "options")

_FIND_TABLE = """
SELECT table_schema, table_name FROM information_schema.tables
WHERE table_schema = ANY(current_schemas(false)) AND lower(table_name) = lower(%s)
ORDER BY array_position(current_schemas(false), table_schema::name), (table_name = %s) DESC
LIMIT 1
"""
_COLUMNS = """
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position
"""
_LIST_TABLES = """
SELECT DISTINCT ON (c.relname) c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(current_schemas(false))
ORDER BY c.relname, array_position(current_schemas(false), n.nspname)
"""
_TABLE_OID = """
SELECT c.oid, coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""
# numeric_precision counts bits for integer and float types (radix 2): only
# a decimal precision (numeric) is a length as sqlor reported it.
_COLUMN_DETAILS = """
SELECT column_name, CASE WHEN data_type = 'ARRAY' THEN 'array' ELSE udt_name END,
       character_maximum_length,
       CASE WHEN numeric_precision_radix = 10 THEN numeric_precision END,
       CASE WHEN numeric_precision_radix = 10 THEN numeric_scale END,
       is_nullable, coalesce(col_description(%s::oid, ordinal_position::int), '')
FROM information_schema.columns
WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position
"""
# Key columns of each index in order (INCLUDE columns and expressions left out).
_INDEX_COLUMNS = """
SELECT ic.relname, i.indisprimary, i.indisunique, a.attname
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON k.n <= i.indnkeyatts
LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
WHERE i.indrelid = %s::oid
ORDER BY ic.relname, k.n
"""
_CURSOR_NAMES = itertools.count(1)
# SQLSTATE classes that mean the server or the connection is going away:
# 08 connection exception, 57P operator intervention (shutdown, crash,
# "cannot connect now"). 57014 (query_canceled) is the time limit instead.
_GOING_AWAY = ("08", "57P")


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _server_going_away(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return sqlstate.startswith(_GOING_AWAY)


class PostgresConnection:
    """A psycopg async connection behind the driver-neutral interface."""

    dialect = POSTGRES

    def __init__(self, raw: psycopg.AsyncConnection[Any], name: str) -> None:
        self.raw = raw
        self.name = name
        self.broken = False
        self._limit_ms: int | None = None

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
        except pgerrors.QueryCanceled:
            raise self.timeout_error() from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if self.raw.broken or self.raw.closed or _server_going_away(exc):
                raise self._lost(exc) from None
            raise

    async def _run(self, sql: str, params: Sequence[Any], max_rows: int | None) -> FetchResult:
        with self._translated():
            async with self.raw.cursor() as cur:
                await cur.execute(sql, params)
                if cur.description is None:
                    return FetchResult([], [], cur.rowcount)
                columns = [d.name for d in cur.description]
                rows = await (cur.fetchall() if max_rows is None else cur.fetchmany(max_rows))
                return FetchResult(columns, rows, cur.rowcount)

    @contextlib.asynccontextmanager
    async def stream(
        self, sql: str, params: Sequence[Any], *, batch_rows: int = 1000
    ) -> AsyncIterator[PostgresRowStream]:
        deadline = time.monotonic() + self._limit_ms / 1000 if self._limit_ms else None
        cur = self.raw.cursor(name=f"ahcore_stream_{next(_CURSOR_NAMES)}")
        try:
            with self._translated():
                await cur.execute(sql, params)
            columns = [d.name for d in cur.description or ()]
            yield PostgresRowStream(self, cur, columns, max(1, batch_rows), deadline)
        finally:
            if not self.broken:
                try:
                    await cur.close()
                except Exception as exc:
                    # A FETCH cut short leaves the connection mid-query: discard it.
                    self.broken = True
                    log.debug("database %r: closing a cursor failed: %s", self.name, exc)

    async def describe(self, sql: str, params: Sequence[Any]) -> list[ColumnInfo]:
        with self._translated():
            async with self.raw.cursor() as cur:
                await cur.execute(f"SELECT * FROM ({sql}) ahcore_q LIMIT 0", params)
                types = self.raw.adapters.types
                fields = []
                for d in cur.description or ():
                    info = types.get(d.type_code)
                    if info is None:
                        kind = "str"  # a type psycopg does not know (an enum, a domain…)
                    elif d.type_code == info.array_oid:
                        kind = "json"
                    else:
                        kind = from_sql_name(info.name) or "str"
                    fields.append(ColumnInfo(d.name, kind))
                return fields

    async def begin(self, *, read_only: bool = False) -> None:
        # psycopg opens the transaction implicitly with the first statement.
        if read_only:
            await self._run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", [], None)

    async def commit(self) -> None:
        try:
            await self.raw.commit()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._lost(exc) from None

    async def rollback(self) -> None:
        if self.broken:
            return  # closed by the pool instead
        try:
            await self.raw.rollback()
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
        schema, real = found.rows[0]
        cols = await self._run(_COLUMNS, [schema, real], None)
        return real, [ColumnInfo(r[0], r[1]) for r in cols.rows]

    async def list_tables(self) -> list[TableSummary]:
        found = await self._run(_LIST_TABLES, [], None)
        return [TableSummary(r[0], r[1]) for r in found.rows]

    async def describe_table(self, table: str) -> TableDetail | None:
        found = await self._run(_FIND_TABLE, [table, table], None)
        if not found.rows:
            return None
        schema, real = found.rows[0]
        oid_rows = (await self._run(_TABLE_OID, [schema, real], None)).rows
        if not oid_rows:
            return None  # dropped in between
        oid, comment = oid_rows[0]
        cols = await self._run(_COLUMN_DETAILS, [oid, schema, real], None)
        columns = tuple(
            ColumnDetail(
                name,
                udt,
                _int(char_len if char_len is not None else prec),
                _int(scale),
                nullable=nullable == "YES",
                comment=col_comment,
            )
            for name, udt, char_len, prec, scale, nullable, col_comment in cols.rows
        )
        primary: list[str] = []
        grouped: dict[str, tuple[bool, list[str]]] = {}
        for index, is_primary, unique, column in (
            await self._run(_INDEX_COLUMNS, [oid], None)
        ).rows:
            if is_primary:
                if column is not None:
                    primary.append(column)
                continue
            entry = grouped.setdefault(index, (bool(unique), []))
            if column is not None:
                entry[1].append(column)
        indexes = tuple(IndexDetail(n, u, tuple(c)) for n, (u, c) in grouped.items())
        return TableDetail(real, columns, tuple(primary), indexes, comment)

    async def set_time_limit(self, ms: int | None) -> None:
        self._limit_ms = int(ms) if ms else None
        if self._limit_ms:
            # LOCAL: ends with the transaction, so the pooled connection is clean.
            await self._run(f"SET LOCAL statement_timeout = {self._limit_ms}", [], None)


class PostgresRowStream(BatchedRowStream):
    """The batches of one server-side cursor, one ``FETCH`` each."""

    async def fetch_batch(self) -> list[Any]:
        with self.conn._translated():  # noqa: SLF001 - the driver's own connection class
            return cast("list[Any]", await self.cur.fetchmany(self.batch_rows))


class PostgresPool:
    """psycopg_pool's AsyncConnectionPool, sized and timed from the config."""

    dialect = POSTGRES

    def __init__(self, name: str, pool: AsyncConnectionPool, acquire_timeout: float) -> None:
        self.name = name
        self.pool = pool
        self.acquire_timeout = acquire_timeout

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[PostgresConnection]:
        try:
            raw = await self.pool.getconn(timeout=self.acquire_timeout)
        except PoolTimeout:
            stats = self.pool.get_stats()
            if stats.get("pool_size", 0) >= self.pool.max_size:
                message = (
                    f"database {self.name!r} is busy: no free connection within "
                    f"{self.acquire_timeout:g} s (pool of {self.pool.max_size})"
                )
            else:
                message = (
                    f"database {self.name!r} is unavailable: "
                    f"no connection within {self.acquire_timeout:g} s"
                )
            raise DatabaseUnavailable(message) from None
        conn = PostgresConnection(raw, self.name)
        try:
            yield conn
        finally:
            if conn.broken and not raw.closed:
                with contextlib.suppress(Exception):
                    await raw.close()
            # The pool discards a closed connection and rolls back an open transaction.
            await self.pool.putconn(raw)

    async def close(self) -> None:
        await self.pool.close()


def connect_kwargs(config: DatabaseConfig) -> dict[str, Any]:
    """psycopg connection arguments from the config (ahserver spellings accepted)."""
    kw = dict(config.kwargs)
    if "db" in kw and "dbname" not in kw:
        kw["dbname"] = kw.pop("db")
    if "database" in kw and "dbname" not in kw:
        kw["dbname"] = kw.pop("database")
    if "dbname" not in kw and config.dbname:
        kw["dbname"] = config.dbname
    out = {k: kw[k] for k in _CONNECT_KEYS if k in kw and kw[k] is not None}
    out.setdefault("connect_timeout", max(2, int(config.acquire_timeout)))
    return out


async def create_pool(name: str, config: DatabaseConfig, site: SiteView) -> PostgresPool:
    """Open (without connecting) the pool of database ``name``."""
    pool = AsyncConnectionPool(
        kwargs=connect_kwargs(config),
        min_size=0,
        max_size=config.maxconn,
        timeout=config.acquire_timeout,
        check=AsyncConnectionPool.check_connection,
        # psycopg_pool retries a failed connection with a doubling delay until
        # reconnect_timeout (5 min by default): after a long outage its slots
        # would sleep long after the server is back. Give up soon instead; the
        # next request that needs a connection starts a fresh attempt at once.
        reconnect_timeout=max(2.0, 2 * config.acquire_timeout),
        name=f"ahcore-{name}",
        open=False,
    )
    await pool.open(wait=False)
    return PostgresPool(name, pool, config.acquire_timeout)


@hookimpl
def register_db_driver() -> DriverSpec:
    return DriverSpec(
        name="postgres",
        aliases=("postgresql", "aiopg", "psycopg2", "psycopg"),
        create_pool=create_pool,
    )
