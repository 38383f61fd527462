"""Helpers for the adversarial suite: raw HTTP over sockets, reply parsing, file checks.

Every test starts the site with aiohttp's ``TestServer`` (a real listening
socket) and talks to it either with an aiohttp ``ClientSession`` or, where a
client library would normalise the path or the headers, with raw bytes over
``asyncio.open_connection``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestServer

#: Markers that must never reach a visitor.
LEAKS = (b"Traceback", b'File "', b"SECRET-", b"secret-detail")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def assert_clean(self) -> None:
        """No traceback, no secret, no file path in what the visitor got."""
        for marker in LEAKS:
            assert marker not in self.raw, (marker, self.raw[:500])


def parse_reply(data: bytes) -> Reply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1]) if lines and lines[0].startswith(b"HTTP/") else 0
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = b""
        rest = body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out += rest[:size]
            rest = rest[size + 2 :]
        body = out
    return Reply(status, headers, body, data)


async def raw_exchange(
    server: TestServer, payload: bytes, *, timeout: float = 10.0, half_close: bool = False
) -> Reply:
    """Send ``payload`` as is and read until the server closes (``Connection: close``)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(payload)
        await writer.drain()
        if half_close:
            writer.write_eof()
        data = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                chunk = await asyncio.wait_for(reader.read(65536), left)
            except (asyncio.TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        return parse_reply(data)
    finally:
        writer.close()


def request_bytes(
    method: str,
    target: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    content_length: bool = True,
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if content_length and body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def files_under(root: Path) -> list[Path]:
    """Every file below ``root`` (empty list when it does not exist)."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file())
