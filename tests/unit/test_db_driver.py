"""ahcore.db.driver: identifier quoting and the shared batched row-stream loop."""

from __future__ import annotations

import time

import pytest

from ahcore.db.driver import BatchedRowStream, ColumnInfo, Dialect, DriverSpec, FetchResult
from ahcore.db.errors import StatementTimeout


def test_ident_quotes_and_doubles_the_quote_character() -> None:
    pg = Dialect("postgres", "format", '"')
    assert pg.ident("Orders") == '"Orders"'
    assert pg.ident('we"ird') == '"we""ird"'
    my = Dialect("mysql", "format", "`")
    assert my.ident("a`b") == "`a``b`"
    assert my.ident('a"b') == '`a"b`'


def test_plain_types() -> None:
    assert FetchResult(["a"], [(1,)]).rowcount == -1
    assert ColumnInfo("x").type == ""

    async def create(name, config, site):
        return None

    assert DriverSpec("d", create, plugin="a") == DriverSpec("d", create, plugin="b")


class ListStream(BatchedRowStream):
    def __init__(self, rows, batch_rows, deadline=None, columns=("x",)):
        super().__init__(self, None, list(columns), batch_rows, deadline)
        self.rows = list(rows)
        self.fetches = 0

    async def fetch_batch(self):
        self.fetches += 1
        batch, self.rows = self.rows[: self.batch_rows], self.rows[self.batch_rows :]
        return batch

    def timeout_error(self):
        return StatementTimeout("past the limit")


async def test_batches_until_a_short_one_never_an_empty_one() -> None:
    stream = ListStream(range(7), 3)
    assert [b async for b in stream] == [[0, 1, 2], [3, 4, 5], [6]]
    assert stream.done and stream.fetches == 3
    exact = ListStream(range(6), 3)
    assert [b async for b in exact] == [[0, 1, 2], [3, 4, 5]]  # the empty last fetch yields nothing
    assert exact.fetches == 3


async def test_a_result_without_columns_has_no_batches() -> None:
    stream = ListStream([1], 3, columns=())
    assert stream.done
    assert [b async for b in stream] == [] and stream.fetches == 0


async def test_a_passed_deadline_raises_the_connections_timeout_error() -> None:
    stream = ListStream(range(10), 3, deadline=time.monotonic() - 1)
    with pytest.raises(StatementTimeout, match="past the limit"):
        async for _ in stream:
            pass
    assert stream.fetches == 0


async def test_the_base_class_needs_fetch_batch() -> None:
    stream = BatchedRowStream(None, None, ["x"], 1, None)
    with pytest.raises(NotImplementedError):
        async for _ in stream:
            pass
