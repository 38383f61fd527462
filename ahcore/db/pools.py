"""Named databases of one application and the ``sqlorContext`` transaction scope.

One :class:`DBPools` per application, kept on the app under
:data:`DBPOOLS_KEY` (no module globals: two apps never share a pool). A
database's pool is created on first use, not at start-up, so a site starts
while a database is down; a failed creation is a 503 and is retried by the
next request.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from ahcore.db.driver import Connection, DriverSpec, NowaitPool, Pool
from ahcore.db.errors import DatabaseUnavailable, read_only_refusal
from ahcore.db.schema import SchemaCache
from ahcore.db.sqlor import SQLor, commit_or_refuse
from ahcore.plugins import canonical_driver

if TYPE_CHECKING:
    from ahcore.config import DatabaseConfig
    from ahcore.site import Site

log = logging.getLogger("ahcore.db")


class Database:
    """One configured database: its driver, its pool (made lazily) and its schema cache."""

    def __init__(self, name: str, config: DatabaseConfig, driver: DriverSpec, site: Site) -> None:
        self.name = name
        self.config = config
        self.driver = driver
        self.site = site
        self.schema = SchemaCache()
        self._pool: Pool | None = None
        #: The pool once made, when it lends connections without awaiting (:class:`NowaitPool`).
        self.nowait_pool: NowaitPool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> Pool:
        """The pool, created on first call."""
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                try:
                    pool = await self.driver.create_pool(self.name, self.config, self.site)
                    if callable(getattr(pool, "enter_nowait", None)):
                        self.nowait_pool = cast("NowaitPool", pool)
                    self._pool = pool
                except web.HTTPException:
                    raise
                except Exception as exc:
                    log.error("cannot create the pool of database %r: %r", self.name, exc)
                    raise DatabaseUnavailable(f"database {self.name!r} is unavailable") from None
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        self.nowait_pool = None
        if pool is not None:
            await pool.close()


class DBPools:
    """The databases of one application, by their config names."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.databases: dict[str, Database] = {}
        for name, config in site.config.databases.items():
            driver = site.drivers.get(canonical_driver(config.driver))
            if driver is not None:  # Site already refused a missing driver at build time
                self.databases[name] = Database(name, config, driver, site)

    def __contains__(self, name: object) -> bool:
        return name in self.databases

    def add_database(self, name: str, config: DatabaseConfig) -> None:
        """Add a database that the site's config does not name (a plugin's own store).

        The driver is looked up as for a configured database; a name already
        in use is an error, so a plugin never replaces the site's database.
        """
        if name in self.databases:
            raise ValueError(f"database {name!r} already exists")
        driver = self.site.drivers.get(canonical_driver(config.driver))
        if driver is None:
            raise LookupError(
                f"database {name!r}: no enabled driver for {config.driver!r}"
            )
        self.databases[name] = Database(name, config, driver, self.site)

    def database(self, name: str) -> Database:
        try:
            return self.databases[name]
        except KeyError:
            raise LookupError(f"no database {name!r} in the config's 'databases'") from None

    def sqlorContext(
        self, name: str, *, read_only: bool = False, time_limit_ms: int | None = None
    ) -> AbstractAsyncContextManager[SQLor]:
        """One connection and one transaction on database ``name``.

        Commits when the block ends normally (or leaves with an HTTP
        redirect/success exception), rolls back and re-raises on any other
        exception. ``read_only`` opens a read-only transaction (a write the
        database refuses in it is a 403, :class:`ahcore.db.errors.ReadOnlyRefused`);
        ``time_limit_ms`` stops any statement running longer (504).
        """
        return _SqlorBlock(self.database(name), read_only, time_limit_ms)

    def clear_schema_cache(self) -> None:
        """Forget learnt tables and result columns (after a hot reload)."""
        for db in self.databases.values():
            db.schema.clear()

    async def close(self) -> None:
        for db in self.databases.values():
            try:
                await db.close()
            except Exception:
                log.exception("closing the pool of database %r failed", db.name)


class _SqlorBlock:
    """The ``sqlorContext`` block (a class: this runs for every database request)."""

    __slots__ = ("db", "read_only", "time_limit_ms", "_acquired", "_conn", "_lender", "_sor")

    def __init__(self, db: Database, read_only: bool, time_limit_ms: int | None) -> None:
        self.db = db
        self.read_only = read_only
        self.time_limit_ms = time_limit_ms
        self._acquired: AbstractAsyncContextManager[Connection] | None = None
        self._conn: Connection | None = None
        self._lender: NowaitPool | None = None  # the pool, when it lent without awaiting
        self._sor: SQLor | None = None

    async def __aenter__(self) -> SQLor:
        db = self.db
        lender = db.nowait_pool
        if lender is not None:
            # The common case on SQLite: an idle connection, taken and begun
            # (deferred) without a coroutine of the pool's.
            conn = lender.enter_nowait(self.read_only, self.time_limit_ms)
            if conn is not None:
                self._lender, self._conn = lender, conn
                sor = self._sor = SQLor(conn, db.schema, db.name, self.read_only, self.time_limit_ms)
                return sor
        pool = await db.pool()
        acquired = pool.acquire()
        conn = await acquired.__aenter__()
        self._acquired, self._conn = acquired, conn
        try:
            await conn.begin(read_only=self.read_only)
            if self.time_limit_ms:
                await conn.set_time_limit(self.time_limit_ms)
        except BaseException:
            self._acquired = self._conn = None
            await acquired.__aexit__(*sys.exc_info())
            raise
        sor = self._sor = SQLor(conn, db.schema, db.name, self.read_only, self.time_limit_ms)
        return sor

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        acquired, conn, lender = self._acquired, self._conn, self._lender
        self._acquired = self._conn = self._lender = None
        assert conn is not None
        sor = self._sor
        if sor is not None:
            self._sor = None
            sor.end()  # the connection goes back to the pool: a kept `sor` must not reach it
        if lender is not None:
            if exc is None and lender.exit_nowait(conn):
                return False  # nothing written: ended and given back, no await
            try:
                await self._end(conn, exc)
            finally:
                await lender.give_back(conn)
            return False
        assert acquired is not None
        try:
            await self._end(conn, exc)
        except BaseException:
            await acquired.__aexit__(*sys.exc_info())
            raise
        # The driver's pool sees the block's own exception, if any, as before.
        await acquired.__aexit__(kind, exc, tb)
        return False

    async def _end(self, conn: Connection, exc: BaseException | None) -> None:
        """Commit or roll back for how the block ended; raise what replaces ``exc``."""
        name = self.db.name
        if exc is None:
            await commit_or_refuse(conn, name)
            return
        if isinstance(exc, web.HTTPException):
            if exc.status < 400:
                await conn.commit()
            else:
                await conn.rollback()
            return
        await conn.rollback()
        refused = read_only_refusal(exc) if self.read_only else None
        if refused is not None:
            log.info("database %r: write refused in a read-only transaction: %s", name, exc)
            raise refused from None


DBPOOLS_KEY: web.AppKey[DBPools] = web.AppKey("ahcore.db.pools", DBPools)


def get_pools(app: web.Application) -> DBPools:
    """The :class:`DBPools` of an application (plugins use this, scripts ``DBPools()``)."""
    return app[DBPOOLS_KEY]
