"""Forwarded headers from a trusted proxy that make no sense are a 400 (SPEC §16).

``X-Forwarded-Host``, ``-Port``, ``-For``, ``-Scheme`` and ``-Proto`` from a
peer listed in ``website.trusted_proxies`` decide the URLs, cookies and
origin checks of the answer. A value that is not a host, a port, an address
or ``http``/``https`` used to be dropped without a word — the site then
built its links from the proxy's own address and nobody learnt why. It is
now a 400 whose message names the header, before anything runs. From any
other peer the headers mean nothing and are ignored, as before.

Raw bytes over a socket: a client library would refuse or tidy some of
these header values itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from advkit import raw_exchange, request_bytes
from aiohttp import web

from ahcore import hookimpl
from ahcore.api import request_origin

RUN_LOG = "files/ran.txt"

WHO = """
open(file_realpath('ran.txt'), 'a').write(request.method + '\\n')
return {'remote': request.remote, 'host': request.host, 'scheme': request.scheme,
        'url': entire_url('/x')}
"""


class RoutePlugin:
    """A plugin route (not a file): it sees the request as the proxy sent it."""

    @hookimpl
    def register_routes(self, app: web.Application) -> None:
        async def origin(request: web.Request) -> web.Response:
            return web.json_response({"origin": request_origin(request)})

        app.router.add_get("/api/origin", origin)


def _site(make_site, trusted: list[str]) -> Path:
    return make_site(
        config={
            "website": {
                "processors": [[".dspy", "dspy"]],
                "trusted_proxies": trusted,
                "cookie_secret": "forwarded-headers-secret-32-bytes!",
            },
            "filesroot": "$[workdir]$/files",
            "plugins": {"dspy": True, "route": True},
        },
        files={"wwwroot/who.dspy": WHO, "files/.keep": ""},
    )


def _runs(site: Path) -> list[str]:
    path = site / RUN_LOG
    return path.read_text().split() if path.exists() else []


MALFORMED: list[tuple[str, str]] = [
    ("X-Forwarded-Host", "shop.example/admin"),
    ("X-Forwarded-Host", "shop example"),
    ("X-Forwarded-Host", "<script>"),
    ("X-Forwarded-Host", "user@shop.example"),
    ("X-Forwarded-Host", "shop.example:http"),
    ("X-Forwarded-Host", "shop.example:99999"),
    ("X-Forwarded-Host", "[::1"),
    ("X-Forwarded-Host", "sh\xe9p.example"),
    ("X-Forwarded-Port", "abc"),
    ("X-Forwarded-Port", "99999"),
    ("X-Forwarded-Port", "0"),
    ("X-Forwarded-Port", "-1"),
    ("X-Forwarded-Port", "443 443"),
    ("X-Forwarded-For", "not-an-address"),
    ("X-Forwarded-For", "999.1.1.1"),
    ("X-Forwarded-For", "203.0.113.9, <script>"),
    ("X-Forwarded-Scheme", "ftp"),
    ("X-Forwarded-Scheme", "https://evil.example"),
    ("X-Forwarded-Proto", "javascript"),
]


@pytest.mark.parametrize("header, value", MALFORMED, ids=[f"{h}={v!r}" for h, v in MALFORMED])
async def test_a_malformed_forwarded_header_from_a_trusted_proxy_is_400_naming_it(
    make_site, serve, header, value
):
    site = _site(make_site, ["127.0.0.1/32"])
    server = await serve(site, extra_plugins={"route": RoutePlugin()})
    for target, accept in [
        ("/who.dspy", {}),
        ("/who.dspy", {"Accept": "application/json"}),
        ("/api/origin", {}),
    ]:
        reply = await raw_exchange(
            server, request_bytes("GET", target, headers={header: value, **accept})
        )
        assert reply.status == 400, (target, reply.raw[:300])
        reply.assert_clean()
        if accept:
            error = json.loads(reply.body)["error"]
            assert error["status"] == 400 and header in error["message"]
        else:
            assert header.encode() in reply.body, reply.body
    # refused before anything ran
    assert _runs(site) == []


async def test_well_formed_forwarded_headers_from_a_trusted_proxy_apply(make_site, serve):
    site = _site(make_site, ["127.0.0.1/32"])
    server = await serve(site, extra_plugins={"route": RoutePlugin()})

    async def who(headers: dict[str, str]) -> dict[str, Any]:
        reply = await raw_exchange(server, request_bytes("GET", "/who.dspy", headers=headers))
        assert reply.status == 200, reply.raw[:300]
        return json.loads(reply.body)

    seen = await who(
        {
            "X-Forwarded-For": "203.0.113.9, 10.0.0.1",
            "X-Forwarded-Host": "shop.example",
            "X-Forwarded-Port": "8443",
            "X-Forwarded-Scheme": "HTTPS",
        }
    )
    assert seen["remote"] == "203.0.113.9"
    assert seen["url"] == "https://shop.example:8443/x"
    seen = await who({"X-Forwarded-Host": "[2001:db8::1]:8080", "X-Forwarded-For": "2001:db8::7"})
    assert seen["host"] == "[2001:db8::1]:8080" and seen["remote"] == "2001:db8::7"
    # several proxies: the first host and scheme are the client's
    seen = await who(
        {"X-Forwarded-Host": "shop.example, inner.local", "X-Forwarded-Proto": "https, http"}
    )
    assert seen["url"] == "https://shop.example/x"
    # an empty header says nothing
    seen = await who({"X-Forwarded-Host": ""})
    assert seen["host"].startswith("127.0.0.1")
    assert len(_runs(site)) == 4
    route = await raw_exchange(
        server, request_bytes("GET", "/api/origin", headers={"X-Forwarded-Host": "shop.example"})
    )
    assert json.loads(route.body) == {"origin": "http://shop.example"}


@pytest.mark.parametrize("trusted", [[], ["10.0.0.0/8"]], ids=["none", "another_network"])
async def test_forwarded_headers_from_an_untrusted_peer_are_ignored_even_malformed(
    make_site, serve, trusted
):
    site = _site(make_site, trusted)
    server = await serve(site, extra_plugins={"route": RoutePlugin()})
    for header, value in MALFORMED + [("X-Forwarded-Host", "shop.example")]:
        reply = await raw_exchange(
            server, request_bytes("GET", "/who.dspy", headers={header: value})
        )
        assert reply.status == 200, (header, value, reply.raw[:300])
        seen = json.loads(reply.body)
        assert seen["host"].startswith("127.0.0.1") and seen["remote"] == "127.0.0.1"
        assert seen["scheme"] == "http"
    assert len(_runs(site)) == len(MALFORMED) + 1
