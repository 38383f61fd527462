"""The ``ws`` processor: a websocket endpoint whose script runs once per message.

A ``.ws`` file is compiled like a ``.dspy`` file (the body of an async
function, its own line numbers) by ahcore-dspy's public
:func:`ahcore_dspy.compile_script`. The kernel serves the handshake like
any request: forwarded headers, session, ``auth_check`` on the file's URL,
URL → file. :meth:`WsProcessor.respond` then refuses what a browser must
not be able to do (a handshake from another origin), upgrades, and runs the
script for every text message the client sends.

Per connection, never shared: the namespace (built once from the
handshake's context, so ``get_user()``, ``params_kw`` and ``request`` are
the handshake's), :class:`~ahcore_ws.pool.WsPool`, and the script's globals
— a ``global`` name set by one message is seen by the next message of the
same connection only, as in ahserver. The processor object itself holds
the compiled code and nothing about a connection.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import secrets
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ahcore_dspy import compile_script
from aiohttp import WSMsgType, web

from ahcore.api import Problem, Processor, RequestContext, SiteView, request_scheme
from ahcore_ws.pool import HEARTBEAT_TEXT, WsPool, WsRegistry, ws_send
from ahcore_ws.settings import WsSettings, origin_key

log = logging.getLogger(__name__)

#: The only method a websocket handshake uses (RFC 6455 §4.1).
METHODS = ("GET",)

#: Close code and reason sent to every client when the server stops.
GOING_AWAY_REASON = b"server shutting down"


@dataclass(eq=False)  # kept in a set by identity
class Connection:
    """One open connection: what shutdown needs to close it and stop its script."""

    ws: web.WebSocketResponse
    task: asyncio.Task[Any] | None
    in_script: bool = False


@dataclass
class WsState:
    """Everything of the plugin that lives on one application (under :data:`STATE`)."""

    settings: WsSettings
    registry: WsRegistry = field(default_factory=WsRegistry)
    connections: set[Connection] = field(default_factory=set)
    closing: bool = False


#: Where the plugin keeps an application's :class:`WsState`.
STATE: web.AppKey[WsState] = web.AppKey("ahcore_ws.state", WsState)


class ScriptBroken(Exception):
    """A ``.ws`` file that does not compile: every handshake gets a 500 until it changes."""


class NotCallable(Exception):
    """``path_call`` on a ``.ws`` file: it answers websocket handshakes only."""


def _own_origin(request: web.Request) -> tuple[str, str, int] | None:
    """The site's origin as this client reached it (trusted forwarded headers applied)."""
    return origin_key(f"{request_scheme(request)}://{request.host}")


def cross_origin_refusal(request: web.Request, settings: WsSettings) -> str | None:
    """Why a handshake from a page of another origin is refused, or None.

    Browsers always send ``Origin`` on a websocket handshake and attach the
    site's cookies (and cached HTTP credentials) whatever the page, and
    SameSite does not cover every websocket case: any page could otherwise
    talk to a script as the logged-in visitor. A handshake without ``Origin``
    is not a browser's and passes, like the kernel's CSRF check.
    """
    origin = request.headers.get("Origin")
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if origin is None:
        if fetch_site == "cross-site":
            return "cross-site websocket handshake refused (Sec-Fetch-Site)"
        return None
    key = origin_key(origin)
    if key is not None and (key == _own_origin(request) or key in settings.allowed_origins):
        return None
    return "cross-origin websocket handshake refused (Origin is not this site)"


def _script_line(exc: BaseException, filename: str) -> int | None:
    """The line of ``filename`` deepest in ``exc``'s traceback (where the script failed)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line


class WsProcessor(Processor):
    """A ``.ws`` file: compiled once per change, run once per received text message."""

    def __init__(self, path: Path, site: SiteView) -> None:
        super().__init__(path, site)
        self.code: types.CodeType | None = None
        self.error_line: int | None = None
        self.error_message = ""
        self.error: str | None = None

    async def load(self) -> None:
        """Read and compile the file (once per change); a syntax error is logged once."""
        try:
            raw = self.path.read_bytes()
            source = raw.decode(self.site.config.website.coding).removeprefix("\ufeff")
            self.code = compile_script(source, str(self.path))
        except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
            line = getattr(exc, "lineno", None)
            message = getattr(exc, "msg", None) or str(exc)
            where = f"{self.path}, line {line}" if line else str(self.path)
            self.error = f"cannot compile {where}: {message}"
            self.error_line, self.error_message = line, str(message)
            log.error("%s", self.error)

    async def check(self) -> list[Problem]:
        """The compile error with its line, for ``ahcore check``."""
        if self.error is None:
            return []
        return [
            Problem(
                f"does not compile: {self.error_message.rstrip('.')}; fix it (until then "
                "it cannot be used)",
                self.path,
                self.error_line,
            )
        ]

    async def produce(self, context: RequestContext) -> Any:
        raise NotCallable(
            f"{self.path}: a .ws file answers websocket handshakes; path_call cannot run it"
        )

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        request = context.request
        if request.method not in METHODS:
            raise web.HTTPMethodNotAllowed(
                request.method,
                METHODS,
                text=f"405: {request.method} not allowed: this URL is a websocket endpoint\n",
            )
        if self.code is None:
            raise ScriptBroken(self.error)
        app = self.site.app
        assert app is not None
        state = app[STATE]
        reason = cross_origin_refusal(request, state.settings)
        if reason is not None:
            log.warning("%s: %s (Origin %r)", context.url, reason, request.headers.get("Origin"))
            raise web.HTTPForbidden(text=f"403: {reason}\n")
        if state.closing:
            raise web.HTTPServiceUnavailable(text="503: the server is shutting down\n")

        ws = web.WebSocketResponse(
            # aiohttp refuses an uncompressed message of max_msg_size bytes
            # (a compressed one only above it): +1 makes the setting inclusive.
            max_msg_size=state.settings.max_message_size + 1,
            heartbeat=state.settings.heartbeat,
        )
        if not ws.can_prepare(request).ok:
            raise web.HTTPUpgradeRequired(
                headers={"Upgrade": "websocket"},
                text="426: this URL is a websocket endpoint: connect with a websocket client\n",
            )
        # Built before the upgrade, from the handshake: params_kw holds its query.
        namespace = await context.namespace()
        namespace.setdefault("__builtins__", builtins)
        pool = WsPool(ws, request.remote, state.registry.data(context.url))
        namespace["ws"] = ws
        namespace["ws_pool"] = pool
        namespace["ws_send"] = _bound_sender(ws)

        await ws.prepare(request)
        connection = Connection(ws, asyncio.current_task())
        state.connections.add(connection)
        try:
            await self._serve(context, ws, namespace, connection)
        finally:
            state.connections.discard(connection)
            pool.delete_me()
            if not ws.closed:
                await ws.close()
        return ws

    async def _serve(
        self,
        context: RequestContext,
        ws: web.WebSocketResponse,
        namespace: dict[str, Any],
        connection: Connection,
    ) -> None:
        """Read messages until the client (or the server's shutdown) closes the connection."""
        assert self.code is not None
        count = 0
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                count += 1
                if msg.data == HEARTBEAT_TEXT:
                    await ws_send(ws, HEARTBEAT_TEXT)
                    continue
                namespace["ws_data"] = msg.data
                connection.in_script = True
                try:
                    await types.FunctionType(self.code, namespace)()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self._report(context, ws, exc, count)
                finally:
                    connection.in_script = False
            elif msg.type is WSMsgType.BINARY:
                await _send_error(
                    ws, {"status": 415, "message": "binary messages are not accepted"}
                )
            elif msg.type is WSMsgType.ERROR:
                # Too large a message (aiohttp has closed with 1009) or a broken frame.
                log.info("%s: websocket closed: %s", context.url, ws.exception())
                break

    async def _report(
        self, context: RequestContext, ws: web.WebSocketResponse, exc: Exception, count: int
    ) -> None:
        """Log a failed message with file and line; tell the client without a traceback."""
        if isinstance(
            exc, web.HTTPException
        ):  # server_error(403) and the like: meant for the client
            await _send_error(
                ws, {"status": exc.status, "message": (exc.text or exc.reason).strip()}
            )
            return
        error_id = secrets.token_hex(6)
        line = _script_line(exc, str(self.path))
        where = f"{self.path}, line {line}" if line else str(self.path)
        log.error(
            "error %s in %s (message %d on %s):\n%s",
            error_id,
            where,
            count,
            context.url,
            "".join(traceback.format_exception(exc)),
        )
        error: dict[str, Any] = {
            "status": 500,
            "message": f"internal error (error id {error_id})",
            "id": error_id,
        }
        if self.site.debug:
            error["detail"] = "".join(traceback.format_exception_only(exc)).strip()
        await _send_error(ws, error)


async def _send_error(ws: web.WebSocketResponse, error: dict[str, Any]) -> None:
    """``{"type": "error", "error": {...}}``: a message the client can tell from data."""
    try:
        await ws.send_json({"type": "error", "error": error})
    except (ConnectionError, RuntimeError):
        pass


def _bound_sender(own: web.WebSocketResponse) -> Any:
    """``ws_send`` for one connection: ``ws_send(ws, data)`` as in ahserver, or ``ws_send(data)``."""
    missing = object()

    async def ws_send_bound(ws_or_data: Any, data: Any = missing) -> bool | None:
        if data is missing:
            return await ws_send(own, ws_or_data)
        return await ws_send(ws_or_data, data)

    ws_send_bound.__name__ = "ws_send"
    ws_send_bound.__doc__ = ws_send.__doc__
    return ws_send_bound


async def close_all(app: web.Application) -> None:
    """Close every open connection with 1001 (going away); stop scripts still running.

    Runs on aiohttp's ``on_shutdown`` signal, before the server waits for
    handlers to finish: without it an open websocket would hold shutdown for
    the whole ``shutdown_timeout`` and then be cut without a close frame.
    """
    state = app.get(STATE)
    if state is None:
        return
    state.closing = True
    connections = list(state.connections)
    if not connections:
        return
    await asyncio.gather(
        *(c.ws.close(code=1001, message=GOING_AWAY_REASON) for c in connections if not c.ws.closed),
        return_exceptions=True,
    )
    for c in connections:
        # A script looping on ws_send() would run on after the close.
        if c.in_script and c.task is not None and not c.task.done():
            c.task.cancel()
