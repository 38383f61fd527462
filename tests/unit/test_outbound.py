"""ahcore.outbound called directly: scripts' HttpClient and StreamHttpClient against a real upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ahcore.appkeys import get_site
from ahcore.context import RequestContext
from ahcore.outbound import (
    OUTBOUND,
    HttpClient,
    HttpError,
    Outbound,
    StreamHttpClient,
    outbound_session,
)
from ahcore.scriptfiles import downloadfile2url


async def _echo(request: web.Request) -> web.Response:
    """What the upstream saw: method, query, cookies, content type and body."""
    body = await request.read()
    return web.json_response({
        "method": request.method,
        "query": dict(request.query),
        "cookies": dict(request.cookies),
        "type": request.content_type,
        "body": body.decode("utf-8", "replace"),
    })


async def _set_cookie(request: web.Request) -> web.Response:
    response = web.Response(text="set")
    response.set_cookie("upstream", "secret")
    return response


def _answer(**kwargs: Any) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(**kwargs)

    return handler


def upstream_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/cookie", _set_cookie)
    app.router.add_get("/text", _answer(body="héllo".encode("latin-1")))
    app.router.add_get("/big", _answer(body=b"x" * 3000))
    app.router.add_get("/missing", _answer(status=404, text="no"))
    app.router.add_get("/files/pic.png", _answer(body=b"PNG" * 10))
    return app


@pytest.fixture
async def upstream(aiohttp_server: Any) -> Any:
    return await aiohttp_server(upstream_app())


@pytest.fixture
async def active(make_app: Any, make_request: Any) -> AsyncIterator[RequestContext]:
    """A request context made current, as while a script runs; the app cleaned up after."""
    app = make_app({"filesroot": "$[workdir]$/files", "uploads": {"max_file_size": 100}})
    site = get_site(app)
    context = RequestContext(make_request(app=app), site, None)
    token = context.activate()
    yield context
    context.deactivate(token)
    await app[OUTBOUND].close()


async def test_the_session_is_made_once_and_again_after_close() -> None:
    outbound = Outbound()
    first = outbound.session()
    assert outbound.session() is first
    assert isinstance(first.cookie_jar, aiohttp.DummyCookieJar)
    await outbound.close()
    assert first.closed
    second = outbound.session()
    assert second is not first and not second.closed
    await second.close()
    assert outbound.session() is not second  # closed elsewhere: a new one
    await outbound.close()
    await outbound.close()  # twice is harmless


def test_clients_need_a_request_being_processed() -> None:
    with pytest.raises(RuntimeError, match="no ahcore request"):
        HttpClient()
    with pytest.raises(RuntimeError, match="no ahcore request"):
        StreamHttpClient()


async def test_every_client_shares_the_application_session(active: RequestContext) -> None:
    app = active.site.app
    assert app is not None
    session = outbound_session(app)
    assert HttpClient()._session is session  # noqa: SLF001 - the point of the test
    assert StreamHttpClient()._session is session  # noqa: SLF001


async def test_http_client_answers_text_bytes_json(active: RequestContext, upstream: Any) -> None:
    hc = HttpClient(coding="latin-1")
    assert await hc.request(str(upstream.make_url("/text"))) == "héllo"
    assert await hc.request(str(upstream.make_url("/text")), response_type=HttpClient.RESPONSE_BIN) == (
        "héllo".encode("latin-1")
    )
    got = await hc.request(
        str(upstream.make_url("/echo")), "POST", HttpClient.RESPONSE_JSON,
        params={"q": "1"}, jd={"a": [1, 2]}, headers={"X-Test": "y"},
    )
    assert got["method"] == "POST" and got["query"] == {"q": "1"}
    assert got["type"] == "application/json" and got["body"] == '{"a": [1, 2]}'
    form = await hc.request(str(upstream.make_url("/echo")), "POST", 2, data={"k": "v w"})
    assert form["type"] == "application/x-www-form-urlencoded" and form["body"] == "k=v+w"
    assert await hc.request(str(upstream.make_url("/text")), response_type=HttpClient.RESPONSE_FILE) is None


async def test_a_status_other_than_200_is_an_http_error(active: RequestContext, upstream: Any) -> None:
    url = str(upstream.make_url("/missing"))
    with pytest.raises(HttpError) as info:
        await HttpClient().request(url)
    assert info.value.code == 404
    assert str(info.value) == f"Error Code:404, http error(404, url={url!r})"
    with pytest.raises(HttpError):
        async for _ in HttpClient()(url):
            pass


async def test_http_client_streams_in_1k_chunks(active: RequestContext, upstream: Any) -> None:
    hc = HttpClient()
    seen: list[bytes] = []

    async def keep(chunk: bytes) -> None:
        seen.append(chunk)

    assert await hc.request(str(upstream.make_url("/big")), stream_func=keep) is None
    assert b"".join(seen) == b"x" * 3000 and max(map(len, seen)) <= 1024
    chunks = [c async for c in hc(str(upstream.make_url("/big")))]
    assert b"".join(chunks) == b"x" * 3000


async def test_get_and_post_return_the_coroutine_as_appPublic_did(
    active: RequestContext, upstream: Any
) -> None:
    hc = HttpClient()
    pending = await hc.get(str(upstream.make_url("/echo")), response_type=2)
    assert (await pending)["method"] == "GET"
    got = await (await hc.post(str(upstream.make_url("/echo")), response_type=2))
    assert got["method"] == "POST"


async def test_upstream_cookies_never_ride_along_on_another_request(
    active: RequestContext, upstream: Any
) -> None:
    hc = HttpClient()
    assert await hc.request(str(upstream.make_url("/cookie"))) == "set"
    assert hc.getCookies(str(upstream.make_url("/x")))["upstream"].value == "secret"  # kept per client, as appPublic
    again = await hc.request(str(upstream.make_url("/echo")), response_type=2)
    assert again["cookies"] == {}
    other = await StreamHttpClient().request("GET", str(upstream.make_url("/echo")))
    assert b'"cookies": {}' in other


async def test_stream_http_client(active: RequestContext, upstream: Any) -> None:
    shc = StreamHttpClient(socks5_url="socks5://ignored")
    assert await shc.request("GET", str(upstream.make_url("/big"))) == b"x" * 3000
    chunks = [c async for c in shc("GET", str(upstream.make_url("/big")), chunk_size=500)]
    assert len(chunks) >= 6 and max(map(len, chunks)) <= 500
    with pytest.raises(aiohttp.ClientResponseError) as info:
        await shc.request("GET", str(upstream.make_url("/missing")))
    assert info.value.status == 404


async def test_stream_http_client_sends_json_forms_and_files(
    active: RequestContext, upstream: Any
) -> None:
    import json

    shc = StreamHttpClient()
    url = str(upstream.make_url("/echo"))
    sent = json.loads(await shc.request("POST", url, json={"a": 1}, params={"p": "2"}, verify=False))
    assert sent["type"] == "application/json" and sent["query"] == {"p": "2"}
    multipart = json.loads(await shc.request(
        "POST", url, data={"title": 3}, files={"doc": (b"file body", "text/plain", "a.txt")},
    ))
    assert multipart["type"] == "multipart/form-data"
    assert 'name="title"' in multipart["body"] and "\r\n\r\n3\r\n" in multipart["body"]
    assert 'filename="a.txt"' in multipart["body"] and "file body" in multipart["body"]
    assert "Content-Type: text/plain" in multipart["body"]
    plain = json.loads(await shc.request("POST", url, files={"note": ("just text",)}))
    assert plain["body"] == "note=just+text"  # no file among the fields: aiohttp urlencodes


async def test_downloadfile2url_stores_the_file_under_filesroot(
    active: RequestContext, upstream: Any
) -> None:
    url = await downloadfile2url(active.request, str(upstream.make_url("/files/pic.png?v=1")))
    assert url.startswith("http://example.org/idfile?path=/") and url.endswith(".png")
    uploads = active.site.uploads
    assert uploads is not None
    assert uploads.realpath(url.split("path=", 1)[1]).read_bytes() == b"PNG" * 10
    with pytest.raises(aiohttp.ClientResponseError):
        await downloadfile2url(active.request, str(upstream.make_url("/missing")))
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await downloadfile2url(active.request, str(upstream.make_url("/big")))
    left = [p.name for p in uploads.root.rglob("*") if p.is_file()]
    assert len(left) == 1, left  # no .part of the refused download
