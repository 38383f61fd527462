"""Outbound HTTP for scripts: ahserver's ``HttpClient`` and ``StreamHttpClient``.

appPublic's classes opened a new :class:`aiohttp.ClientSession` for every
request (and kept a cookie jar per client object). Here every client of an
application shares the application's one session (:class:`Outbound`,
created on first use, closed at application cleanup), so connections are
pooled and nothing is left open. The session keeps no cookies
(:class:`aiohttp.DummyCookieJar`): what one upstream answer sets can never
ride along on another script's request.

Scripts are trusted code (docs/security.md): these clients reach any URL a
script names, as ``aiohttp_client`` does. A script that takes a URL from a
request must check it itself (the proxy processor's ``allow_hosts`` applies
to proxy files only). appPublic's SOCKS5 fallback is not provided: a
``socks5_proxy_url`` is accepted and ignored; use ``proxy=`` (an HTTP proxy,
passed on to aiohttp) where one is needed.
"""

from __future__ import annotations

import json as _json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger("ahcore.outbound")

RESPONSE_BIN = 0
RESPONSE_TEXT = 1
RESPONSE_JSON = 2
RESPONSE_FILE = 3
RESPONSE_STREAM = 4


class Outbound:
    """The application's one client session, made on first use (a loop must run)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The shared session; a new one if it was closed."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def close(self) -> None:
        """Close the session (application cleanup)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


OUTBOUND: web.AppKey[Outbound] = web.AppKey("ahcore.outbound", Outbound)


def outbound_session(app: web.Application) -> aiohttp.ClientSession:
    """The client session of ``app`` (created by :func:`ahcore.app.create_app`)."""
    return app[OUTBOUND].session()


def _current_session() -> aiohttp.ClientSession:
    from ahcore.context import current_context

    app = current_context().site.app
    if app is None:
        raise RuntimeError("outbound HTTP needs a running application")
    return outbound_session(app)


class HttpError(Exception):
    """An answer other than 200 (appPublic's ``HttpError``: ``code``, ``msg``)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg

    def __str__(self) -> str:
        return f"Error Code:{self.code}, {self.msg}"


class HttpClient:
    """appPublic's ``HttpClient``: ``await hc.request(url, ...)``, ``async for chunk in hc(url)``.

    ``request`` returns the body as text (``response_type=HttpClient.RESPONSE_TEXT``,
    decoded with ``coding``), bytes (``RESPONSE_BIN``) or parsed JSON
    (``RESPONSE_JSON``); with ``stream_func`` each 1 KiB chunk is handed to
    it and ``None`` returned. A status other than 200 raises
    :class:`HttpError`. ``jd`` is sent as a JSON body.
    """

    RESPONSE_BIN = RESPONSE_BIN
    RESPONSE_TEXT = RESPONSE_TEXT
    RESPONSE_JSON = RESPONSE_JSON
    RESPONSE_FILE = RESPONSE_FILE
    RESPONSE_STREAM = RESPONSE_STREAM

    def __init__(self, coding: str = "utf-8", socks5_proxy_url: str | None = None) -> None:
        self.coding = coding
        self.socks5_proxy_url = socks5_proxy_url  # accepted, not used (module doc)
        self.cookies: dict[str, Any] = {}
        self._session = _current_session()

    async def close(self) -> None:
        """Nothing to close: the application owns the session."""

    def setCookie(self, url: str, cookies: Any) -> None:
        self.cookies[_domain(url)] = cookies

    def getCookies(self, url: str) -> Any:
        return self.cookies.get(_domain(url))

    def _send(
        self,
        url: str,
        method: str,
        params: Any,
        data: Any,
        jd: Any,
        headers: Any,
        kw: dict[str, Any],
    ) -> Any:
        args: dict[str, Any] = {k: v for k, v in kw.items() if k not in ("stream", "use_proxy")}
        if params:
            args["params"] = params
        if data:
            args["data"] = data
        if jd:
            args["json"] = jd
        if headers:
            args["headers"] = headers
        return self._session.request(method, url, **args)

    async def request(
        self,
        url: str,
        method: str = "GET",
        response_type: int = RESPONSE_TEXT,
        params: Any = None,
        data: Any = None,
        jd: Any = None,
        stream_func: Callable[[bytes], Awaitable[Any]] | None = None,
        headers: Any = None,
        **kw: Any,
    ) -> Any:
        async with self._send(url, method, params, data, jd, headers, kw) as resp:
            if resp.status != 200:
                raise HttpError(resp.status, f"http error({resp.status}, {url=})")
            self.setCookie(url, resp.cookies)
            if stream_func is not None:
                async for chunk in resp.content.iter_chunked(1024):
                    await stream_func(chunk)
                return None
            if response_type == RESPONSE_BIN:
                return await resp.read()
            if response_type == RESPONSE_JSON:
                return _json.loads(await resp.text(self.coding))
            if response_type == RESPONSE_TEXT:
                return await resp.text(self.coding)
            return None

    async def __call__(
        self,
        url: str,
        method: str = "GET",
        response_type: int = RESPONSE_TEXT,
        params: Any = None,
        data: Any = None,
        jd: Any = None,
        headers: Any = None,
        **kw: Any,
    ) -> AsyncIterator[bytes]:
        async with self._send(url, method, params, data, jd, headers, kw) as resp:
            if resp.status != 200:
                raise HttpError(resp.status, f"http error({resp.status}, {url=})")
            self.setCookie(url, resp.cookies)
            async for chunk in resp.content.iter_chunked(1024):
                yield chunk

    async def get(self, url: str, **kw: Any) -> Any:
        """As appPublic: returns the *coroutine* of ``request`` (``await await hc.get(url)``)."""
        return self.request(url, "GET", **kw)

    async def post(self, url: str, **kw: Any) -> Any:
        """As appPublic: returns the *coroutine* of ``request``."""
        return self.request(url, "POST", **kw)


class StreamHttpClient:
    """appPublic's ``StreamHttpClient``: ``async for chunk in shc(method, url, ...)``.

    ``await shc.request(method, url, ...)`` returns the whole body as bytes.
    An error status raises :class:`aiohttp.ClientResponseError`;
    ``verify=False`` turns certificate checks off; ``files`` (``{field:
    (value, content_type, filename)}``, the last two optional) sends a
    multipart form with ``data``'s fields. Other
    keywords (``timeout`` …) go to aiohttp.
    """

    def __init__(self, socks5_url: str | None = None) -> None:
        self.socks5_url = socks5_url  # accepted, not used (module doc)
        self._session = _current_session()

    async def request(self, method: str, url: str, **kw: Any) -> bytes:
        body = b""
        async for chunk in self(method, url, **kw):
            body += chunk
        return body

    async def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Any = None,
        params: Any = None,
        data: Any = None,
        json: Any = None,
        files: dict[str, Any] | None = None,
        chunk_size: int = 1024,
        **kw: Any,
    ) -> AsyncIterator[bytes]:
        args: dict[str, Any] = {k: v for k, v in kw.items() if k != "verify"}
        if kw.get("verify") is False:
            args["ssl"] = False
        args.update(headers=headers, params=params)
        if files:
            form = aiohttp.FormData()
            if isinstance(data, dict):
                for k, v in data.items():
                    form.add_field(k, str(v))
            for name, (value, *rest) in files.items():
                # aiohttp takes the type and file name as keywords only.
                form.add_field(name, value, **dict(zip(_FILE_FIELDS, rest, strict=False)))
            args["data"] = form
        elif json is not None:
            args["json"] = json
        else:
            args["data"] = data
        async with self._session.request(method, url, **args) as resp:
            resp.raise_for_status()
            async for chunk in resp.content.iter_chunked(chunk_size):
                yield chunk


#: What follows the value in a ``files`` entry (aiohttp's ``FormData.add_field`` keywords).
_FILE_FIELDS = ("content_type", "filename", "content_transfer_encoding")


def _domain(url: str) -> str:
    from yarl import URL

    return URL(url if "://" in url else "http://" + url).host or ""
