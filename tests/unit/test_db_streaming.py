"""ahcore.db.streaming: a JSON document of rows written one batch at a time."""

from __future__ import annotations

import datetime

import aiohttp
import pytest
from aiohttp import web

from ahcore.db.streaming import JsonRowsWriter, encode_rows


def test_encode_rows_are_list_items_without_brackets() -> None:
    assert encode_rows(["a", "d"], [(1, datetime.date(2024, 1, 2)), (2, None)]) == (
        b'{"a":1,"d":"2024-01-02"},{"a":2,"d":null}'
    )
    assert encode_rows(["a"], []) == b""


def writer_app(batches, *, head=b"[", tail=b"]", fail_after=None):
    async def handler(request: web.Request) -> web.StreamResponse:
        writer = JsonRowsWriter(request, head=head, tail=tail, headers={"X-Rows": "yes"})
        assert not writer.started
        await writer.start()
        assert writer.started
        for i, rows in enumerate(batches):
            if fail_after is not None and i == fail_after:
                return writer.abort(RuntimeError("database went away"))
            await writer.write(["id", "v"], rows)
        return await writer.finish()

    app = web.Application()
    app.router.add_route("*", "/", handler)
    return app


async def test_batches_make_one_json_document(aiohttp_client) -> None:
    client = await aiohttp_client(writer_app([[(1, "a"), (2, "b")], [], [(3, "c")]]))
    resp = await client.get("/")
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.headers["X-Rows"] == "yes"
    assert await resp.json() == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}]


async def test_no_rows_is_an_empty_list_and_a_paging_document_wraps_them(aiohttp_client) -> None:
    client = await aiohttp_client(writer_app([]))
    assert await (await client.get("/")).json() == []
    paged = await aiohttp_client(writer_app([[(1, "a")]], head=b'{"total":1,"rows":[', tail=b"]}"))
    assert await (await paged.get("/")).json() == {"total": 1, "rows": [{"id": 1, "v": "a"}]}


async def test_head_sends_no_body(aiohttp_client) -> None:
    client = await aiohttp_client(writer_app([[(1, "a")]]))
    resp = await client.head("/")
    assert resp.status == 200 and await resp.read() == b""


async def test_a_failure_mid_answer_cuts_the_connection(aiohttp_client, caplog) -> None:
    client = await aiohttp_client(writer_app([[(1, "a")], [(2, "b")]], fail_after=1))
    resp = await client.get("/")
    assert resp.status == 200  # the headers had gone out
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()  # never a short but well-formed document
    assert "streamed answer stopped after 1 rows" in caplog.text


def test_a_new_writer_has_written_nothing(make_request) -> None:
    writer = JsonRowsWriter(make_request())
    assert writer.rows_written == 0 and writer.wants_body
    assert not JsonRowsWriter(make_request("HEAD")).wants_body
