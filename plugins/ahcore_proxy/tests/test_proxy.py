"""ahcore-proxy against a real upstream aiohttp server on 127.0.0.1.

The upstream (:class:`Upstream`) echoes what it received, streams large and
gated bodies, redirects, and stalls; the site is started with
``ahcore_client`` and its proxy files point at the upstream's port. Nothing
here talks to any address but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ahcore_proxy.description import DescriptionError, parse_description
from ahcore_proxy.headers import filter_headers
from ahcore_proxy.settings import parse_settings
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict
from yarl import URL

MakeSite = Callable[..., Path]
Client = Callable[..., Awaitable[Any]]

BIG_CHUNK = bytes(range(256)) * 256  # 64 KiB
BIG_CHUNKS = 96  # 6 MiB in all
BIG_DIGEST = hashlib.sha256(
    b"".join(bytes([i % 251]) + BIG_CHUNK for i in range(BIG_CHUNKS))
).hexdigest()


class Upstream:
    """The upstream application and what the tests want to know about it."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.gate = asyncio.Event()
        self.gated_finished = False
        self.release = asyncio.Event()  # lets stalled handlers end at teardown
        self.port = 0
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/echo", self.echo)
        self.app.router.add_get("/big", self.big)
        self.app.router.add_get("/gated", self.gated)
        self.app.router.add_get("/redirect", self.redirect)
        self.app.router.add_get("/slow", self.slow)
        self.app.router.add_get("/hop", self.hop)
        self.app.router.add_get("/cut", self.cut)

    async def echo(self, request: web.Request) -> web.Response:
        self.hits[request.query.get("tag", "echo")] += 1
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "query": {k: request.query.getall(k) for k in request.query},
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body.decode("latin-1"),
                "length": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            },
            headers={"X-Upstream": "yes", "Set-Cookie": "up=1; Path=/"},
        )

    async def big(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)  # no length: chunked
        for i in range(BIG_CHUNKS):
            await response.write(bytes([i % 251]) + BIG_CHUNK)
        return response

    async def gated(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first|")
        await self.gate.wait()  # opened by the test once "first|" reached it
        for _ in range(32):
            await response.write(BIG_CHUNK)
        self.gated_finished = True
        return response

    async def redirect(self, request: web.Request) -> web.Response:
        # "localhost" is not in the test's allow-list (only 127.0.0.1:port is).
        raise web.HTTPFound(f"http://localhost:{self.port}/echo?tag=redirected")

    async def slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(text="too late")

    async def cut(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)  # chunked
        await response.write(b"partial|")
        assert request.transport is not None
        request.transport.abort()  # the body never ends
        return response

    async def hop(self, request: web.Request) -> web.Response:
        return web.Response(
            text="ok",
            headers={
                "Keep-Alive": "timeout=5",
                "X-Hop-Secret": "s",
                "Proxy-Authenticate": "Basic",
                "Proxy-Anything": "x",
                "Trailer": "X-Checksum",
                "X-Normal": "kept",
            },
        )


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    server = TestServer(up.app, host="127.0.0.1")
    await server.start_server()
    up.port = server.port
    try:
        yield up
    finally:
        up.release.set()
        up.gate.set()
        await server.close()


def proxy_file(url: str, **extra: Any) -> str:
    """A proxy file whose URL (and other keys) are given as template text."""
    items = [f'"url": "{url}"'] + [f'"{k}": {v}' for k, v in extra.items()]
    return "{" + ", ".join(items) + "}\n"


def site_config(port: int, settings: dict[str, Any] | None = None, **website: Any) -> dict:
    return {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "processors": [[".proxy", "proxy"], [".dspy", "dspy"]],
            **website,
        },
        "plugins": {
            "proxy": {"allow_hosts": [f"127.0.0.1:{port}"], **(settings or {})},
            "dspy": True,
        },
    }


@pytest.fixture
def start(make_site: MakeSite, ahcore_client: Client, upstream: Upstream):
    """``client = await start(files, settings=None, **website)`` for the upstream's port."""

    async def start_site(
        files: dict[str, str], settings: dict[str, Any] | None = None, **website: Any
    ) -> Any:
        config = site_config(upstream.port, settings, **website)
        return await ahcore_client(make_site(config=config, files=files))

    return start_site


def base(upstream: Upstream) -> str:
    return f"http://127.0.0.1:{upstream.port}"


# ---------------------------------------------------------------- forwarding


async def test_request_is_described_by_the_template_and_answer_passed_back(start, upstream):
    files = {
        "wwwroot/api.proxy": proxy_file(
            base(upstream) + "/echo?fixed=1",
            params='{"page": "{{ params_kw.page }}", "multi": ["a", "b"]}',
            headers='{"X-Api-Key": "k-123"}',
            user='"svc"',
            password='"pw"',
        )
    }
    client = await start(files)
    resp = await client.get("/api.proxy?page=3")
    assert resp.status == 200
    assert resp.headers["X-Upstream"] == "yes"
    seen = await resp.json()
    assert seen["method"] == "GET" and seen["path"] == "/echo"
    assert seen["query"] == {"fixed": ["1"], "page": ["3"], "multi": ["a", "b"]}
    assert seen["headers"]["x-api-key"] == "k-123"
    assert seen["headers"]["authorization"] == "Basic " + base64.b64encode(b"svc:pw").decode()
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert seen["headers"]["x-forwarded-proto"] == "http"


async def test_visitor_values_cannot_break_out_of_a_json_string(start, upstream):
    files = {
        "wwwroot/api.proxy": proxy_file(
            base(upstream) + "/echo", headers='{"X-Name": "{{ params_kw.name }}"}'
        ),
        "wwwroot/raw.proxy": proxy_file(
            base(upstream) + "/echo", headers='{"X-Json": {{ params_kw.name|tojson }}}'
        ),
    }
    client = await start(files)
    evil = 'a", "url": "http://localhost:1/x\\'
    resp = await client.get("/api.proxy", params={"name": evil})
    assert resp.status == 200
    assert (await resp.json())["headers"]["x-name"] == evil  # one literal value, not keys
    resp = await client.get("/raw.proxy", params={"name": "<b>&"})
    assert (await resp.json())["headers"]["x-json"] == "<b>&"


async def test_methods_and_bodies_pass_through(start, upstream):
    files = {
        "wwwroot/api.proxy": proxy_file(
            base(upstream) + "/echo", headers='{"X-Form-A": "{{ params_kw.a }}"}'
        ),
    }
    client = await start(files)
    # A form: the description sees its fields, the upstream gets the same body.
    resp = await client.post("/api.proxy", data={"a": "1"})
    seen = await resp.json()
    assert seen["method"] == "POST" and seen["body"] == "a=1"
    assert seen["headers"]["x-form-a"] == "1"
    for method in ("PUT", "PATCH", "DELETE"):
        resp = await client.request(method, "/api.proxy", json={"k": method})
        seen = await resp.json()
        assert seen["method"] == method and json.loads(seen["body"]) == {"k": method}
    # A raw body is streamed through, not parsed.
    payload = bytes(range(256)) * 3000  # 750 KiB
    resp = await client.post(
        "/api.proxy", data=payload, headers={"Content-Type": "application/octet-stream"}
    )
    seen = await resp.json()
    assert seen["length"] == len(payload)
    assert seen["sha256"] == hashlib.sha256(payload).hexdigest()
    # Multipart is forwarded as sent (the kernel does not store the uploads).
    form = aiohttp.FormData()
    form.add_field("file", b"FILE-CONTENT", filename="a.txt")
    resp = await client.post("/api.proxy", data=form)
    seen = await resp.json()
    assert seen["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert "FILE-CONTENT" in seen["body"]


async def test_head_gets_headers_without_body(start, upstream):
    client = await start({"wwwroot/api.proxy": proxy_file(base(upstream) + "/echo")})
    resp = await client.head("/api.proxy")
    assert resp.status == 200
    assert int(resp.headers["Content-Length"]) > 0
    assert await resp.read() == b""


async def test_body_over_client_max_size_is_413(start, upstream):
    client = await start(
        {"wwwroot/api.proxy": proxy_file(base(upstream) + "/echo")}, client_max_size=100_000
    )
    resp = await client.post(
        "/api.proxy", data=b"x" * 200_000, headers={"Content-Type": "application/octet-stream"}
    )
    assert resp.status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(20):
            yield b"y" * 10_000

    resp = await client.post(
        "/api.proxy", data=chunks(), headers={"Content-Type": "application/octet-stream"}
    )
    assert resp.status == 413


async def test_path_call_returns_the_description(start, upstream):
    files = {
        "wwwroot/api.proxy": proxy_file(base(upstream) + "/echo", method='"POST"'),
        "wwwroot/show.dspy": "d = await path_call('api.proxy')\nreturn {'method': d['method']}\n",
    }
    client = await start(files)
    resp = await client.get("/show.dspy")
    assert await resp.json() == {"method": "POST"}
    assert upstream.hits["echo"] == 0  # describing is not sending


async def test_includes_resolve_like_templates(start, upstream):
    files = {
        "wwwroot/upstream.inc": base(upstream),
        "wwwroot/api/items.proxy": '{"url": "{% include "upstream.inc" %}/echo"}\n',
    }
    client = await start(files)
    resp = await client.get("/api/items.proxy")
    assert resp.status == 200
    assert (await resp.json())["path"] == "/echo"


# ---------------------------------------------------------------- streaming


async def test_large_chunked_answer_arrives_complete(start, upstream):
    client = await start({"wwwroot/big.proxy": proxy_file(base(upstream) + "/big")})
    resp = await client.get("/big.proxy")
    assert resp.status == 200
    digest = hashlib.sha256()
    async for chunk in resp.content.iter_chunked(100_000):
        digest.update(chunk)
    assert digest.hexdigest() == BIG_DIGEST


async def test_answer_is_streamed_not_buffered(start, upstream):
    client = await start({"wwwroot/gated.proxy": proxy_file(base(upstream) + "/gated")})
    resp = await client.get("/gated.proxy")
    # The upstream is held until the test opens the gate, so the first chunk
    # can only arrive if the proxy passes it on before the upstream finishes.
    first = await asyncio.wait_for(resp.content.readexactly(6), 30)
    assert first == b"first|"
    assert not upstream.gated_finished
    upstream.gate.set()
    rest = await resp.read()
    assert len(rest) == 32 * len(BIG_CHUNK)
    assert upstream.gated_finished


async def test_upstream_failing_mid_body_cuts_the_visitors_connection(start, upstream, caplog):
    client = await start({"wwwroot/cut.proxy": proxy_file(base(upstream) + "/cut")})
    resp = await client.get("/cut.proxy")
    assert resp.status == 200  # the headers had gone out
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()  # never a short body that looks complete
    assert any(
        "cut.proxy" in m and "failed after" in m for m in (r.getMessage() for r in caplog.records)
    )


# ---------------------------------------------------------------- headers


def test_filter_headers_drops_hop_by_hop_and_connection_named():
    headers = CIMultiDict(
        [
            ("Connection", "keep-alive, X-Private"),
            ("Connection", "X-Other"),
            ("Keep-Alive", "1"),
            ("TE", "trailers"),
            ("Trailer", "X"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Proxy-Authorization", "Basic x"),
            ("Proxy-Connection", "keep-alive"),
            ("X-Private", "p"),
            ("X-Other", "o"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("X-Kept", "k"),
        ]
    )
    assert list(filter_headers(headers).items()) == [
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-Kept", "k"),
    ]


async def raw_get(port: int, target: str, headers: dict[str, str]) -> tuple[int, str]:
    """A GET over a raw socket (no client library adding or merging headers)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode("latin-1")


async def test_hop_by_hop_and_credentials_do_not_cross(start, upstream):
    files = {
        "wwwroot/api.proxy": proxy_file(base(upstream) + "/echo"),
        "wwwroot/creds.proxy": proxy_file(
            base(upstream) + "/echo", forward_cookies="true", forward_authorization="true"
        ),
        "wwwroot/hop.proxy": proxy_file(base(upstream) + "/hop"),
    }
    client = await start(files)
    status, body = await raw_get(
        client.server.port,
        "/api.proxy",
        {
            "Connection": "close, X-Visitor-Hop",
            "X-Visitor-Hop": "v",
            "Keep-Alive": "300",
            "Proxy-Authorization": "Basic eA==",
            "TE": "trailers",
            "Cookie": "AHCORE_SESSION=visitor-session",
            "Authorization": "Bearer visitor-token",
            "X-Forwarded-For": "6.6.6.6",
            "X-Kept": "k",
        },
    )
    assert status == 200, body
    sent = json.loads(body)["headers"]  # the upstream's Content-Length is kept: not chunked
    for name in (
        "x-visitor-hop",
        "keep-alive",
        "proxy-authorization",
        "te",
        "cookie",
        "authorization",
    ):
        assert name not in sent, name
    assert sent["x-kept"] == "k"
    assert sent["x-forwarded-for"] == "127.0.0.1"  # the visitor's claim is not passed on

    resp = await client.get("/api.proxy")
    assert "Set-Cookie" not in resp.headers  # the upstream cannot set cookies on this site
    resp = await client.get(
        "/creds.proxy", headers={"Cookie": "theme=dark", "Authorization": "Bearer t"}
    )
    sent = (await resp.json())["headers"]
    assert sent["cookie"] == "theme=dark" and sent["authorization"] == "Bearer t"
    assert resp.headers["Set-Cookie"].startswith("up=1")

    resp = await client.get("/hop.proxy")
    assert await resp.text() == "ok"
    for name in ("Keep-Alive", "Proxy-Authenticate", "Proxy-Anything", "Trailer"):
        assert name not in resp.headers, name
    assert resp.headers["X-Normal"] == "kept"


# ---------------------------------------------------------------- refusals and failures


async def test_hosts_outside_the_allow_list_are_refused(start, upstream, caplog):
    files = {"wwwroot/to.proxy": proxy_file("{{ params_kw.target }}")}
    client = await start(files)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        other_port = s.getsockname()[1]
    for target in (
        f"http://127.0.0.1:{other_port}/echo",  # listed host, other port
        f"http://localhost:{upstream.port}/echo",  # same address, name not listed
        "http://127.0.0.1/echo",  # no port given: 80, not listed
        "file:///etc/passwd",
        f"ftp://127.0.0.1:{upstream.port}/",
    ):
        resp = await client.get("/to.proxy", params={"target": target})
        assert resp.status == 403, target
        assert "allow" in await resp.text()
    assert upstream.hits["echo"] == 0
    assert any("to.proxy" in r.getMessage() for r in caplog.records)
    resp = await client.get("/to.proxy", params={"target": base(upstream) + "/echo"})
    assert resp.status == 200


async def test_redirects_are_passed_back_not_followed(start, upstream):
    client = await start({"wwwroot/r.proxy": proxy_file(base(upstream) + "/redirect")})
    resp = await client.get("/r.proxy", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == f"http://localhost:{upstream.port}/echo?tag=redirected"
    assert upstream.hits["redirected"] == 0


async def test_time_limit_is_504(start, upstream):
    client = await start(
        {"wwwroot/slow.proxy": proxy_file(base(upstream) + "/slow")}, {"time_limit": 0.5}
    )
    resp = await client.get("/slow.proxy")
    assert resp.status == 504
    assert "did not answer" in await resp.text()


async def test_unreachable_upstream_is_502(start, upstream, make_site, ahcore_client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens once the socket is closed
    config = site_config(closed_port)
    files = {"wwwroot/gone.proxy": proxy_file(f"http://127.0.0.1:{closed_port}/")}
    client = await ahcore_client(make_site(config=config, files=files))
    resp = await client.get("/gone.proxy")
    assert resp.status == 502
    assert "could not be reached" in await resp.text()


@pytest.mark.parametrize(
    "content",
    [
        "this is not json",
        '{"method": "GET"}',
        '["http://127.0.0.1/"]',
        '{"url": "http://127.0.0.1:1/", "method": "BREW"}',
        '{"url": "http://127.0.0.1:1/", "headers": ["x"]}',
        "{{ no_such_function() }}",
        "{% if %}",
    ],
)
async def test_broken_descriptions_are_500_logged_with_the_file_name(start, content, caplog):
    client = await start({"wwwroot/bad.proxy": content})
    caplog.set_level(logging.ERROR)
    resp = await client.get("/bad.proxy")
    assert resp.status == 500
    text = await resp.text()
    assert "Traceback" not in text and "bad.proxy" not in text
    assert any("bad.proxy" in r.getMessage() for r in caplog.records)


async def test_other_methods_are_405_with_allow(start, upstream):
    client = await start({"wwwroot/api.proxy": proxy_file(base(upstream) + "/echo")})
    resp = await client.request("PURGE", "/api.proxy")
    assert resp.status == 405
    # the kernel answers OPTIONS itself, so it is allowed too
    assert resp.headers["Allow"] == "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"
    assert upstream.hits["echo"] == 0


# ---------------------------------------------------------------- settings and format


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"allow_hosts": "127.0.0.1"}, "allow_hosts"),
        ({"allow_hosts": ["http://127.0.0.1"]}, "allow_hosts"),
        ({"allow_hosts": ["*.example.com"]}, "allow_hosts"),
        ({"allow_hosts": ["a.example/path"]}, "allow_hosts"),
        ({"time_limit": 0}, "time_limit"),
        ({"time_limit": "30"}, "time_limit"),
    ],
)
def test_bad_settings_name_the_key(settings, problem):
    with pytest.raises(ValueError, match=rf"plugins\.proxy\.{problem}"):
        parse_settings(settings)


def test_allow_list_matching():
    settings = parse_settings(
        {"allow_hosts": ["API.example.com", "db.internal:8080", "[::1]:9000", "any.example:*"]}
    )
    allowed = [
        "http://api.example.com/",
        "https://api.example.com/x",
        "http://api.example.com:80/",
        "http://db.internal:8080/",
        "http://[::1]:9000/",
        "http://any.example:1234/",
    ]
    refused = [
        "http://api.example.com:8080/",
        "http://db.internal/",
        "http://db.internal:8081/",
        "http://[::1]/",
        "http://sub.api.example.com/",
        "http://127.0.0.1:8080/",
    ]
    for url in allowed:
        assert settings.allows(URL(url)), url
    for url in refused:
        assert not settings.allows(URL(url)), url
    assert not parse_settings({}).allows(URL("http://127.0.0.1/"))  # nothing by default


def test_description_errors_name_the_file():
    with pytest.raises(DescriptionError, match=r"^site/a\.proxy: .*lacks \"url\""):
        parse_description('{"method": "GET"}', "site/a.proxy")
    with pytest.raises(DescriptionError, match="credentials"):
        parse_description('{"url": "http://u:p@127.0.0.1/"}', "a.proxy")
    d = parse_description('{"url": "http://h/", "extra": 1, "params": {"n": 2}}', "a.proxy")
    assert d.params == [("n", "2")]
