"""Slow and vanishing clients.

aiohttp alone has no deadline for a request head: it closes a connection that
has not sent a complete request only through its keep-alive timer. ahcore
serves every site (``ahcore serve`` and the ``serve`` fixture alike) through
``ahcore.server.start_site``, whose guard gives each request head
``website.header_timeout`` seconds from its first byte (from connect for the
first request); ``ahcore.params.read_params`` gives reading a body
``website.request_timeout`` seconds. Both are 1 s here so the cases are fast.
The same path under ``ahcore serve`` is checked in ``tests/test_server.py``.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from advkit import files_under, raw_exchange, request_bytes

from ahcore.app import create_app
from ahcore.config import ConfigError

BOUNDARY = "XbOuNdArYx"
LIMIT = 1.0  # header_timeout and request_timeout of the test site
SLACK = 1.0  # scheduling slack allowed past a limit


@pytest.fixture
def site(make_site) -> Path:
    return make_site(
        config={
            "website": {
                "paths": [["$[workdir]$/wwwroot", ""]],
                "processors": [[".dspy", "dspy"]],
                "cookie_secret": "adversarial-slow-secret-of-32-bytes",
                "header_timeout": LIMIT,
                "request_timeout": LIMIT,
            },
            "filesroot": "$[workdir]$/files",
            "plugins": {"dspy": True},
        },
        files={
            "wwwroot/hello.txt": "hello",
            "wwwroot/up.dspy": "return {'f': params_kw.get('f')}\n",
        },
    )


@pytest.fixture
async def server(site, serve):
    return await serve(site)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server closes (EOF or an answer) within ``seconds``."""
    try:
        data = await asyncio.wait_for(reader.read(65536), seconds)
    except asyncio.TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


async def read_all(reader: asyncio.StreamReader, seconds: float = 3.0) -> bytes:
    """Everything the server sends until it closes (or ``seconds`` pass)."""
    data = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except (asyncio.TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


async def dribble(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, every: float
) -> tuple[float | None, bytes]:
    """Send ``data`` one byte every ``every`` s until the server answers or closes.

    Returns (seconds from the first byte to the server's reaction, or None if
    it never reacted; what it sent).
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(len(data)):
        try:
            writer.write(data[i : i + 1])
            await writer.drain()
        except ConnectionError:
            return loop.time() - start, b""
        try:
            chunk = await asyncio.wait_for(reader.read(65536), every)
        except asyncio.TimeoutError:
            continue
        except ConnectionResetError:
            return loop.time() - start, b""
        took = loop.time() - start
        return took, chunk + await read_all(reader)
    return None, b""


def keepalive_get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One Content-Length response from a keep-alive connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = await asyncio.wait_for(reader.readexactly(length), 3)
    return int(lines[0].split()[1]), body


# ------------------------------------------------------------------ request heads


async def test_slow_headers_are_cut_off(server):
    """Every byte comes well within the limit, the head as a whole does not: 408, closed."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        head = b"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 40
        took, answer = await dribble(reader, writer, head, every=0.2)
    finally:
        writer.close()
    assert took is not None, "server kept a slow-header client"
    assert LIMIT - 0.2 <= took <= LIMIT + SLACK, took
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"request headers not received within 1 s" in answer
    assert b"hello" not in answer


async def test_a_client_that_sends_nothing_is_closed_without_an_answer(server):
    reader, writer = await asyncio.open_connection(server.host, server.port)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        answer = await read_all(reader, LIMIT + SLACK + 1)
        took = loop.time() - start
    finally:
        writer.close()
    assert answer == b""
    assert LIMIT - 0.2 <= took <= LIMIT + SLACK, took


async def test_a_head_sent_in_pieces_within_the_limit_is_served(server):
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        for piece in (b"GET /hello.t", b"xt HTTP/1.1\r\nHost: 1", b"27.0.0.1\r\nConnection: close\r\n\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(LIMIT / 4)
        answer = await read_all(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert answer.endswith(b"hello")


async def test_idle_keepalive_connection_is_not_cut_by_the_header_deadline(server):
    """Between requests only the keep-alive timer (75 s) applies, not header_timeout."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(keepalive_get("/hello.txt"))
        assert await read_response(reader) == (200, b"hello")
        await asyncio.sleep(LIMIT * 2.5)  # idle, well past the header deadline
        writer.write(keepalive_get("/hello.txt"))
        assert await read_response(reader) == (200, b"hello")
    finally:
        writer.close()


async def test_the_next_head_on_a_keepalive_connection_has_its_own_deadline(server):
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(keepalive_get("/hello.txt"))
        assert await read_response(reader) == (200, b"hello")
        await asyncio.sleep(LIMIT * 1.5)
        took, answer = await dribble(reader, writer, keepalive_get("/hello.txt"), every=0.2)
    finally:
        writer.close()
    assert took is not None and took <= LIMIT + SLACK, took
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


async def test_pipelined_requests_pass_the_guard(server):
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(keepalive_get("/hello.txt") * 3)
        for _ in range(3):
            assert await read_response(reader) == (200, b"hello")
    finally:
        writer.close()


async def test_slow_header_client_does_not_block_others(server):
    """Whatever the timeouts, an idle half-request must not stall other visitors."""
    stalled = []
    for _ in range(50):
        _, w = await asyncio.open_connection(server.host, server.port)
        w.write(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n")
        stalled.append(w)
    try:
        r = await raw_exchange(server, request_bytes("GET", "/hello.txt"), timeout=3)
        assert r.status == 200 and r.body == b"hello"
    finally:
        for w in stalled:
            w.close()


# ------------------------------------------------------------------ request bodies


def upload_body(parts: list[tuple[str, str, bytes]]) -> bytes:
    out = b""
    for name, filename, data in parts:
        out += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
FILE_PART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\n'
).encode()


@pytest.mark.parametrize(
    "ctype, start",
    [
        (MULTIPART, FILE_PART_HEAD),
        ("application/x-www-form-urlencoded", b"f="),
        ("application/json", b'{"f": "'),
    ],
    ids=["multipart", "urlencoded", "json"],
)
async def test_slow_body_is_cut_off_and_leaves_no_file(server, site, ctype, start):
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        head = request_bytes(
            "POST", "/up.dspy", headers={"Content-Type": ctype, "Content-Length": "100000"}
        )
        writer.write(head + start)
        await writer.drain()
        await asyncio.sleep(0.3)
        if ctype == MULTIPART:  # the upload has begun: its .part file exists
            assert [p.name.endswith(".part") for p in files_under(site / "files")] == [True]
        took, answer = await dribble(reader, writer, b"x" * 100, every=0.2)
    finally:
        writer.close()
    assert took is not None, "server kept a trickling body"
    assert took <= LIMIT + SLACK, took
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"request body not received within 1 s" in answer
    assert b"Connection: close" in answer
    assert files_under(site / "files") == []


async def test_slow_upload_within_the_limit_is_kept(server, site):
    """A body trickled in pieces but complete within request_timeout is stored whole."""
    body = upload_body([("f", "slow.bin", b"S" * 30_000)])
    head = request_bytes(
        "POST",
        "/up.dspy",
        headers={"Content-Type": MULTIPART, "Content-Length": str(len(body))},
    )
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head)
        step = len(body) // 5 + 1
        for i in range(0, len(body), step):
            writer.write(body[i : i + step])
            await writer.drain()
            await asyncio.sleep(LIMIT / 8)
        answer = await read_all(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    stored = files_under(site / "files")
    assert len(stored) == 1 and stored[0].read_bytes() == b"S" * 30_000


@pytest.mark.parametrize("cut_at", [0.3, 0.6, 0.9])
async def test_client_vanishing_mid_upload_leaves_no_file(server, site, cut_at):
    body = upload_body([("a", "first.bin", b"A" * 300_000), ("b", "second.bin", b"B" * 300_000)])
    head = request_bytes(
        "POST",
        "/up.dspy",
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(body)),
        },
    )
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(head + body[: int(len(body) * cut_at)])
    await writer.drain()
    await asyncio.sleep(0.3)  # let the server start writing the file(s)
    writer.transport.abort()  # vanish: RST, no FIN, no rest of the body
    for _ in range(20):
        await asyncio.sleep(0.05)
        if not files_under(site / "files"):
            break
    assert files_under(site / "files") == [], files_under(site / "files")
    # And the server is fine.
    r = await raw_exchange(server, request_bytes("GET", "/hello.txt"))
    assert r.status == 200


async def test_complete_upload_is_kept(server, site):
    """Control case for the one above: the same upload, sent whole, is stored."""
    body = upload_body([("f", "whole.bin", b"W" * 100_000)])
    r = await raw_exchange(
        server,
        request_bytes(
            "POST", "/up.dspy", body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        ),
    )
    assert r.status == 200, r.raw[:300]
    stored = files_under(site / "files")
    assert len(stored) == 1 and stored[0].read_bytes() == b"W" * 100_000


# ------------------------------------------------------------------ config


@pytest.mark.parametrize("value", [0, -1, "10s", None])
@pytest.mark.parametrize("key", ["header_timeout", "request_timeout"])
def test_timeouts_must_be_positive_numbers(make_site, key, value):
    site = make_site(config={"website": {"paths": [["$[workdir]$/wwwroot", ""]], key: value}})
    with pytest.raises(ConfigError) as info:
        create_app(site)
    assert any(p.startswith(f"website.{key}:") for p in info.value.problems), info.value.problems


async def test_a_client_that_stops_reading_its_answer_is_dropped(site, serve):
    # Found by probing: a client that asked for a big answer and never read it
    # held the connection for ever. Once the transport's buffer is full it gets
    # request_timeout seconds to read on. (Static files: tests/test_server.py,
    # under uvloop; the test loop here would send them by native sendfile.)
    size = 64 * 1024 * 1024
    (site / "wwwroot" / "big.dspy").write_text(f"return Response(body=b'x' * {size})\n")
    server = await serve(site)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    try:
        writer.write(request_bytes("GET", "/big.dspy", b"", {}))
        await writer.drain()
        await asyncio.sleep(LIMIT + SLACK + 1.0)  # read nothing meanwhile
        received = 0
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(1 << 20), 5)
                if not chunk:
                    break
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < size  # cut off, not sent to the end
    finally:
        writer.close()
    # a reading client still gets the whole file
    reply = await raw_exchange(server, request_bytes("GET", "/hello.txt", b"", {}))
    assert reply.status == 200
