"""The HTTP answers of the data layer, raised where a problem is found.

They are aiohttp HTTP exceptions, so a script that lets one escape gives the
visitor the right status with a short message, and the kernel's error
middleware needs no special case. Messages never carry passwords or
driver tracebacks; drivers log the details.
"""

from __future__ import annotations

from aiohttp import web


class DatabaseUnavailable(web.HTTPServiceUnavailable):
    """503: no connection in time, or the database went away (try again later)."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message + "\n", headers={"Retry-After": "1"})
        self.message = message

    def __str__(self) -> str:
        return self.message


class StatementTimeout(web.HTTPGatewayTimeout):
    """504: a statement ran past its time limit and was stopped by the database."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message + "\n")
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadQuery(web.HTTPBadRequest):
    """400: request input (a name, a sort, a page) the data layer refuses."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message + "\n")
        self.message = message

    def __str__(self) -> str:
        return self.message


class ReadOnlyRefused(web.HTTPForbidden):
    """403: a write in a read-only data source or transaction; nothing was changed."""

    def __init__(self, message: str = "this data source is read-only; nothing was changed") -> None:
        super().__init__(text=message + "\n")
        self.message = message

    def __str__(self) -> str:
        return self.message


class DataConflict(web.HTTPConflict):
    """409: the change conflicts with data already stored (a unique key or a reference)."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message + "\n")
        self.message = message

    def __str__(self) -> str:
        return self.message


# What each engine reports for a broken unique key or reference. Any other
# integrity error (NOT NULL, CHECK) is bad input: 400. The classes follow
# PostgREST's mapping of SQLSTATE class 23.
_CONFLICT_SQLSTATES = frozenset({"23505", "23503"})  # unique_violation, foreign_key_violation
_CONFLICT_SQLITE = frozenset(
    {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_FOREIGNKEY"}
)
# MySQL/MariaDB error numbers: duplicate entry, row referenced / no parent row.
_CONFLICT_MYSQL = frozenset({1062, 1586, 1216, 1217, 1451, 1452})
# A failed CHECK, which pymysql reports as an OperationalError, not an IntegrityError.
_CHECK_MYSQL = frozenset({3819, 4025})

CONFLICT_MESSAGE = (
    "conflict with data already stored (a unique key or a reference); nothing was saved"
)
INVALID_MESSAGE = (
    "the data breaks a rule of the database (a required value or a check); nothing was saved"
)


def integrity_error(exc: BaseException) -> web.HTTPException | None:
    """The HTTP answer for a driver's integrity error (DB-API ``IntegrityError``), else None.

    Works for any driver without importing it: the exception counts when a
    class of its MRO is named ``IntegrityError`` (sqlite3, psycopg, pymysql
    and aiomysql all follow DB-API 2.0), or is MySQL's failed CHECK (an
    ``OperationalError`` in pymysql). A broken unique key or reference is a
    :class:`DataConflict` (409), anything else (NOT NULL, CHECK) a
    :class:`BadQuery` (400). The message names no table, column, constraint
    or value: the caller logs the driver's text.

    Meant for the end of a transaction scope, after the rollback: a deferred
    constraint fails at COMMIT, where the script cannot catch it.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    mysql_code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if "IntegrityError" not in names:
        if "DatabaseError" in names and mysql_code in _CHECK_MYSQL:
            return BadQuery(INVALID_MESSAGE)
        return None
    sqlstate = getattr(exc, "sqlstate", None)
    sqlite_name = getattr(exc, "sqlite_errorname", None)
    if (
        sqlstate in _CONFLICT_SQLSTATES
        or sqlite_name in _CONFLICT_SQLITE
        or mysql_code in _CONFLICT_MYSQL
    ):
        return DataConflict(CONFLICT_MESSAGE)
    return BadQuery(INVALID_MESSAGE)


# What each engine reports for a write in a read-only transaction.
_READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction
_READ_ONLY_MYSQL = 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION (MariaDB too)
_READ_ONLY_SQLITE = "SQLITE_READONLY"  # PRAGMA query_only refuses with it


def read_only_refusal(exc: BaseException) -> ReadOnlyRefused | None:
    """A :class:`ReadOnlyRefused` (403) when ``exc`` is the database refusing a
    write in a read-only transaction, else None.

    Driver-neutral like :func:`integrity_error`: PostgreSQL's SQLSTATE 25006,
    MySQL's and MariaDB's error 1792, SQLite's ``SQLITE_READONLY`` (what
    ``PRAGMA query_only`` answers). The read-only transaction is what
    guarantees a read-only data source writes nothing, whatever its SQL
    looks like (a function with side effects, ``SELECT … FOR UPDATE``); this
    makes its refusal the 403 it is instead of a 500.
    """
    if getattr(exc, "sqlstate", None) == _READ_ONLY_SQLSTATE:
        return ReadOnlyRefused()
    if getattr(exc, "sqlite_errorname", None) == _READ_ONLY_SQLITE:
        return ReadOnlyRefused()
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "DatabaseError" in names and exc.args and exc.args[0] == _READ_ONLY_MYSQL:
        return ReadOnlyRefused()
    return None
