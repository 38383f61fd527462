"""Large ``.sqlds`` answers are streamed; small ones are sent whole; both say when cut.

``batch_rows`` is set low here so that a few thousand rows exercise the
streamed path on every engine; the 200 000-row test runs on SQLite with the
default batch size and checks the server's memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import tracemalloc

import aiohttp
import pytest

from ahcore.api import JsonRowsWriter

# MySQL notes "Unknown table" for DROP TABLE IF EXISTS of a missing table.
pytestmark = pytest.mark.filterwarnings("ignore:Unknown table")

BIG = "sqlds_big"
DIGITS = " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10))


def sqlds(sql: str, arguments=(), **desc) -> str:
    return json.dumps(
        {"sqldesc": {"sql_string": sql, "db": "db1", **desc}, "arguments": list(arguments)}
    )


FILES = {
    "wwwroot/big.sqlds": sqlds(
        f"select n, label from {BIG} where n <= ${{upto}}$",
        [{"name": "upto", "type": "int", "default": 1_000_000_000}],
        sortfield="n",
    ),
}


async def fill(pools, rows: int) -> None:
    """``sqlds_big`` with ``n`` = 1 … ``rows`` (built by the database from a digits table)."""
    places = len(str(rows))
    expr = " + ".join(f"d{i}.d * {10**i}" for i in range(places))
    tables = ", ".join(f"({DIGITS}) d{i}" for i in range(places))
    async with pools.sqlorContext("db1") as sor:
        await sor.sqlExe(f"DROP TABLE IF EXISTS {BIG}", {})
        await sor.sqlExe(f"CREATE TABLE {BIG} (n INTEGER PRIMARY KEY, label VARCHAR(40))", {})
        await sor.sqlExe(
            f"INSERT INTO {BIG} (n, label) SELECT {expr} + 1, 'row of the big table' "
            f"FROM {tables} WHERE {expr} < {rows}",
            {},
        )
    pools.clear_schema_cache()


async def start(db_client, *, rows: int, maxconn: int = 4, **settings):
    client = await db_client(
        files=FILES, maxconn=maxconn, plugins={"sqlds": settings or True}, acquire_timeout=2.0
    )
    await fill(client.pools, rows)
    return client


async def get(client, url):
    resp = await client.get(url)
    body = await resp.read()
    assert resp.status == 200, body[:300]
    return resp, json.loads(body)


def streamed(resp) -> bool:
    return resp.headers.get("Transfer-Encoding") == "chunked"


async def test_small_answer_is_sent_whole(db_client) -> None:
    client = await start(db_client, rows=30, batch_rows=50, row_cap=20)
    resp, data = await get(client, "/big.sqlds?upto=20&sort=n")
    assert not streamed(resp) and int(resp.headers["Content-Length"]) > 0
    assert "X-Truncated" not in resp.headers
    assert [r["n"] for r in data] == list(range(1, 21))
    assert data[0] == {"n": 1, "label": "row of the big table"}
    # Cut by the cap, still whole: the cap is below one batch.
    resp, data = await get(client, "/big.sqlds?sort=n")
    assert not streamed(resp) and resp.headers["X-Truncated"] == "true"
    assert [r["n"] for r in data] == list(range(1, 21))


async def test_large_answer_is_streamed_complete(db_client) -> None:
    client = await start(db_client, rows=2345, batch_rows=100, row_cap=10_000)
    resp, data = await get(client, "/big.sqlds?sort=n desc")
    assert streamed(resp) and "Content-Length" not in resp.headers
    assert resp.content_type == "application/json"
    assert "X-Truncated" not in resp.headers
    assert [r["n"] for r in data] == list(range(2345, 0, -1))
    # Unsorted: every row once.
    resp, data = await get(client, "/big.sqlds")
    assert streamed(resp) and sorted(r["n"] for r in data) == list(range(1, 2346))


@pytest.mark.parametrize(
    "upto, rows, truncated, is_streamed",
    [
        (50, 50, False, False),  # fits one batch
        (499, 499, False, True),
        (500, 500, False, True),  # exactly the cap: not cut
        (501, 500, True, True),
        (1000, 500, True, True),
    ],
)
async def test_truncation_header_is_exact_when_streamed(
    db_client, upto, rows, truncated, is_streamed
) -> None:
    client = await start(db_client, rows=1000, batch_rows=100, row_cap=500)
    resp, data = await get(client, f"/big.sqlds?upto={upto}&sort=n")
    assert streamed(resp) is is_streamed
    assert (resp.headers.get("X-Truncated") == "true") is truncated
    assert [r["n"] for r in data] == list(range(1, rows + 1))


async def test_long_pages_are_streamed(db_client) -> None:
    client = await start(db_client, rows=1000, batch_rows=100, row_cap=5000)
    resp, page = await get(client, "/big.sqlds?action=pagingdata&rows=300&page=2&sort=n desc")
    assert streamed(resp)
    assert page["total"] == 1000
    assert [r["n"] for r in page["rows"]] == list(range(700, 400, -1))
    resp, page = await get(client, "/big.sqlds?action=pagingdata&rows=300&page=4")
    assert not streamed(resp)  # the last 100 rows fit one batch
    assert page["total"] == 1000 and [r["n"] for r in page["rows"]] == list(range(901, 1001))
    resp, page = await get(client, "/big.sqlds?action=pagingdata&rows=50&upto=10")
    assert not streamed(resp) and page["total"] == 10 and len(page["rows"]) == 10


async def test_head_of_a_large_answer_has_headers_only(db_client) -> None:
    client = await start(db_client, rows=1000, batch_rows=100, row_cap=500)
    for _ in range(2):  # the same keep-alive connection serves the next request
        resp = await client.head("/big.sqlds")
        assert resp.status == 200 and resp.headers["X-Truncated"] == "true"
        assert await resp.read() == b""
        resp, data = await get(client, "/big.sqlds?upto=20")
        assert len(data) == 20


def slow_writes(monkeypatch, delay: float) -> None:
    """Make the server's writer wait after each batch, as a slow client would make it."""
    real = JsonRowsWriter.write

    async def write(self, columns, rows):
        await real(self, columns, rows)
        await asyncio.sleep(delay)

    monkeypatch.setattr(JsonRowsWriter, "write", write)


async def test_client_gone_mid_stream_returns_the_connection(
    db_client, monkeypatch, caplog
) -> None:
    client = await start(db_client, rows=20_000, maxconn=1, batch_rows=100, row_cap=100_000)
    slow_writes(monkeypatch, 0.01)
    caplog.set_level(logging.DEBUG, logger="ahcore.db.streaming")
    resp = await client.get("/big.sqlds?sort=n")
    assert resp.status == 200 and streamed(resp)
    assert (await resp.content.readexactly(20)).startswith(b'[{"n":1,')
    resp.close()  # the visitor goes away
    # The pool's only connection comes back as soon as the server notices.
    started = time.monotonic()
    resp, data = await get(client, "/big.sqlds?upto=3&sort=n")
    assert [r["n"] for r in data] == [1, 2, 3]
    assert time.monotonic() - started < 2
    gone = [r for r in caplog.records if "client went away" in r.getMessage()]
    assert gone, "the server did not see the client go"
    assert int(gone[0].getMessage().split("after ")[1].split()[0]) < 20_000
    # And the same stream, read to its end, still works.
    monkeypatch.undo()
    resp, data = await get(client, "/big.sqlds?sort=n")
    assert len(data) == 20_000


async def test_time_limit_stops_a_stream_and_the_client_sees_it(db_client, monkeypatch) -> None:
    client = await start(
        db_client, rows=5000, maxconn=1, batch_rows=100, row_cap=100_000, time_limit_ms=300
    )
    slow_writes(monkeypatch, 0.03)  # 50 batches: 1.5 s, well past the limit
    started = time.monotonic()
    resp = await client.get("/big.sqlds?sort=n")
    assert resp.status == 200 and streamed(resp)  # headers went out before the limit
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()  # cut: never a short but well-formed list
    assert time.monotonic() - started < 1.3
    monkeypatch.undo()
    # The connection came back (maxconn is 1) and the next answer is whole.
    resp, data = await get(client, "/big.sqlds?upto=150&sort=n")
    assert [r["n"] for r in data] == list(range(1, 151))


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_200k_rows_stream_in_bounded_memory(db_client, engine, tmp_path) -> None:
    total = 200_000
    client = await start(db_client, rows=total, row_cap=1_000_000, time_limit_ms=60_000)
    out = tmp_path / "answer.json"
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        resp = await client.get("/big.sqlds?sort=n")
        assert resp.status == 200 and streamed(resp)
        size = 0
        with out.open("wb") as f:
            async for chunk in resp.content.iter_chunked(1 << 16):
                f.write(chunk)
                size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    data = json.loads(out.read_bytes())
    assert len(data) == total
    assert data[0] == {"n": 1, "label": "row of the big table"}
    assert data[-1]["n"] == total
    assert all(data[i]["n"] == i + 1 for i in range(0, total, 997))
    assert size > 8_000_000
    # The whole answer as Python records would be ~100 MB, its JSON ~9 MB;
    # server and client together held a few batches at a time.
    assert peak < size / 4, (peak, size)
