"""Putting a site on a socket: :func:`start_site`, the one way a site is served.

``ahcore serve`` (each worker) and the in-process test server of
:mod:`ahcore.testing` both call :func:`start_site`: aiohttp's runner, the
slow-client guard on every connection, and the access log written out last.

Access log: every runner that :func:`start_site` makes writes its access
lines through an :class:`ahcore.accesslog.AccessLog` (batched, to
``logger.logfile`` or stderr; on when the level is ``info`` or more
verbose).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from yarl import URL

from ahcore.accesslog import AccessLog
from ahcore.appkeys import SITE_KEY
from ahcore.server.guard import SlowClientGuard
from ahcore.server.logs import ACCESS_LOGGER, quiet_malformed_requests
from ahcore.server.startup import StartupError, bind_problem

#: Idle time between two requests on a keep-alive connection (aiohttp's
#: ``run_app`` default), for ``ahcore serve`` and the test server alike.
KEEPALIVE_TIMEOUT = 75.0


class GuardedSite(web.BaseSite):
    """A listening socket (host/port or an existing ``sock``) served through a guard."""

    __slots__ = ("_guard", "_host", "_port", "_sock", "_reuse_port", "_bound")

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: SlowClientGuard,
        host: str | None = None,
        port: int = 0,
        *,
        sock: socket.socket | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        reuse_port: bool | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._guard = guard
        self._host = host
        self._port = port
        self._sock = sock
        self._reuse_port = reuse_port
        self._bound: tuple[str, int] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port), after :meth:`start`."""
        assert self._bound is not None, "site not started"
        return self._bound

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        host, port = self._bound or (self._host or "0.0.0.0", self._port)
        return str(URL.build(scheme=scheme, host=host, port=port))

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        extra: dict[str, Any] = {}
        if self._ssl_context is not None:
            # A TLS handshake is part of the head: same limit.
            extra["ssl_handshake_timeout"] = self._guard.header_timeout
        if self._sock is not None:
            server = await loop.create_server(
                self._guard, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog, **extra
            )
        else:
            server = await loop.create_server(
                self._guard,
                self._host,
                self._port,
                ssl=self._ssl_context,
                backlog=self._backlog,
                reuse_port=self._reuse_port,
                **extra,
            )
        self._server = server
        self._bound = server.sockets[0].getsockname()[:2]


class SiteRunner(web.AppRunner):
    """aiohttp's ``AppRunner`` that writes out its access log last, whatever happens in cleanup.

    aiohttp's ``cleanup`` stops the sites, lets in-flight requests finish
    (each logs its line as it ends), then runs the app's cleanup hooks; the
    access log is flushed and closed after all of that, even when a hook
    raises, so no line of a graceful stop is lost.
    """

    __slots__ = ("access",)

    def __init__(self, app: web.Application, *, access: AccessLog, **kwargs: Any) -> None:
        # ``access_log=`` stays aiohttp's: the logger whose level turns lines on.
        super().__init__(app, **kwargs)
        self.access = access

    async def cleanup(self) -> None:
        try:
            await super().cleanup()
        finally:
            self.access.close()


@dataclass
class RunningSite:
    """A started site: ``host``/``port`` as bound; ``await close()`` shuts it down gracefully."""

    runner: SiteRunner
    site: GuardedSite
    guard: SlowClientGuard
    host: str
    port: int
    scheme: str

    @property
    def access_log(self) -> AccessLog:
        """Where this site's access lines go (``reopen()`` it after a log rotation)."""
        return self.runner.access

    @property
    def app(self) -> web.Application:
        return self.runner.app

    @property
    def url(self) -> URL:
        return URL.build(scheme=self.scheme, host=self.host, port=self.port)

    async def close(self) -> None:
        """Stop accepting, let in-flight requests finish, run the cleanup hooks."""
        await self.runner.cleanup()


async def start_site(
    app: web.Application,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    sock: socket.socket | None = None,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool | None = None,
    shutdown_timeout: float = 60.0,
    header_timeout: float | None = None,
    keepalive_timeout: float = KEEPALIVE_TIMEOUT,
    **runner_kwargs: Any,
) -> RunningSite:
    """Start ``app`` (startup hooks included) on a socket behind a :class:`SlowClientGuard`.

    The one function that serves a site: ``ahcore serve`` and the test
    server of :mod:`ahcore.testing` both call it. ``header_timeout``
    defaults to the site's ``website.header_timeout``; ``runner_kwargs``
    go to :class:`aiohttp.web.AppRunner` (``handler_cancellation=``, ...).

    Access lines go through an :class:`~ahcore.accesslog.AccessLog` to the
    site's ``logger.logfile`` (stderr without one) when the
    ``ahcore.access`` logger lets INFO through, which
    :func:`configure_logging` decides from ``logger.levelname``.
    ``access_log=None`` switches them off; ``access_log_class=`` replaces
    the batched logger with another (aiohttp's, say).

    A socket that cannot listen (port in use, privileged, an address not
    on this machine) raises :class:`~ahcore.server.startup.StartupError`
    saying what to do, after the application's cleanup hooks ran.
    """
    site = app.get(SITE_KEY)
    if header_timeout is None:
        header_timeout = site.config.website.header_timeout if site is not None else 10.0
    access = AccessLog(site.config.logger.logfile if site is not None else None)
    runner_kwargs.setdefault("access_log", logging.getLogger(ACCESS_LOGGER))
    runner_kwargs.setdefault("access_log_class", access.logger_class)
    # A malformed request is the client's 400, not a traceback in the site's log.
    quiet_malformed_requests(logging.getLogger("aiohttp.server"))
    runner = SiteRunner(
        app,
        access=access,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=keepalive_timeout,
        **runner_kwargs,
    )
    try:
        # Inside the try: a start-up hook that raises leaves some cleanup
        # contexts entered (pools, sessions); runner.cleanup unwinds exactly
        # those, as aiohttp's run_app does, and writes out the access log.
        await runner.setup()
        assert runner.server is not None
        guard = SlowClientGuard(
            runner.server,
            header_timeout,
            site.config.website.request_timeout if site is not None else 60.0,
        )
        site_ = GuardedSite(
            runner, guard, host, port, sock=sock, ssl_context=ssl_context, reuse_port=reuse_port
        )
        try:
            await site_.start()
        except (OSError, OverflowError) as exc:
            raise StartupError(bind_problem(exc, host, port)) from exc
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = site_.address
    return RunningSite(
        runner, site_, guard, bound_host, bound_port, "https" if ssl_context else "http"
    )

