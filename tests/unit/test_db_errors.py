"""ahcore.db.errors: the data layer's HTTP answers and the integrity-error mapping."""

from __future__ import annotations

import sqlite3

import pytest

from ahcore.db.errors import (
    CONFLICT_MESSAGE,
    INVALID_MESSAGE,
    BadQuery,
    DatabaseUnavailable,
    DataConflict,
    StatementTimeout,
    integrity_error,
)


def test_the_answers_are_http_errors_with_their_message() -> None:
    unavailable = DatabaseUnavailable("database 'x' is unavailable")
    assert unavailable.status == 503 and unavailable.headers["Retry-After"] == "1"
    assert str(unavailable) == "database 'x' is unavailable"
    assert unavailable.text == "database 'x' is unavailable\n"
    assert StatementTimeout("slow").status == 504
    assert BadQuery("bad").status == 400 and str(BadQuery("bad")) == "bad"
    assert DataConflict("dup").status == 409


def sqlite_error(sql_setup: list[str], statement: str) -> sqlite3.Error:
    con = sqlite3.connect(":memory:")
    for sql in sql_setup:
        con.execute(sql)
    try:
        con.execute(statement)
    except sqlite3.Error as exc:
        return exc
    finally:
        con.close()
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("setup", "statement", "cls", "message"),
    [
        (["create table t (id integer primary key)", "insert into t values (1)"],
         "insert into t values (1)", DataConflict, CONFLICT_MESSAGE),
        (["create table t (a text unique)", "insert into t values ('x')"],
         "insert into t values ('x')", DataConflict, CONFLICT_MESSAGE),
        (["pragma foreign_keys = on", "create table p (id integer primary key)",
          "create table c (p integer references p(id))"],
         "insert into c values (9)", DataConflict, CONFLICT_MESSAGE),
        (["create table t (a text not null)"], "insert into t values (null)", BadQuery, INVALID_MESSAGE),
        (["create table t (a integer check (a > 0))"], "insert into t values (-1)", BadQuery, INVALID_MESSAGE),
    ],
)
def test_sqlite_integrity_errors(setup, statement, cls, message) -> None:
    answer = integrity_error(sqlite_error(setup, statement))
    assert type(answer) is cls and answer.message == message
    assert "t" not in answer.message.split()  # names no table, column or value


def test_other_drivers_by_sqlstate_and_mysql_code() -> None:
    class IntegrityError(Exception):  # a DB-API driver's class, not imported
        sqlstate = None

    unique = IntegrityError()
    unique.sqlstate = "23505"
    assert isinstance(integrity_error(unique), DataConflict)
    not_null = IntegrityError()
    not_null.sqlstate = "23502"
    assert isinstance(integrity_error(not_null), BadQuery)
    assert isinstance(integrity_error(IntegrityError(1062, "Duplicate entry")), DataConflict)
    assert isinstance(integrity_error(IntegrityError(1048, "cannot be null")), BadQuery)

    class DatabaseError(Exception):
        pass

    class OperationalError(DatabaseError):
        pass

    assert isinstance(integrity_error(OperationalError(3819, "Check constraint")), BadQuery)
    assert integrity_error(OperationalError(2013, "Lost connection")) is None


def test_anything_else_is_not_an_integrity_error() -> None:
    assert integrity_error(ValueError("x")) is None
    assert integrity_error(sqlite_error([], "select * from nope")) is None
