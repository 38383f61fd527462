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
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from ahcore import Processor, ProcessorSpec, hookimpl

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


# ------------------------------------------------------------------ a login plugin


class CallProcessor(Processor):
    """``.call`` files name an action: ``login`` (as ``params_kw.user``), ``logout``, ``whoami``.

    ``whoami`` also echoes ``params_kw`` so concurrency tests can check that
    every answer carries its own request's values.
    """

    async def load(self) -> None:
        self.action = self.path.read_text().strip()

    async def respond(self, context: Any) -> web.StreamResponse:
        ns = await context.namespace()
        params = ns["params_kw"]
        if self.action == "login":
            await ns["remember_user"](params.get("user", "ann"), "name", "org")
            return web.json_response({"ok": True})
        if self.action == "logout":
            await ns["forget_user"]()
            return web.json_response({"ok": True})
        user = await ns["get_user"]()
        return web.json_response(
            {"user": user, "params": {k: v for k, v in params.items() if k != "_files"}}
        )


class GuardPlugin:
    """A default-deny ``auth_check``: only the listed public URLs for visitors.

    ``/private/**`` is for the user ``boss`` only; ``/members/**`` for any
    logged-in user; the public URLs for everyone; anything else is denied.
    """

    PUBLIC = ("/login.call", "/logout.call", "/whoami.call", "/public/")

    @hookimpl
    def register_processor(self) -> Any:
        return ProcessorSpec("call", (".call",), CallProcessor)

    @hookimpl
    async def auth_check(self, request: Any, user: Any, path: str) -> bool:
        if path.startswith("/private/") or path == "/private":
            return user == "boss"
        if path.startswith("/members/"):
            return user is not None
        return path == "/" or path.startswith(self.PUBLIC)


GUARD_FILES = {
    "wwwroot/login.call": "login",
    "wwwroot/logout.call": "logout",
    "wwwroot/whoami.call": "whoami",
    "wwwroot/public/hello.txt": "public hello",
    "wwwroot/public/caller.dspy": "return await path_call(params_kw.p)\n",
    "wwwroot/private/secret.txt": "PRIVATE-CONTENT",
    "wwwroot/private/index.html": "PRIVATE-INDEX",
    "wwwroot/private/data.dspy": "return 'PRIVATE-SCRIPT'\n",
    "wwwroot/private/sub/deep.txt": "PRIVATE-DEEP",
    "wwwroot/members/m.txt": "MEMBERS-CONTENT",
    "wwwroot/other.txt": "UNLISTED-CONTENT",
}


def guard_config(**website: Any) -> dict[str, Any]:
    return {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "processors": [[".dspy", "dspy"], [".call", "call"]],
            "cookie_secret": "adversarial-secret-at-least-32-bytes",
            "session_max_time": 100,
            "session_reissue_time": 10,
        }
        | website,
        "plugins": {"guard": True, "dspy": True},
    }


def set_cookie_value(reply: Reply, name: str) -> str | None:
    """The value the response sets for cookie ``name`` (last one wins), or None."""
    value = None
    for line in reply.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"set-cookie:"):
            pair = line.split(b":", 1)[1].split(b";", 1)[0].strip().decode("latin-1")
            k, _, v = pair.partition("=")
            if k == name:
                value = v.strip('"')
    return value


def set_cookie_lines(reply: Reply) -> list[str]:
    head = reply.raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return [line for line in head.split("\r\n") if line.lower().startswith("set-cookie:")]
