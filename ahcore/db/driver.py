"""The driver contract: what a database plugin declares through ``register_db_driver``.

A driver gives the kernel a :class:`Pool` per configured database. The pool
hands out :class:`Connection` adapters that speak one small vocabulary
(``execute``, ``fetch``, ``stream``, ``describe``, ``begin``/``commit``/
``rollback``, ``table_columns``, ``list_tables``, ``describe_table``) so
that :mod:`ahcore.db.sqlor` never needs to know which engine it talks to.

Drivers translate their own exceptions at this boundary: an unreachable
database or a broken connection becomes
:class:`ahcore.db.errors.DatabaseUnavailable` (503), a statement stopped by
the time limit :class:`ahcore.db.errors.StatementTimeout` (504). A
connection that failed that way is marked broken and is closed instead of
being returned to the pool, so the next request gets a fresh one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ahcore.config import DatabaseConfig
    from ahcore.site import Site


@dataclass(frozen=True)
class Dialect:
    """What the SQL text generator needs to know about an engine.

    ``paramstyle`` is ``qmark`` (``?``) or ``format`` (``%s``, with literal
    ``%`` doubled); ``quote`` is the identifier quote character.
    ``lazy_fetch`` says that ``fetch(..., max_rows=n)`` makes the database
    produce no more than ``n`` rows (SQLite steps the statement only as far
    as it is read), so a cap needs no ``LIMIT`` wrapper.
    """

    name: str
    paramstyle: Literal["qmark", "format"]
    quote: str = '"'
    lazy_fetch: bool = False

    def ident(self, name: str) -> str:
        """Quote an identifier that has already been checked against the schema."""
        q = self.quote
        return q + name.replace(q, q + q) + q


@dataclass(frozen=True)
class ColumnInfo:
    """One column of a table or a result, as the database reports it.

    From ``table_columns`` ``type`` is the engine's own type name; from
    ``describe`` it is a field type of :data:`ahcore.db.fieldtypes.FIELD_TYPES`.
    """

    name: str
    type: str = ""


@dataclass(frozen=True)
class TableSummary:
    """A table of the database, as ``list_tables`` reports it.

    ``comment`` is the table's comment (MySQL ``COMMENT``, PostgreSQL
    ``COMMENT ON TABLE``), ``""`` when it has none or the engine has none.
    """

    name: str
    comment: str = ""


@dataclass(frozen=True)
class ColumnDetail:
    """One column of a table, in full (``describe_table``).

    ``type`` is the engine's base type name without size (``varchar``,
    ``int4``, ``NUMERIC``); ``length`` is the declared size or precision and
    ``scale`` the decimals, ``None`` where the type has none.
    """

    name: str
    type: str
    length: int | None = None
    scale: int | None = None
    nullable: bool = True
    comment: str = ""


@dataclass(frozen=True)
class IndexDetail:
    """A secondary index (the primary key's own index is not one)."""

    name: str
    unique: bool
    columns: tuple[str, ...]


@dataclass(frozen=True)
class TableDetail:
    """A table's real name, comment, columns in order, primary key and indexes."""

    name: str
    columns: tuple[ColumnDetail, ...]
    primary: tuple[str, ...] = ()
    indexes: tuple[IndexDetail, ...] = ()
    comment: str = ""


@dataclass
class FetchResult:
    """Rows of a statement: ``columns`` in order (empty for DML), ``rows`` as tuples.

    ``rowcount`` is the driver's affected-row count (``-1`` when unknown).
    """

    columns: list[str]
    rows: list[Sequence[Any]]
    rowcount: int = -1


class RowStream(Protocol):
    """The rows of one running query, read in batches (see :meth:`Connection.stream`).

    ``columns`` are the result's column names; iterating gives lists of at
    most ``batch_rows`` rows, never an empty one, until the result ends.
    """

    columns: list[str]

    def __aiter__(self) -> AsyncIterator[list[Sequence[Any]]]: ...


class BatchedRowStream:
    """A :class:`RowStream` over one open cursor: a driver gives ``fetch_batch``.

    The loop is the same for every engine: check the deadline, fetch at most
    ``batch_rows`` rows, yield a non-empty batch, stop after a short one.
    ``conn`` is the driver's connection and ``cur`` its open cursor;
    ``done`` says the result was read to its end (a driver that must drain or
    drop an unfinished result looks at it). ``conn.timeout_error()`` (part
    of :class:`Connection`) makes the exception raised when ``deadline`` (a
    ``time.monotonic()`` value) has passed.
    """

    def __init__(
        self, conn: Any, cur: Any, columns: list[str], batch_rows: int, deadline: float | None
    ) -> None:
        self.conn = conn
        self.cur = cur
        self.columns = columns
        self.batch_rows = batch_rows
        self.deadline = deadline
        self.done = not columns

    async def fetch_batch(self) -> list[Any]:
        """At most ``batch_rows`` further rows; fewer (maybe none) at the end."""
        raise NotImplementedError

    async def __aiter__(self) -> AsyncIterator[list[Any]]:
        while not self.done:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise self.conn.timeout_error()
            batch = await self.fetch_batch()
            if len(batch) < self.batch_rows:
                self.done = True
            if batch:
                yield batch


class Connection(Protocol):
    """A pooled connection, wrapped so every engine looks the same."""

    dialect: Dialect

    async def begin(self, *, read_only: bool = False) -> None:
        """Start the one transaction of a sqlor context (read-only when asked)."""

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run a statement; return the affected row count (-1 when unknown)."""

    async def fetch(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        max_rows: int | None = None,
        standalone: bool = False,
    ) -> FetchResult:
        """Run a query; return at most ``max_rows`` rows (all when ``None``).

        A statement that returns no result set gives ``columns == []``.
        ``standalone`` says the caller does not need this read to share the
        transaction's snapshot with later statements: a driver may run it
        on its own when it is the first of a read-only transaction (SQLite
        then spares the ``BEGIN``/``COMMIT``). Drivers may ignore it.
        """

    def stream(
        self, sql: str, params: Sequence[Any], *, batch_rows: int = 1000
    ) -> AbstractAsyncContextManager[RowStream]:
        """Run a query and read its rows in batches, never holding the whole result.

        SQLite steps the statement batch by batch, PostgreSQL reads a
        server-side cursor (``FETCH``), MySQL an unbuffered result. Inside
        the block the connection runs nothing else. The statement time
        limit bounds the whole stream, from the query's start to its last
        batch: past it the next batch raises ``StatementTimeout``. Leaving
        the block early (an error, a client that went away) closes the
        cursor, or marks the connection broken when that is cheaper than
        reading the rest.
        """

    async def describe(self, sql: str, params: Sequence[Any]) -> list[ColumnInfo]:
        """The result columns of a query with their field types (:mod:`ahcore.db.fieldtypes`)."""

    async def table_columns(self, table: str) -> tuple[str, list[ColumnInfo]] | None:
        """The table's real name and columns, looked up case-insensitively; ``None`` if absent."""

    async def list_tables(self) -> list[TableSummary]:
        """The base tables of the database (views excluded), sorted by name.

        Optional for third-party drivers: without it ``sor.tables()`` raises
        ``NotImplementedError`` naming the driver.
        """

    async def describe_table(self, table: str) -> TableDetail | None:
        """Table ``table`` in full, looked up case-insensitively; ``None`` if absent.

        Optional for third-party drivers: without it ``sor.I(table)`` is
        built from :meth:`table_columns` (names and types only).
        """

    def set_time_limit(self, ms: int | None) -> Awaitable[None]:
        """Stop any later statement of this transaction that runs longer than ``ms``."""

    def timeout_error(self) -> Exception:
        """The exception for a statement past its time limit (a ``StatementTimeout``).

        Public so the shared :class:`BatchedRowStream` loop and a driver's own
        code raise the same error with the same message.
        """


class Pool(Protocol):
    """A bounded set of connections to one configured database."""

    dialect: Dialect

    def acquire(self) -> AbstractAsyncContextManager[Connection]:
        """Borrow a connection; raises ``DatabaseUnavailable`` when none comes in time."""

    async def close(self) -> None:
        """Close every connection; called once at application shutdown."""


class NowaitPool(Protocol):
    """Optional: a pool that lends a connection and takes it back without awaiting.

    A driver whose connections need no I/O to begin a transaction or to end
    one that only read (SQLite, whose reads may run on the loop's thread)
    offers these, and ``sqlorContext`` then costs no coroutine of the
    pool's. Either call may decline (``None``, ``False``); the caller then
    goes the awaited way. ``sqlorContext`` tells such a pool by its
    ``enter_nowait`` attribute.
    """

    def enter_nowait(self, read_only: bool, time_limit_ms: int | None) -> Connection | None:
        """A free connection with the transaction begun and the time limit set; or ``None``."""

    def exit_nowait(self, conn: Any) -> bool:
        """Commit a transaction that wrote nothing and take ``conn`` back; False: nothing done."""

    async def give_back(self, conn: Any) -> None:
        """Take back a connection of :meth:`enter_nowait`, rolling back what is still open."""


class NowaitConnection(Protocol):
    """Optional: a connection whose reads may be answered without awaiting (SQLite on the loop)."""

    def fetch_nowait(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        max_rows: int | None = None,
        standalone: bool = False,
    ) -> FetchResult | Awaitable[FetchResult]:
        """:meth:`Connection.fetch`'s result, or an awaitable of it when the read must wait."""


PoolFactory = Callable[[str, "DatabaseConfig", "Site"], Awaitable[Pool]]


@dataclass(frozen=True)
class DriverSpec:
    """A database driver.

    ``name`` is canonical (``sqlite``, ``mysql``, ``postgres``); ``aliases``
    are the ahserver/sqlor driver names it answers to; ``create_pool(name,
    dbconfig, site)`` opens a :class:`Pool` for one configured database. It
    should not need the database to be reachable: connections are made on
    demand, so a site starts while its database is down and recovers when
    it returns.
    """

    name: str
    create_pool: PoolFactory
    aliases: tuple[str, ...] = ()
    plugin: str = field(default="", compare=False)
