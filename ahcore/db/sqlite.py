"""The embedded SQLite driver (aiosqlite), registered like any driver plugin.

``kwargs.dbname`` (or ``dbname``) is the database file, relative to the site
folder. Connections are opened on demand up to ``maxconn`` and reused; the
database is put in WAL mode so readers never wait for a writer.

Each statement runs as one job on the connection's aiosqlite thread
(execute, describe and fetch together), and ``BEGIN`` rides along with the
first statement of a transaction: a page of rows costs as few thread hops
as plain aiosqlite code would. The statement time limit is a progress
handler that aborts the statement when its deadline passes, leaving the
connection usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from ahcore.db.driver import ColumnInfo, Dialect, DriverSpec, FetchResult
from ahcore.db.errors import DatabaseUnavailable, StatementTimeout
from ahcore.plugins import hookimpl

if TYPE_CHECKING:
    from ahcore.config import DatabaseConfig
    from ahcore.site import Site

log = logging.getLogger("ahcore.db.sqlite")

SQLITE = Dialect("sqlite", "qmark", '"')
_PROGRESS_STEPS = 1000


def _sqlite_value(value: Any) -> Any:
    # sqlite3's own date adapters are deprecated and it has none for Decimal.
    if isinstance(value, datetime.datetime):
        return value.isoformat(" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    return value


_CONVERTED = (datetime.date, datetime.time, decimal.Decimal, uuid.UUID)


class SqliteConnection:
    """One aiosqlite connection behind the driver-neutral interface."""

    dialect = SQLITE

    def __init__(self, raw: aiosqlite.Connection, name: str) -> None:
        self.raw = raw
        self.name = name
        self.broken = False
        self._pending_begin: str | None = None
        self._in_tx = False
        self._query_only = False
        self._limit_s: float | None = None
        self._deadline: float | None = None

    # Runs on the aiosqlite thread, every _PROGRESS_STEPS virtual-machine steps.
    def _past_deadline(self) -> bool:
        deadline = self._deadline
        return deadline is not None and time.monotonic() > deadline

    def _run(self, sql: str, params: Sequence[Any], max_rows: int | None) -> FetchResult:
        db: sqlite3.Connection = self.raw._conn
        if self._pending_begin is not None:
            db.execute(self._pending_begin)
            self._pending_begin = None
            self._in_tx = True
        if self._limit_s is not None:
            self._deadline = time.monotonic() + self._limit_s
        try:
            cur = db.execute(sql, params)
            try:
                if cur.description is None:
                    return FetchResult([], [], cur.rowcount)
                columns = [d[0] for d in cur.description]
                rows = cur.fetchall() if max_rows is None else cur.fetchmany(max_rows)
                return FetchResult(columns, rows, cur.rowcount)
            finally:
                cur.close()
        finally:
            self._deadline = None

    async def _call(self, sql: str, params: Sequence[Any], max_rows: int | None) -> FetchResult:
        if any(isinstance(v, _CONVERTED) for v in params):
            params = [_sqlite_value(v) for v in params]
        try:
            return await self.raw._execute(self._run, sql, params, max_rows)
        except sqlite3.OperationalError as exc:
            if str(exc) == "interrupted" and self._limit_s is not None:
                raise StatementTimeout(
                    f"the query ran longer than the time limit of {self._limit_s * 1000:.0f} ms"
                ) from None
            raise
        except ValueError as exc:  # aiosqlite: "Connection closed"
            self.broken = True
            raise DatabaseUnavailable(f"database {self.name!r}: connection lost") from exc

    async def begin(self, *, read_only: bool = False) -> None:
        prefix = ""
        if read_only != self._query_only:
            prefix = f"PRAGMA query_only = {int(read_only)}"
            self._query_only = read_only
            await self.raw._execute(self.raw._conn.execute, prefix)
        # Deferred: sent with the first statement (one thread hop less).
        self._pending_begin = "BEGIN"

    async def commit(self) -> None:
        self._pending_begin = None
        self._limit_s = None
        if self._in_tx:
            self._in_tx = False
            await self.raw._execute(self.raw._conn.execute, "COMMIT")

    async def rollback(self) -> None:
        self._pending_begin = None
        self._limit_s = None
        if self._in_tx:
            self._in_tx = False
            try:
                await self.raw._execute(self.raw._conn.execute, "ROLLBACK")
            except Exception:
                self.broken = True
                log.warning("rollback failed on %r; the connection is discarded", self.name)

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        return (await self._call(sql, params, None)).rowcount

    async def fetch(
        self, sql: str, params: Sequence[Any], *, max_rows: int | None = None
    ) -> FetchResult:
        return await self._call(sql, params, max_rows)

    async def table_columns(self, table: str) -> tuple[str, list[ColumnInfo]] | None:
        found = await self._call(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND lower(name) = lower(?)",
            [table],
            None,
        )
        if not found.rows:
            return None
        real = found.rows[0][0]
        info = await self._call("SELECT name, type FROM pragma_table_info(?)", [real], None)
        return real, [ColumnInfo(r[0], r[1] or "") for r in info.rows]

    async def set_time_limit(self, ms: int | None) -> None:
        self._limit_s = ms / 1000 if ms else None

    @property
    def in_transaction(self) -> bool:
        return self._in_tx

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.raw.close()


class SqlitePool:
    """At most ``maxconn`` connections, opened on demand and kept for reuse."""

    dialect = SQLITE

    def __init__(self, name: str, path: str, maxconn: int, acquire_timeout: float) -> None:
        self.name = name
        self.path = path
        self.maxconn = maxconn
        self.acquire_timeout = acquire_timeout
        self._slots = asyncio.Semaphore(maxconn)
        self._idle: list[SqliteConnection] = []
        self._closed = False

    async def _open(self) -> SqliteConnection:
        uri = self.path.startswith("file:")
        raw = aiosqlite.connect(self.path, isolation_level=None, uri=uri)
        try:
            await raw
        except sqlite3.Error as exc:
            log.error("cannot open sqlite database %r (%s): %s", self.name, self.path, exc)
            raise DatabaseUnavailable(f"database {self.name!r} cannot be opened") from None
        conn = SqliteConnection(raw, self.name)
        busy_ms = int(self.acquire_timeout * 1000)

        def setup() -> None:
            db = raw._conn
            if not uri:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
            db.execute(f"PRAGMA busy_timeout = {busy_ms}")
            db.set_progress_handler(conn._past_deadline, _PROGRESS_STEPS)

        await raw._execute(setup)
        return conn

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[SqliteConnection]:
        if self._closed:
            raise DatabaseUnavailable(f"database {self.name!r} is shut down")
        try:
            async with asyncio.timeout(self.acquire_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise DatabaseUnavailable(
                f"database {self.name!r}: no free connection within "
                f"{self.acquire_timeout:g} s (pool of {self.maxconn})"
            ) from None
        conn: SqliteConnection | None = None
        try:
            conn = self._idle.pop() if self._idle else await self._open()
            yield conn
        finally:
            if conn is not None:
                await self._release(conn)
            self._slots.release()

    async def _release(self, conn: SqliteConnection) -> None:
        if conn.in_transaction and not conn.broken:
            await conn.rollback()
        if conn.broken or self._closed:
            await conn.close()
        else:
            self._idle.append(conn)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


def database_path(config: DatabaseConfig, site: Site) -> str:
    """The database file from ``kwargs.dbname`` (or ``dbname``), relative to the site folder."""
    name = config.kwargs.get("dbname") or config.kwargs.get("database") or config.dbname
    if not name:
        raise ValueError("sqlite database needs kwargs.dbname (the database file)")
    name = str(name)
    if name == ":memory:":
        # One shared in-memory database for every connection of this pool.
        return f"file:ahcore-{id(site)}-{id(config)}?mode=memory&cache=shared"
    if name.startswith("file:"):
        return name
    path = Path(name)
    return str(path if path.is_absolute() else site.workdir / path)


async def create_pool(name: str, config: DatabaseConfig, site: Site) -> SqlitePool:
    """Open the pool of database ``name``; connections are made on first use."""
    return SqlitePool(name, database_path(config, site), config.maxconn, config.acquire_timeout)


@hookimpl
def register_db_driver() -> DriverSpec:
    return DriverSpec(name="sqlite", aliases=("sqlite3", "aiosqlite"), create_pool=create_pool)
