"""ahcore.server.guard called directly: aiohttp's bare ``web.Server`` behind the header deadline.

The same guard under a served site (``start_site``) is driven in
``tests/adversarial/test_slow_clients.py``; here the deadline is 0.2 s and
the handler is a plain function, so each case takes a fraction of a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from ahcore.server import guard as guard_module
from ahcore.server.guard import SlowClientGuard

LIMIT = 0.2
GET = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"


async def handler(request: web.BaseRequest) -> web.Response:
    if request.path == "/slow":
        await asyncio.sleep(LIMIT * 2.5)  # longer than the head deadline
    body = await request.read()
    return web.Response(text=f"ok {request.path} {len(body)}")


@pytest.fixture
async def guarded(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[SlowClientGuard, int]]:
    """A guarded aiohttp server on a free port: (the guard, the port)."""
    monkeypatch.setattr(guard_module, "LINGER_SECONDS", 0.3)
    server = web.Server(handler)
    guard = SlowClientGuard(server, LIMIT)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(guard, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    yield guard, port
    listener.close()
    await server.shutdown(0.1)
    await listener.wait_closed()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_until_closed(reader: asyncio.StreamReader, seconds: float = 2.0) -> bytes:
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), seconds):
            data += chunk
    except (asyncio.TimeoutError, ConnectionResetError):
        pass
    return data


async def one_response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head + await asyncio.wait_for(reader.readexactly(length), 2)


async def test_the_408_is_a_whole_http_answer_naming_the_limit() -> None:
    server = web.Server(handler)
    reply = SlowClientGuard(server, 2.5).reply
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 408 Request Timeout"
    assert b"Connection: close" in head
    assert body == b"408: request headers not received within 2.5 s\n"
    assert f"Content-Length: {len(body)}".encode() in head
    assert SlowClientGuard(web.Server(handler), 10).reply.endswith(b"within 10 s\n")


async def test_a_slow_head_gets_408_and_the_connection_ends(guarded: Any) -> None:
    guard, port = guarded
    reader, writer = await connect(port)
    writer.write(b"GET /x HTTP/1.1\r\nHo")
    start = asyncio.get_running_loop().time()
    data = await read_until_closed(reader)
    took = asyncio.get_running_loop().time() - start
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert data.endswith(b"408: request headers not received within 0.2 s\n")
    assert LIMIT * 0.9 <= took < LIMIT + 1.5
    writer.close()
    await asyncio.sleep(0.4)  # past the linger
    assert guard.connections == {}


async def test_input_after_the_408_never_reaches_aiohttp(guarded: Any) -> None:
    _, port = guarded
    reader, writer = await connect(port)
    writer.write(b"GET /x HTTP/1.1\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert head.startswith(b"HTTP/1.1 408")
    # Lingering: more input is read and dropped, no second answer comes.
    writer.write(b"Host: h\r\n\r\n" + GET)
    rest = await read_until_closed(reader)
    assert b"HTTP/1.1 200" not in rest
    writer.close()


async def test_a_client_that_sends_nothing_is_closed_without_an_answer(guarded: Any) -> None:
    _, port = guarded
    reader, writer = await connect(port)
    assert await read_until_closed(reader) == b""
    writer.close()


async def test_a_slow_handler_is_not_the_clients_fault(guarded: Any) -> None:
    _, port = guarded
    reader, writer = await connect(port)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await one_response(reader)).endswith(b"ok /slow 0")
    writer.close()


async def test_keep_alive_idle_then_a_prompt_request_is_served(guarded: Any) -> None:
    guard, port = guarded
    reader, writer = await connect(port)
    writer.write(GET)
    assert (await one_response(reader)).endswith(b"ok /x 0")
    assert len(guard.connections) == 1
    await asyncio.sleep(LIMIT * 2)  # idle: aiohttp's keep-alive timer's business
    writer.write(GET)
    assert (await one_response(reader)).endswith(b"ok /x 0")
    # The next head starts its own deadline once its first byte arrives.
    writer.write(b"GET /x HT")
    assert (await read_until_closed(reader)).startswith(b"HTTP/1.1 408")
    writer.close()


async def test_a_body_being_sent_is_not_a_slow_head(guarded: Any) -> None:
    _, port = guarded
    reader, writer = await connect(port)
    writer.write(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabc")
    await asyncio.sleep(LIMIT * 2)
    writer.write(b"def")
    assert (await one_response(reader)).endswith(b"ok /up 6")
    writer.close()
