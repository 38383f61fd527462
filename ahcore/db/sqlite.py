"""The embedded SQLite driver, registered like any driver plugin.

``kwargs.dbname`` (or ``dbname``) is the database file, relative to the site
folder. Connections are opened on demand up to ``maxconn`` and reused; the
database is put in WAL mode (:func:`use_wal`) so readers never wait for a writer.

Each statement runs as one job on the connection's own thread
(:class:`~ahcore.db.sqlitethread.ConnectionThread`)
(execute, describe and fetch together), and ``BEGIN`` (with the
``query_only`` pragma of a read-only transaction) rides along with the
first statement of a transaction. The ``COMMIT`` of a read-only
transaction is queued without being awaited, and a ``standalone`` first
read runs without ``BEGIN``/``COMMIT`` at all: a ``.sqlds`` page costs one
thread hop, where plain aiosqlite code (execute, fetchall, close) costs
three. The statement time limit is a progress handler that aborts the
statement when its deadline passes, leaving the connection usable.

**Short reads on the loop's thread.** A thread hop costs more than a short
indexed ``SELECT``. So a query (:func:`ahcore.db.sqltext.is_query`) runs
on the event loop's own thread when the connection's thread holds no job
(:attr:`~ahcore.db.sqlitethread.ConnectionThread.idle`), under a deadline
of ``kwargs.loop_read_ms`` (default 1 ms; ``0`` turns this off): the
progress handler aborts it when the deadline passes and it runs again, from
the start, on the connection's thread, where only the statement's own time
limit applies. The busy timeout is 0 meanwhile, so a lock (another
connection committing, a checkpoint) is a fallback to the thread too, never
a wait on the loop. A statement too slow for the loop goes to the thread
directly for the next 30 s (unless its run there was quick: then the loop's
try was only preempted). Writes, ``COMMIT`` of a transaction that wrote, and
streamed cursors always run on the thread. Isolation is SQLite's: each
pooled connection is its own sqlite3 connection, so a read sees only what
other connections committed, and its own transaction's changes. After a
few reads in a row on the loop without a pause, the next goes to the
thread, so a script looping over queries still yields and its time limit
still applies.

**No awaits on the common path.** ``sqlorContext`` takes an idle
connection with :meth:`SqlitePool.enter_nowait` and gives it back with
:meth:`SqlitePool.exit_nowait` when its transaction wrote nothing, and a
read on the loop is answered by :meth:`SqliteConnection.fetch_nowait`
directly; whatever must wait (no idle connection, a write to commit, the
thread) goes the awaited way, unchanged.

A streamed query (:meth:`SqliteConnection.stream`) keeps its cursor open
between jobs and steps it one batch per job, so memory holds one batch; its
deadline runs from the start of the query to the last batch.

SQLite result columns carry no type, so :meth:`SqliteConnection.describe`
takes the declared type of a column of that name in the tables the query
names, unless the first row's value contradicts it, and else the value's
type.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import logging
import re
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ahcore.db.driver import (
    BatchedRowStream,
    ColumnDetail,
    ColumnInfo,
    Dialect,
    DriverSpec,
    FetchResult,
    IndexDetail,
    TableDetail,
    TableSummary,
)
from ahcore.db.errors import DatabaseUnavailable, StatementTimeout
from ahcore.db.fieldtypes import declared_or_value, from_sql_name, from_value
from ahcore.db.sqlitethread import ConnectionClosed, ConnectionThread
from ahcore.db.sqltext import is_query
from ahcore.plugins import hookimpl

if TYPE_CHECKING:
    from ahcore.config import DatabaseConfig
    from ahcore.site import Site

log = logging.getLogger("ahcore.db.sqlite")

T = TypeVar("T")

SQLITE = Dialect("sqlite", "qmark", '"', lazy_fetch=True)
_PROGRESS_STEPS = 1000
# Reads run on the loop in a row, without the loop getting control between
# them, before the next one goes to the thread (which yields).
_LOOP_STREAK = 8
_LOOP_READ_MS = 1.0
# The longest a new connection waits to switch a database to WAL mode (see use_wal).
_WAL_SWITCH_WAIT_MS = 200
# Remembered statement texts per pool (is it a query; did it fall back).
_SQL_MEMORY = 512
# Seconds a statement that was too slow for the loop goes to the thread directly.
_SLOW_FOR = 30.0
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A declared type with its size: "VARCHAR(32)", "NUMERIC(10, 2)", "UNSIGNED BIG INT".
_DECLARED = re.compile(r"\s*([^(]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")
_ALL_COLUMNS = (
    "SELECT m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p "
    "WHERE m.type IN ('table', 'view')"
)


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
# Parameter types sqlite3 takes as they are (one set test instead of isinstance per value).
_PLAIN_PARAMS = frozenset({int, str, float, bytes, type(None)})
# What sends a read that began on the loop to the connection's thread: the
# loop's deadline passed (interrupted), or a lock it would have waited for.
# (SQLite's result codes; the sqlite3 module names them from Python 3.11.)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_INTERRUPT = 5, 6, 9
_LOCK_MESSAGES = ("database is locked", "database table is locked")


def use_wal(db: sqlite3.Connection, name: str, wait_ms: int, busy_ms: int) -> None:
    """Put the database in WAL mode if it is not, without failing the connection over it.

    WAL is a property of the file, so a database already in WAL (every one
    ahcore has opened before) needs no switch, and no lock: only its mode is
    read. Switching one in rollback mode (a new file, or an ahserver site's)
    takes an exclusive lock, which SQLite refuses at once, without waiting,
    while another connection writes, and after ``busy_timeout`` while one
    reads: a burst of first requests opening several connections, another
    worker, or a script writing to the file. That refusal must not fail the
    request that opened the connection, so the switch waits ``wait_ms`` at
    most, and when it is refused the connection goes on in the file's mode
    (SQLite connections notice the switch a later one makes at their next
    transaction) and the next connection opened tries again. ``synchronous =
    NORMAL`` is only set on a connection that is in WAL mode, where it is
    safe: in rollback mode SQLite's default (FULL) stays.
    """
    mode = str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode != "wal":
        db.execute(f"PRAGMA busy_timeout = {wait_ms}")
        try:
            mode = str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if _fall_back_reason(exc) != "locked":
                raise
            log.warning(
                "sqlite database %r: not switched to WAL mode now (%s: another connection "
                "holds it); it stays in %s mode until a later connection switches it",
                name, exc, mode,
            )
        finally:
            db.execute(f"PRAGMA busy_timeout = {busy_ms}")
    if mode == "wal":
        db.execute("PRAGMA synchronous = NORMAL")


def _fall_back_reason(exc: sqlite3.OperationalError) -> str | None:
    """``"slow"``, ``"locked"``, or None when the error is the statement's own."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        code &= 0xFF  # the primary code of an extended one (SQLITE_BUSY_SNAPSHOT, …)
        if code == _SQLITE_INTERRUPT:
            return "slow"
        return "locked" if code in (_SQLITE_BUSY, _SQLITE_LOCKED) else None
    message = str(exc)
    if message == "interrupted":
        return "slow"
    return "locked" if message.startswith(_LOCK_MESSAGES) else None


class SqliteConnection:
    """One sqlite3 connection (on its own thread) behind the driver-neutral interface."""

    dialect = SQLITE

    def __init__(self, raw: ConnectionThread, name: str, pool: SqlitePool | None = None,
                 busy_ms: int = 0) -> None:
        self.raw = raw
        self.name = name
        self.pool = pool
        self._busy_ms = busy_ms
        self._busy_off = False  # busy timeout set to 0 for a read on the loop
        raw.before_job = self._before_job
        self.broken = False
        self._pending_begin = False
        self._in_tx = False
        self._read_only = False  # what the current transaction asked for
        # Whether the open transaction may have changed anything (set on the
        # connection's thread); a clean one ends without waiting for COMMIT.
        self._dirty = False
        self._changes = 0  # total_changes when the transaction began
        self._query_only = False  # what the connection is set to (changed on its thread)
        self._limit_s: float | None = None
        self._deadline: float | None = None
        # One cursor for statements, BEGIN and COMMIT (a capped read that
        # stops short closes it): a new sqlite3 cursor per statement costs
        # more than a short statement. Used by one thread at a time, like
        # the connection.
        self._cursor: sqlite3.Cursor | None = None

    # Runs on the connection's thread, every _PROGRESS_STEPS virtual-machine steps.
    def _past_deadline(self) -> bool:
        deadline = self._deadline
        return deadline is not None and time.monotonic() > deadline

    # Runs on the connection's thread, before each statement.
    def _start(self, db: sqlite3.Connection, standalone: bool) -> None:
        if self._read_only != self._query_only:
            db.execute(f"PRAGMA query_only = {int(self._read_only)}")
            self._query_only = self._read_only
        if self._pending_begin and not standalone:
            cur = self._cursor
            (cur if cur is not None else db).execute("BEGIN")
            self._pending_begin = False
            self._in_tx = True
            self._dirty = False
            self._changes = db.total_changes

    # Runs on the connection's thread before every job.
    def _before_job(self) -> None:
        if self._busy_off:
            self.raw.db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            self._busy_off = False

    def _run(
        self,
        sql: str,
        params: Sequence[Any],
        max_rows: int | None,
        standalone: bool = False,
        deadline: float | None = None,
    ) -> FetchResult:
        db: sqlite3.Connection = self.raw.db
        if self._read_only != self._query_only or (self._pending_begin and not standalone):
            self._start(db, standalone)
        if deadline is not None:
            self._deadline = deadline
        elif self._limit_s is not None:
            self._deadline = time.monotonic() + self._limit_s
        try:
            return self._run_all(db, sql, params, max_rows)
        finally:
            self._deadline = None

    def _run_all(
        self, db: sqlite3.Connection, sql: str, params: Sequence[Any], max_rows: int | None
    ) -> FetchResult:
        """The statement, read to its end or to ``max_rows``, on the connection's reused cursor."""
        cur = self._cursor
        if cur is None:
            cur = self._cursor = db.cursor()
        try:
            cur.execute(sql, params)
            description = cur.description
            # DDL, DML and writing pragmas have no result columns; an
            # INSERT … RETURNING has them but changes total_changes.
            if description is None or db.total_changes != self._changes:
                self._dirty = True
            if description is None:
                return FetchResult([], [], cur.rowcount)
            columns = [d[0] for d in description]
            if max_rows is None:
                return FetchResult(columns, cur.fetchall(), cur.rowcount)
            rows = cur.fetchmany(max_rows)
            result = FetchResult(columns, rows, cur.rowcount)
            if len(rows) >= max_rows:
                # Rows may be left, and an unfinished statement holds its
                # snapshot (in autocommit, a read transaction): closing the
                # cursor resets it. Fewer rows: sqlite3 reached the end and
                # reset it already.
                self._cursor = None
                cur.close()
            return result
        except BaseException:
            # sqlite3 resets a statement that failed; a cursor left in an
            # unknown state is dropped all the same.
            self._cursor = None
            with contextlib.suppress(Exception):
                cur.close()
            raise

    def timeout_error(self) -> StatementTimeout:
        limit = self._limit_s or 0
        return StatementTimeout(
            f"the query ran longer than the time limit of {limit * 1000:.0f} ms"
        )

    async def _job(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the connection's thread, translating sqlite's errors."""
        try:
            return await self.raw.run(fn, *args)
        except asyncio.CancelledError:
            # The statement would go on running on the connection's thread,
            # and the rollback that frees the pool slot would queue behind
            # it: stop it now.
            with contextlib.suppress(Exception):
                self.raw.interrupt()
            raise
        except sqlite3.OperationalError as exc:
            if str(exc) == "interrupted" and self._limit_s is not None:
                raise self.timeout_error() from None
            raise
        except ConnectionClosed as exc:
            self.broken = True
            raise DatabaseUnavailable(f"database {self.name!r}: connection lost") from exc

    async def _call(
        self, sql: str, params: Sequence[Any], max_rows: int | None, standalone: bool = False
    ) -> FetchResult:
        result = self._call_nowait(sql, params, max_rows, standalone)
        return result if type(result) is FetchResult else await result  # type: ignore[misc]

    def _call_nowait(
        self, sql: str, params: Sequence[Any], max_rows: int | None, standalone: bool
    ) -> FetchResult | Awaitable[FetchResult]:
        """The result of a read run on the loop, or the awaitable of the statement's thread job.

        Nothing is awaited here, so a read on the loop costs its caller no
        coroutine of the driver's; errors of the loop's run are raised here.
        """
        if params and not _PLAIN_PARAMS.issuperset(map(type, params)):
            if any(isinstance(v, _CONVERTED) for v in params):
                params = [_sqlite_value(v) for v in params]
        pool = self.pool
        deadline = None
        if pool is not None and pool.loop_read_s and self.raw.idle and pool.on_loop(sql):
            start = time.monotonic()
            limit = self._limit_s
            mine = start + pool.loop_read_s  # the loop's own deadline
            if limit is None:
                loop_deadline = mine
            else:
                deadline = start + limit
                loop_deadline = mine if mine < deadline else deadline
            try:
                if not self._busy_off:
                    # Never wait for a lock on the loop: SQLITE_BUSY sends the read to the thread.
                    self.raw.db.execute("PRAGMA busy_timeout = 0")
                    self._busy_off = True
                return self._run(sql, params, max_rows, standalone, loop_deadline)
            except sqlite3.OperationalError as exc:
                if deadline is not None and time.monotonic() > deadline:
                    raise self.timeout_error() from None
                reason = _fall_back_reason(exc)
                if reason is None:
                    raise
                if reason == "slow":
                    pool.fell_back(sql)
                    return self._after_slow(sql, params, max_rows, standalone, deadline)
        return self._job(self._run, sql, params, max_rows, standalone, deadline)

    async def _after_slow(
        self,
        sql: str,
        params: Sequence[Any],
        max_rows: int | None,
        standalone: bool,
        deadline: float | None,
    ) -> FetchResult:
        """A read too slow for the loop, run again on the thread (the deadline unchanged)."""
        assert self.pool is not None
        started = time.monotonic()
        result = await self._job(self._run, sql, params, max_rows, standalone, deadline)
        if time.monotonic() - started < self.pool.loop_read_s:
            self.pool.forgive(sql)  # the loop's try was preempted (a busy machine)
        return result

    async def begin(self, *, read_only: bool = False) -> None:
        # Deferred: the pragma and BEGIN go with the first statement (no thread hop here).
        self._read_only = read_only
        self._pending_begin = True

    def begin_nowait(self, read_only: bool, time_limit_ms: int | None) -> None:
        """:meth:`begin` and :meth:`set_time_limit` together, without a coroutine."""
        self._read_only = read_only
        self._pending_begin = True
        self._limit_s = time_limit_ms / 1000 if time_limit_ms else None

    def commit_nowait(self) -> bool:
        """End a transaction that wrote nothing, on the loop; False: nothing done, await :meth:`commit`.

        A block whose only statement was a standalone read (or none) has no
        transaction open: nothing to run at all.
        """
        if self._in_tx:
            if self._dirty and not self._read_only:
                return False
            if not self.raw.idle or not self._end_on_loop("COMMIT"):
                return False
            self._in_tx = False
        self._pending_begin = False
        self._limit_s = None
        return True

    async def commit(self) -> None:
        self._pending_begin = False
        self._limit_s = None
        if self._in_tx:
            if self._read_only or not self._dirty:
                self._in_tx = False
                if self.raw.idle and self._end_on_loop("COMMIT"):
                    return
                # Ending a transaction that only read (read-only, or nothing
                # written: an ahserver script doing one sqlExe SELECT) cannot
                # fail in a way the caller could act on: queue it and go on
                # (the connection's thread runs it before any later job on
                # this connection), saving a thread round trip.
                self.raw.submit(self._end_read)
            else:
                # SQLite keeps the transaction open when COMMIT fails (a
                # deferred constraint, SQLITE_BUSY): the flag drops only on
                # success, so the caller's rollback — and the pool's release
                # — still end it instead of returning a connection that
                # holds the write lock.
                await self.raw.run(self.raw.db.execute, "COMMIT")
                self._in_tx = False

    def _end_on_loop(self, statement: str) -> bool:
        """End a transaction that wrote nothing, on the loop; False: leave it to the thread.

        Ending a read releases a snapshot and takes no lock: it never waits.
        """
        if self.pool is None or not self.pool.loop_read_s:
            return False
        try:
            cur = self._cursor
            if cur is not None:
                cur.execute(statement)
            else:
                self.raw.db.execute(statement)
        except Exception:
            return False
        return True

    # Runs on the connection's thread.
    def _end_read(self) -> None:
        try:
            self.raw.db.execute("COMMIT")
        except Exception as exc:
            log.warning("ending a read transaction on %r failed: %s", self.name, exc)
            with contextlib.suppress(Exception):
                self.raw.db.execute("ROLLBACK")

    async def rollback(self) -> None:
        self._pending_begin = False
        self._limit_s = None
        if self._in_tx:
            self._in_tx = False
            if not self._dirty and self.raw.idle and self._end_on_loop("ROLLBACK"):
                return
            try:
                await self.raw.run(self.raw.db.execute, "ROLLBACK")
            except Exception:
                self.broken = True
                log.warning("rollback failed on %r; the connection is discarded", self.name)

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        return (await self._call(sql, params, None)).rowcount

    async def fetch(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        max_rows: int | None = None,
        standalone: bool = False,
    ) -> FetchResult:
        # A read that need not share the transaction's snapshot runs on its
        # own when it comes first: no BEGIN and COMMIT around it.
        result = self._call_nowait(sql, params, max_rows, standalone and self._read_only)
        return result if type(result) is FetchResult else await result  # type: ignore[misc]

    def fetch_nowait(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        max_rows: int | None = None,
        standalone: bool = False,
    ) -> FetchResult | Awaitable[FetchResult]:
        """:meth:`fetch`, answered at once when the read ran on the loop (else an awaitable)."""
        return self._call_nowait(sql, params, max_rows, standalone and self._read_only)

    # ------------------------------------------------------------ streaming

    def _open_cursor(self, sql: str, params: Sequence[Any], deadline: float | None) -> Any:
        db: sqlite3.Connection = self.raw.db
        self._start(db, False)
        self._dirty = True  # streamed statements are not inspected: assume a write
        self._deadline = deadline
        try:
            return db.execute(sql, params)
        finally:
            self._deadline = None

    def _fetch_batch(self, cur: sqlite3.Cursor, size: int, deadline: float | None) -> list[Any]:
        self._deadline = deadline
        try:
            return cur.fetchmany(size)
        finally:
            self._deadline = None

    @contextlib.asynccontextmanager
    async def stream(
        self, sql: str, params: Sequence[Any], *, batch_rows: int = 1000
    ) -> AsyncIterator[SqliteRowStream]:
        if any(isinstance(v, _CONVERTED) for v in params):
            params = [_sqlite_value(v) for v in params]
        deadline = time.monotonic() + self._limit_s if self._limit_s is not None else None
        cur = await self._job(self._open_cursor, sql, params, deadline)
        try:
            columns = [d[0] for d in cur.description or ()]
            yield SqliteRowStream(self, cur, columns, max(1, batch_rows), deadline)
        finally:
            try:
                await self.raw.run(cur.close)
            except Exception:
                self.broken = True

    async def describe(self, sql: str, params: Sequence[Any]) -> list[ColumnInfo]:
        result = await self._call(f"SELECT * FROM ({sql}) ahcore_q LIMIT 1", params, None)
        first = result.rows[0] if result.rows else None
        declared = await self._declared_types(sql)
        fields = []
        for i, name in enumerate(result.columns):
            found = declared.get(name.lower(), set())
            guess = next(iter(found)) if len(found) == 1 else None
            value_type = from_value(first[i]) if first is not None else None
            fields.append(ColumnInfo(name, declared_or_value(guess, value_type)))
        return fields

    async def _declared_types(self, sql: str) -> dict[str, set[str | None]]:
        """Column name → field types declared for it in the tables and views ``sql`` names."""
        words = {w.lower() for w in _WORD.findall(sql)}
        columns = await self._call(_ALL_COLUMNS, [], None)
        declared: dict[str, set[str | None]] = {}
        for table, column, decl in columns.rows:
            if table.lower() in words:
                declared.setdefault(column.lower(), set()).add(from_sql_name(decl))
        return declared

    async def _real_name(self, table: str) -> str | None:
        """The name a table or view is stored under, looked up without regard to case."""
        found = await self._call(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND lower(name) = lower(?)",
            [table],
            None,
        )
        return str(found.rows[0][0]) if found.rows else None

    async def table_columns(self, table: str) -> tuple[str, list[ColumnInfo]] | None:
        real = await self._real_name(table)
        if real is None:
            return None
        info = await self._call("SELECT name, type FROM pragma_table_info(?)", [real], None)
        return real, [ColumnInfo(r[0], r[1] or "") for r in info.rows]

    async def list_tables(self) -> list[TableSummary]:
        found = await self._call(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite^_%' ESCAPE '^' ORDER BY name",
            [],
            None,
        )
        return [TableSummary(r[0]) for r in found.rows]

    async def describe_table(self, table: str) -> TableDetail | None:
        real = await self._real_name(table)
        if real is None:
            return None
        info = await self._call(
            'SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid', [real], None
        )
        columns = []
        for name, declared, notnull, pk in info.rows:
            m = _DECLARED.match(declared or "")
            base, length, scale = m.groups() if m else (declared, None, None)
            columns.append(
                ColumnDetail(
                    name,
                    base or "",
                    int(length) if length else None,
                    int(scale) if scale else None,
                    # SQLite lets a non-INTEGER primary key hold NULL (a kept
                    # bug); a key is described as the NOT NULL it means.
                    nullable=not notnull and not pk,
                )
            )
        primary = tuple(r[0] for r in sorted((r for r in info.rows if r[3]), key=lambda r: r[3]))
        listed = await self._call(
            'SELECT name, "unique", origin FROM pragma_index_list(?) ORDER BY name', [real], None
        )
        indexes = []
        for index, unique, origin in listed.rows:
            if origin == "pk":
                continue  # the primary key's own index
            cols = await self._call(
                "SELECT name FROM pragma_index_info(?) ORDER BY seqno", [index], None
            )
            names = tuple(r[0] for r in cols.rows if r[0] is not None)  # expressions have none
            indexes.append(IndexDetail(index, bool(unique), names))
        return TableDetail(real, tuple(columns), primary, tuple(indexes))

    async def set_time_limit(self, ms: int | None) -> None:
        self._limit_s = ms / 1000 if ms else None

    @property
    def in_transaction(self) -> bool:
        return self._in_tx

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.raw.close()


class SqliteRowStream(BatchedRowStream):
    """The batches of one open sqlite cursor, each read by one job on the connection's thread."""

    async def fetch_batch(self) -> list[Any]:
        conn: SqliteConnection = self.conn
        return await conn._job(conn._fetch_batch, self.cur, self.batch_rows, self.deadline)  # noqa: SLF001 - the driver's own connection class


class SqlitePool:
    """At most ``maxconn`` connections, opened on demand and kept for reuse."""

    dialect = SQLITE

    def __init__(self, name: str, path: str, maxconn: int, acquire_timeout: float,
                 loop_read_ms: float = _LOOP_READ_MS) -> None:
        self.name = name
        self.path = path
        self.maxconn = maxconn
        self.acquire_timeout = acquire_timeout
        #: Seconds a read may run on the loop's thread before it moves to its own (0: never).
        self.loop_read_s = max(0.0, loop_read_ms) / 1000
        self._slots = _Slots(maxconn)
        self._idle: list[SqliteConnection] = []
        self._closed = False
        # Statement text → True (a query: may run on the loop), False (never),
        # or the monotonic time until which it runs on the thread (it was slow).
        self._on_loop: dict[str, bool | float] = {}
        # Reads the same task ran on the loop since the loop last had control.
        self._streak = 0
        self._streak_task: asyncio.Task[Any] | None = None
        self._streak_reset: asyncio.Handle | None = None
        # The loop of the last read: asyncio.current_task(loop) makes no
        # get_running_loop call, which on Python 3.11 is a getpid(2) system
        # call per read (as in ahcore_dspy's watchdog).
        self._loop: asyncio.AbstractEventLoop | None = None

    def on_loop(self, sql: str) -> bool:
        """Whether the read ``sql`` may run on the loop's thread now."""
        allowed = self._on_loop.get(sql)
        if allowed is not True:
            if allowed is None:
                if len(self._on_loop) >= _SQL_MEMORY:
                    self._on_loop.clear()
                allowed = self._on_loop[sql] = is_query(sql)
                if not allowed:
                    return False
            elif allowed is False or time.monotonic() < allowed:
                return False
            else:
                self._on_loop[sql] = True  # slow a while ago: try the loop again
        # A task that ran reads on the loop without yielding in between goes
        # to the thread after a few, so the loop (and its timers) get a turn.
        # A callback queued with the first read of a turn marks the loop's
        # next turn: any yield of the task runs it first.
        # A read by another task than the last one needs no marker: that
        # task is not running, so it yielded (one request, one read: no
        # callback at all).
        loop = self._loop
        task = asyncio.current_task(loop) if loop is not None else None
        if task is None:  # the first read, or one on another loop
            task = asyncio.current_task()
            self._loop = task.get_loop() if task is not None else None
        if task is not self._streak_task:
            self._streak_task = task
            self._streak = 1
            return True
        if self._streak >= _LOOP_STREAK:
            return False
        self._streak += 1
        if self._streak_reset is None:
            self._streak_reset = (self._loop or asyncio.get_running_loop()).call_soon(self._end_streak)
        return True

    def _end_streak(self) -> None:
        self._streak = 0
        self._streak_task = None
        self._streak_reset = None

    def fell_back(self, sql: str) -> None:
        """``sql`` was too slow on the loop: the thread runs it for a while."""
        if self._on_loop.get(sql) is not False:
            self._on_loop[sql] = time.monotonic() + _SLOW_FOR

    def forgive(self, sql: str) -> None:
        """``sql`` ran within the loop's budget on the thread: it was preempted, not slow."""
        if self._on_loop.get(sql) not in (None, False):
            self._on_loop[sql] = True

    async def _open(self) -> SqliteConnection:
        uri = self.path.startswith("file:")
        raw = ConnectionThread(self.name)
        try:
            await raw.open(self.path, uri=uri)
        except sqlite3.Error as exc:
            await raw.close()
            log.error("cannot open sqlite database %r (%s): %s", self.name, self.path, exc)
            raise DatabaseUnavailable(f"database {self.name!r} cannot be opened") from None
        busy_ms = int(self.acquire_timeout * 1000)
        conn = SqliteConnection(raw, self.name, self, busy_ms)

        def setup() -> None:
            db = raw.db
            db.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if not uri:
                use_wal(db, self.name, min(busy_ms, _WAL_SWITCH_WAIT_MS), busy_ms)
            db.set_progress_handler(conn._past_deadline, _PROGRESS_STEPS)  # noqa: SLF001 - the driver's own connection class

        try:
            await raw.run(setup)
        except sqlite3.Error as exc:
            await raw.close()
            log.error("cannot set up a connection to sqlite database %r (%s): %s",
                      self.name, self.path, exc)
            raise DatabaseUnavailable(f"database {self.name!r} cannot be opened") from None
        return conn

    def acquire(self) -> _Acquired:
        """``async with pool.acquire() as conn``: a connection, back in the pool after the block."""
        return _Acquired(self)

    def enter_nowait(self, read_only: bool, time_limit_ms: int | None) -> SqliteConnection | None:
        """An idle connection with the block's transaction begun (deferred), taken at once.

        ``None`` when no idle connection and free slot are at hand (or the
        pool is shut down): the caller goes the awaited way, :meth:`acquire`.
        Give it back with :meth:`exit_nowait` or :meth:`give_back`.
        """
        idle = self._idle
        slots = self._slots
        if not idle or slots.free <= 0 or self._closed:
            return None
        slots.free -= 1  # _Slots.take_nowait, inline
        conn = idle.pop()
        conn.begin_nowait(read_only, time_limit_ms)
        return conn

    def exit_nowait(self, conn: SqliteConnection) -> bool:
        """Commit ``conn``'s transaction if it wrote nothing and take it back, without waiting.

        False (nothing done): the caller commits and calls :meth:`give_back`.
        """
        if conn.broken or self._closed or not conn.commit_nowait():
            return False
        self._idle.append(conn)
        self._slots.release()
        return True

    async def give_back(self, conn: SqliteConnection) -> None:
        """Take back a connection of :meth:`enter_nowait` (rolling back what is still open)."""
        await self._give_back(conn)

    async def _take(self) -> SqliteConnection:
        if self._closed:
            raise DatabaseUnavailable(f"database {self.name!r} is shut down")
        try:
            await self._slots.take(self.acquire_timeout)
        except TimeoutError:
            raise DatabaseUnavailable(
                f"database {self.name!r}: no free connection within "
                f"{self.acquire_timeout:g} s (pool of {self.maxconn})"
            ) from None
        try:
            return self._idle.pop() if self._idle else await self._open()
        except BaseException:
            self._slots.release()
            raise

    async def _give_back(self, conn: SqliteConnection) -> None:
        try:
            await self._release(conn)
        finally:
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


class _Slots:
    """At most ``n`` holders, in order of arrival (an ``asyncio.Semaphore`` with a non-waiting take).

    ``asyncio.Semaphore`` takes even a free slot through a coroutine; here
    :meth:`take_nowait` is a counter test. A released slot goes straight to
    the first waiter, so a newcomer never overtakes one.
    """

    __slots__ = ("free", "_waiters")

    def __init__(self, n: int) -> None:
        self.free = n
        self._waiters: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self.free == 0

    def take_nowait(self) -> bool:
        if self.free > 0:
            self.free -= 1
            return True
        return False

    async def take(self, timeout: float) -> None:
        """A slot, waiting at most ``timeout`` seconds (``TimeoutError``); no timer when one is free."""
        if self.take_nowait():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot as the wait ended: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes to the waiter
                return
        self.free += 1


class _Acquired:
    """The context manager of :meth:`SqlitePool.acquire` (a class: cheaper than a generator)."""

    __slots__ = ("_pool", "_conn")

    def __init__(self, pool: SqlitePool) -> None:
        self._pool = pool
        self._conn: SqliteConnection | None = None

    async def __aenter__(self) -> SqliteConnection:
        self._conn = await self._pool._take()  # noqa: SLF001 - the pool's own helper
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool._give_back(conn)  # noqa: SLF001 - the pool's own helper


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
    loop_read_ms = config.kwargs.get("loop_read_ms", _LOOP_READ_MS)
    if isinstance(loop_read_ms, bool) or not isinstance(loop_read_ms, (int, float)):
        raise ValueError(f"kwargs.loop_read_ms of database {name!r} must be a number of ms")
    return SqlitePool(name, database_path(config, site), config.maxconn, config.acquire_timeout,
                      float(loop_read_ms))


@hookimpl
def register_db_driver() -> DriverSpec:
    return DriverSpec(name="sqlite", aliases=("sqlite3", "aiosqlite"), create_pool=create_pool)
