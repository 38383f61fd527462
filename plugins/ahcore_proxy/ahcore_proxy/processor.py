"""The ``proxy`` processor: a template that describes an upstream request, streamed back.

Per request: render the file with the request's namespace
(:mod:`ahcore_proxy.environment`), read the JSON description
(:mod:`ahcore_proxy.description`), check the upstream against
``plugins.proxy.allow_hosts``, send the request with the application's one
:class:`aiohttp.ClientSession`, and copy the answer to the visitor chunk by
chunk as it arrives — memory holds one chunk, whatever the size.

Refusals and failures, and who learns what:

- upstream not allowed, or not http/https → 403 (the log names file and URL);
- description unusable (not JSON, no ``url``, wrong types) or template
  broken → 500 with an error id (the site owner's bug; the log names the file);
- upstream unreachable or answering garbage → 502; no status and headers
  within ``time_limit`` → 504;
- a failure after the headers went out cuts the visitor's connection, so a
  truncated body can never pass for a complete one.

Redirects are never followed: the visitor gets the upstream's 3xx as is, so
an allowed upstream cannot send the proxy on to a host that is not.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jinja2
from aiohttp import web
from multidict import CIMultiDict

from ahcore.api import (
    DictObject,
    Problem,
    Processor,
    RequestContext,
    SiteView,
    request_scheme,
)
from ahcore_proxy.description import METHODS, NO_DATA, DescriptionError, Upstream, parse_description
from ahcore_proxy.environment import compile_template, environment_for
from ahcore_proxy.headers import NOT_FORWARDED, filter_headers
from ahcore_proxy.settings import SCHEMES, ProxySettings

log = logging.getLogger(__name__)

#: Bytes read from the upstream (and from a streamed visitor body) at a time.
CHUNK_SIZE = 64 * 1024


@dataclass
class ProxyState:
    """What the plugin keeps on one application (under :data:`STATE`)."""

    settings: ProxySettings
    #: One client for every proxy file of the app: connection pooling across
    #: requests. It never stores cookies (a DummyCookieJar), so nothing one
    #: visitor's upstream answer sets can reach another visitor's request.
    session: aiohttp.ClientSession


STATE: web.AppKey[ProxyState] = web.AppKey("ahcore_proxy.state", ProxyState)


def make_client_session(settings: ProxySettings) -> aiohttp.ClientSession:
    """The application's upstream client (made at start-up, closed at shutdown)."""
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        # Bodies pass through as the upstream encoded them, with their
        # Content-Encoding; decoding here would break that header.
        auto_decompress=False,
        # HTTP(S)_PROXY from the environment must not redirect upstream traffic.
        trust_env=False,
        # Only what the visitor (or the description) sent: no aiohttp defaults
        # that would, e.g., ask a gzip answer from the upstream for a visitor
        # who cannot read one.
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=settings.time_limit, sock_read=settings.time_limit
        ),
    )


class TemplateBroken(Exception):
    """A proxy file that does not compile; a 500 on every request until it changes."""


class UpstreamRefused(Exception):
    """The description names an upstream the settings do not allow."""


class BodyTooLarge(Exception):
    """The visitor's streamed body passed ``client_max_size``."""


class _BodyStream:
    """The visitor's body as an async iterator of chunks, cut at ``limit`` bytes."""

    def __init__(self, content: aiohttp.StreamReader, limit: int) -> None:
        self.content = content
        self.limit = limit
        self.seen = 0
        self.exceeded = False

    def __aiter__(self) -> _BodyStream:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.content.read(CHUNK_SIZE)
        if not chunk:
            raise StopAsyncIteration
        self.seen += len(chunk)
        if self.seen > self.limit:
            self.exceeded = True
            raise BodyTooLarge(f"request body over {self.limit} bytes")
        return chunk


def _query_params(request: web.Request) -> DictObject:
    """``params_kw`` from the query string alone (repeated names become lists)."""
    params = DictObject()
    query = request.query
    for key in query:
        if key not in params:
            values = query.getall(key)
            params[key] = values[0] if len(values) == 1 else list(values)
    return params


def _safe_reason(reason: str | None) -> str | None:
    """The upstream's reason phrase if it is plain printable text, else aiohttp's own."""
    if reason and reason.isprintable() and reason.isascii():
        return reason
    return None


class ProxyProcessor(Processor):
    """A proxy file: compiled once per change, rendered and forwarded per request."""

    def __init__(self, path: Path, site: SiteView) -> None:
        super().__init__(path, site)
        self.template: jinja2.Template | None = None
        self.error: str | None = None
        self.error_line: int | None = None
        self.error_message = ""

    async def load(self) -> None:
        env = environment_for(self.site)
        url = self.site.file_url(self.path) or "/" + self.path.name
        encoding = self.site.config.website.coding
        # Reading and compiling block: keep them off the event loop.
        source = await asyncio.to_thread(self.path.read_text, encoding=encoding)
        try:
            self.template = await asyncio.to_thread(
                compile_template, env, source, url, str(self.path)
            )
        except jinja2.TemplateSyntaxError as exc:
            self.error = f"{self.path}, line {exc.lineno}: {exc.message}"
            self.error_line, self.error_message = exc.lineno, exc.message or str(exc)
            log.error("proxy file does not compile: %s", self.error)

    async def check(self) -> list[Problem]:
        """The template's syntax error with its line, for ``ahcore check``."""
        if self.error is None:
            return []
        return [
            Problem(
                f"proxy file does not compile: {self.error_message.rstrip('.')}; fix it "
                "(until then its requests fail)",
                self.path,
                self.error_line,
            )
        ]

    async def _render(self, context: RequestContext) -> str:
        if self.template is None:
            raise TemplateBroken(self.error)
        request = context.request
        if context.parent is None and request.content_type == "multipart/form-data":
            # The kernel would store the uploads to build params_kw; the
            # upstream is meant to get them, so the body stays unread and the
            # description sees the query string only.
            context = RequestContext(
                request, context.site, context.resolved, _query_params(request)
            )
        return await self.template.render_async(await context.namespace())

    async def produce(self, context: RequestContext) -> Any:
        """The parsed description (what ``path_call`` of a proxy file returns, as in ahserver)."""
        text = await self._render(context)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise DescriptionError(
                f"{self.path}: proxy description is not valid JSON ({exc})"
            ) from None

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        request = context.request
        if request.method not in METHODS:
            raise web.HTTPMethodNotAllowed(request.method, METHODS)
        app = self.site.app
        assert app is not None
        state = app[STATE]
        upstream = parse_description(await self._render(context), str(self.path))
        try:
            self._check_allowed(upstream, state.settings)
        except UpstreamRefused as exc:
            log.warning("%s: %s", self.path, exc)
            raise web.HTTPForbidden(
                text="403: Forbidden: this upstream is not allowed (plugins.proxy.allow_hosts)\n"
            ) from None
        return await self._forward(context, upstream, state)

    @staticmethod
    def _check_allowed(upstream: Upstream, settings: ProxySettings) -> None:
        url = upstream.url
        if url.scheme not in SCHEMES or not url.absolute:
            raise UpstreamRefused(f"upstream {str(url)!r} refused: only http and https URLs")
        if not settings.allows(url):
            port = url.port
            raise UpstreamRefused(
                f"upstream {url.raw_host}:{port} refused: not in plugins.proxy.allow_hosts"
            )

    def _upstream_headers(self, request: web.Request, upstream: Upstream) -> CIMultiDict[str]:
        drop = set(NOT_FORWARDED)
        if not upstream.forward_cookies:
            drop.add("cookie")
        if not upstream.forward_authorization or upstream.user is not None:
            drop.add("authorization")
        if upstream.data is not NO_DATA:
            drop.add("content-type")
        headers = filter_headers(request.headers, drop)
        if request.remote:
            headers["X-Forwarded-For"] = request.remote
        headers["X-Forwarded-Proto"] = request_scheme(request)
        headers["X-Forwarded-Host"] = request.host
        # The description's own headers win (Host included: a virtual host
        # upstream), except framing ones: aiohttp frames the request itself.
        own = filter_headers(CIMultiDict(upstream.headers), ("content-length",))
        for name in own:
            headers.popall(name, None)
        headers.extend(own)
        return headers

    async def _body(
        self, request: web.Request, upstream: Upstream, headers: CIMultiDict[str]
    ) -> tuple[Any, _BodyStream | None]:
        """What to send upstream as the body, and the stream when it is the visitor's."""
        if upstream.data is not NO_DATA:
            data = upstream.data
            if isinstance(data, str):
                headers.setdefault("Content-Type", "text/plain; charset=utf-8")
                return data.encode(), None
            headers.setdefault("Content-Type", "application/json")
            return json.dumps(data, ensure_ascii=False).encode(), None
        if not request.body_exists:
            return None, None
        limit = self.site.config.website.client_max_size
        if request.content_length is not None and request.content_length > limit:
            raise web.HTTPRequestEntityTooLarge(limit, request.content_length)
        if request.content.at_eof():
            # Already read whole by the kernel (a form or JSON body that
            # params_kw was built from): aiohttp kept it.
            return await request.read(), None
        stream = _BodyStream(request.content, limit)
        if request.content_length is not None:
            headers["Content-Length"] = str(request.content_length)
        return stream, stream

    async def _forward(
        self, context: RequestContext, upstream: Upstream, state: ProxyState
    ) -> web.StreamResponse:
        request = context.request
        headers = self._upstream_headers(request, upstream)
        data, stream = await self._body(request, upstream, headers)
        method = upstream.method or request.method
        if upstream.user is not None:
            token = base64.b64encode(f"{upstream.user}:{upstream.password or ''}".encode())
            headers["Authorization"] = "Basic " + token.decode("ascii")
        limit = state.settings.time_limit
        target = f"{method} {upstream.url.with_query(None)}"
        try:
            answer = await asyncio.wait_for(
                state.session.request(
                    method,
                    upstream.url,
                    params=upstream.params or None,
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                ),
                limit,
            )
        except asyncio.TimeoutError:
            if stream is not None and stream.exceeded:
                raise web.HTTPRequestEntityTooLarge(stream.limit, stream.seen) from None
            log.warning("%s: upstream %s: no answer within %g s", self.path, target, limit)
            raise web.HTTPGatewayTimeout(
                text=f"504: Gateway Timeout: the upstream server did not answer within {limit:g} s\n"
            ) from None
        except (aiohttp.ClientError, BodyTooLarge, OSError) as exc:
            if stream is not None and stream.exceeded:
                raise web.HTTPRequestEntityTooLarge(stream.limit, stream.seen) from None
            log.warning("%s: upstream %s unreachable: %r", self.path, target, exc)
            raise web.HTTPBadGateway(
                text="502: Bad Gateway: the upstream server could not be reached\n"
            ) from None
        try:
            return await self._stream_back(request, answer, upstream, target)
        finally:
            answer.release()

    async def _stream_back(
        self,
        request: web.Request,
        answer: aiohttp.ClientResponse,
        upstream: Upstream,
        target: str,
    ) -> web.StreamResponse:
        drop = () if upstream.forward_cookies else ("set-cookie",)
        response = web.StreamResponse(
            status=answer.status,
            reason=_safe_reason(answer.reason),
            headers=filter_headers(answer.headers, drop),
        )
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        sent = 0
        try:
            async for chunk in answer.content.iter_chunked(CHUNK_SIZE):
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            log.debug("%s: visitor went away after %d bytes", self.path, sent)
            self._cut(request)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning(
                "%s: upstream %s failed after %d bytes of the body: %r",
                self.path,
                target,
                sent,
                exc,
            )
            self._cut(request)
        return response

    @staticmethod
    def _cut(request: web.Request) -> None:
        """End the visitor's connection without ending the body: it cannot look complete."""
        transport = request.transport
        if transport is not None:
            transport.abort()
