"""The slow-client guard: aiohttp's protocol with a deadline on each request head.

aiohttp limits neither the time a request line and headers may take nor a
TLS handshake; a client sending one byte a minute would hold a connection
(and a file descriptor) for ever. :class:`SlowClientGuard` answers 408 and
closes such a connection after ``website.header_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

log = logging.getLogger("ahcore.server")

#: After a 408 for a slow head: seconds the connection is kept half-closed,
#: its input read and dropped, before it is closed.
LINGER_SECONDS = 2.0
LINGERING = -1.0  # _GuardedConnection._deadline while lingering


def _reply_408(text: str) -> bytes:
    body = text.encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n" + body
    )


class SlowClientGuard:
    """The protocol factory of a served site: aiohttp's, plus a header deadline.

    aiohttp has no limit on the time a request head (request line and
    headers) may take; it only closes a connection idle for its keep-alive
    time. The guard wraps each ``RequestHandler`` that ``runner.server``
    makes in a :class:`_GuardedConnection` that forwards every protocol call
    and runs one deadline: the head must be complete within
    ``header_timeout`` seconds of its first byte (of the connection's opening
    for the first request). A request reaching the application disarms it
    (the guard wraps ``server.request_handler`` for that); bytes arriving
    while no request is in progress (its handler done and its body read)
    arm it again. An idle keep-alive connection is not armed: aiohttp's
    keep-alive timer closes it. On expiry the client gets a 408 and the
    connection is half-closed, its input dropped, and closed
    ``LINGER_SECONDS`` later (a connection that sent nothing is just closed).

    Cost per request: a ``loop.time()`` when its first bytes arrive and a
    dict lookup when it reaches the application; the deadline is checked
    lazily, so a busy keep-alive connection does not make a timer per
    request. State lives on the guard (one per runner), none in the module.
    """

    def __init__(
        self, server: web.Server, header_timeout: float, write_timeout: float = 60.0
    ) -> None:
        self.server = server
        self.header_timeout = float(header_timeout)
        #: Seconds an answer may wait for a client that stopped reading it
        #: (the transport paused writing) before the connection is dropped.
        self.write_timeout = float(write_timeout)
        self.reply = _reply_408(
            f"408: request headers not received within {header_timeout:g} s\n"
        )
        # inner RequestHandler -> its guarded connection, while connected
        self.connections: dict[RequestHandler, _GuardedConnection] = {}
        self._handler = server.request_handler
        # RequestHandler reads server.request_handler when it is made, so
        # this must happen before the first connection (start_site does it
        # before any site starts).
        server.request_handler = self._request_started

    def __call__(self) -> _GuardedConnection:
        return _GuardedConnection(self, self.server())

    def _request_started(self, request: BaseRequest) -> Awaitable[StreamResponse]:
        conn = self.connections.get(request.protocol)
        if conn is not None:
            conn.request_started(request)
        return self._handler(request)


class _GuardedConnection(asyncio.Protocol):
    """One connection: aiohttp's ``RequestHandler`` behind a header deadline."""

    __slots__ = (
        "_guard", "_inner", "_loop", "_transport", "_deadline", "_timer", "_quiet",
        "_task", "_payload", "_stalled",
    )

    def __init__(self, guard: SlowClientGuard, inner: RequestHandler) -> None:
        self._guard = guard
        self._inner = inner
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._deadline = 0.0  # 0.0: disarmed; LINGERING: answered 408
        self._timer: asyncio.TimerHandle | None = None
        self._quiet = True  # nothing received since connect
        # The request in progress: the task that runs it (handler and
        # response writing) and its body. Busy until both are done.
        self._task: asyncio.Task[Any] | None = None
        self._payload: Any = None
        # Armed while the transport's buffer is full (the client stopped reading).
        self._stalled: asyncio.TimerHandle | None = None

    # ---- the deadline

    def _arm(self) -> None:
        self._deadline = deadline = self._loop.time() + self._guard.header_timeout
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._expire)

    def _busy(self) -> bool:
        task = self._task
        if task is None:
            return False
        if not task.done() or not self._payload.is_eof():
            return True
        self._task = self._payload = None
        return False

    def request_started(self, request: BaseRequest) -> None:
        # Disarm; a timer still pending sees deadline 0 and lapses.
        self._deadline = 0.0
        # With the loop given, current_task makes no get_running_loop call,
        # which on Python 3.11 is a getpid(2) system call per request.
        self._task = asyncio.current_task(self._loop)
        self._payload = request.content

    def _expire(self) -> None:
        self._timer = None
        deadline = self._deadline
        transport = self._transport
        if deadline <= 0.0 or transport is None:
            return
        if self._loop.time() < deadline:  # re-armed since this timer was set
            self._timer = self._loop.call_at(deadline, self._expire)
            return
        self._deadline = 0.0
        if transport.is_closing() or self._busy():
            return
        log.debug("closing a connection whose request head took over %g s", self._guard.header_timeout)
        if self._quiet or not transport.can_write_eof():
            if not self._quiet:
                transport.write(self._guard.reply)
            transport.close()
            return
        # Answer, send FIN, and keep reading (and dropping) for a moment:
        # closing with the client still sending would make the kernel reset
        # the connection, and the client could lose the 408 unread.
        transport.write(self._guard.reply)
        transport.write_eof()
        self._deadline = LINGERING
        self._timer = self._loop.call_later(LINGER_SECONDS, transport.close)

    # ---- asyncio.Protocol, forwarded

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._guard.connections[self._inner] = self
        self._arm()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._deadline <= 0.0:  # not armed
            if self._deadline == LINGERING:  # answered 408: drop the rest
                return
            if not self._busy():
                self._arm()
        self._quiet = False
        self._inner.data_received(data)

    def eof_received(self) -> None:
        # RequestHandler returns None: the transport closes after a half-close.
        self._inner.eof_received()

    def pause_writing(self) -> None:
        # The client has stopped reading what it asked for (a 50 MB file held
        # open for ever): it gets write_timeout seconds to read on.
        if self._stalled is None:
            self._stalled = self._loop.call_later(self._guard.write_timeout, self._write_expired)
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        self._inner.resume_writing()

    def _write_expired(self) -> None:
        self._stalled = None
        transport = self._transport
        if transport is not None and not transport.is_closing():
            log.debug("dropping a connection that read nothing for %g s", self._guard.write_timeout)
            transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        self._deadline = 0.0
        self._transport = None
        self._task = self._payload = None
        self._guard.connections.pop(self._inner, None)
        self._inner.connection_lost(exc)

