"""Running a site: one process, or a supervisor with several workers.

With ``--workers N`` (N > 1) a supervisor starts N worker processes that all
bind the same port with ``SO_REUSEPORT`` (the kernel balances connections),
restarts a worker that dies, and on SIGINT/SIGTERM asks each worker to stop.
Every worker shuts down gracefully: it stops accepting, lets in-flight
requests finish (up to ``shutdown_timeout``), runs the cleanup hooks, then
writes the last access-log lines.

Access log: every runner that :func:`start_site` makes writes its access
lines through an :class:`ahcore.accesslog.AccessLog` (batched, to
``logger.logfile`` or stderr; on when the level is ``info`` or more
verbose). SIGHUP makes a serving process reopen that file (the supervisor
passes the signal on to its workers), for logrotate; the site's other log
records go through ``logging``, whose handler reopens a moved file by
itself.

Slow clients: every connection is served through :class:`SlowClientGuard`,
which gives each request head ``website.header_timeout`` seconds (see its
docstring). :func:`start_site` is the one way a site is put on a socket, used
by ``ahcore serve`` and by the in-process test server of ``ahcore.testing``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.handlers
import multiprocessing
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from yarl import URL

from ahcore.accesslog import AccessLog
from ahcore.appkeys import SITE_KEY
from ahcore.background import initialising
from ahcore.config import SiteConfig, load_config

log = logging.getLogger("ahcore.server")

#: After a 408 for a slow head: seconds the connection is kept half-closed,
#: its input read and dropped, before it is closed.
LINGER_SECONDS = 2.0
LINGERING = -1.0  # _GuardedConnection._deadline while lingering

#: Idle time between two requests on a keep-alive connection (aiohttp's
#: ``run_app`` default), for ``ahcore serve`` and the test server alike.
KEEPALIVE_TIMEOUT = 75.0

LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}


@dataclass
class ServeOptions:
    workdir: Path
    host: str | None = None
    port: int | None = None
    workers: int = 1
    debug: bool = False
    shutdown_timeout: float = 30.0
    program_path: Path | None = None
    init: Callable[..., Any] | None = field(default=None, repr=False)
    # name -> importable module path of in-process plugins (embedding); a
    # string so that spawned workers can import it themselves.
    plugin_modules: dict[str, str] = field(default_factory=dict)

    def extra_plugins(self) -> dict[str, object]:
        import importlib

        return {name: importlib.import_module(mod) for name, mod in self.plugin_modules.items()}


#: The logger whose level switches the access log on (INFO) or off.
ACCESS_LOGGER = "ahcore.access"


def configure_logging(config: SiteConfig, debug: bool = False) -> None:
    """Logging from the site's ``logger`` section: level and optional log file.

    The file handler is a ``WatchedFileHandler``: when logrotate moves the
    file it opens the path again at the next record, as the access log does
    on SIGHUP. The level also decides whether access lines are made.
    """
    level = logging.DEBUG if debug else LEVELS.get(config.logger.levelname.lower(), logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.logger.logfile:
        path = Path(config.logger.logfile)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.handlers.WatchedFileHandler(path, encoding="utf-8")]
    logging.basicConfig(
        level=level,
        handlers=handlers,
        format=f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s",
        force=True,
    )


def ssl_context(config: SiteConfig) -> ssl.SSLContext | None:
    if config.website.ssl is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.website.ssl.crtfile, config.website.ssl.keyfile)
    return ctx


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# --------------------------------------------------------------------------
# slow clients


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

    def __init__(self, server: web.Server, header_timeout: float) -> None:
        self.server = server
        self.header_timeout = float(header_timeout)
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
        "_task", "_payload",
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
        self._task = asyncio.current_task()
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
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = 0.0
        self._transport = None
        self._task = self._payload = None
        self._guard.connections.pop(self._inner, None)
        self._inner.connection_lost(exc)


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
    """
    site = app.get(SITE_KEY)
    if header_timeout is None:
        header_timeout = site.config.website.header_timeout if site is not None else 10.0
    access = AccessLog(site.config.logger.logfile if site is not None else None)
    runner_kwargs.setdefault("access_log", logging.getLogger(ACCESS_LOGGER))
    runner_kwargs.setdefault("access_log_class", access.logger_class)
    runner = SiteRunner(
        app,
        access=access,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=keepalive_timeout,
        **runner_kwargs,
    )
    await runner.setup()
    try:
        assert runner.server is not None
        guard = SlowClientGuard(runner.server, header_timeout)
        site_ = GuardedSite(
            runner, guard, host, port, sock=sock, ssl_context=ssl_context, reuse_port=reuse_port
        )
        await site_.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = site_.address
    return RunningSite(
        runner, site_, guard, bound_host, bound_port, "https" if ssl_context else "http"
    )


def run_worker(opts: ServeOptions, reuse_port: bool) -> None:
    """Serve the site in this process until SIGINT/SIGTERM."""
    from ahcore.app import create_app

    _install_uvloop()
    config = load_config(opts.workdir, program_path=opts.program_path)
    configure_logging(config, opts.debug)
    app = create_app(
        opts.workdir,
        config=config,
        debug=opts.debug,
        program_path=opts.program_path,
        extra_plugins=opts.extra_plugins(),
    )
    if opts.init is not None:
        token = initialising.set(app)
        try:
            opts.init(app)
        finally:
            initialising.reset(token)
    host = opts.host or config.website.host
    port = opts.port if opts.port is not None else config.website.port
    sslctx = ssl_context(config)
    scheme = "https" if sslctx else "http"

    async def main() -> None:
        running = await start_site(
            app,
            host,
            port,
            ssl_context=sslctx,
            reuse_port=reuse_port,
            shutdown_timeout=opts.shutdown_timeout,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # logrotate: reopen the access-log file (only here, in the serving process).
        loop.add_signal_handler(signal.SIGHUP, running.access_log.reopen)
        # Printed once this process both answers and handles its signals.
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        print(
            f"ahcore: serving {opts.workdir} on {scheme}://{shown}:{running.port}/ (pid {os.getpid()})",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            # Stop accepting, close idle connections, let in-flight requests
            # finish (up to shutdown_timeout), run the cleanup hooks, then
            # write the last access lines.
            await running.close()
            # On the way out a SIGHUP has nothing to reopen; it must not kill us.
            loop.remove_signal_handler(signal.SIGHUP)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

    asyncio.run(main())


def _worker_entry(opts: ServeOptions) -> None:
    try:
        run_worker(opts, reuse_port=True)
    except KeyboardInterrupt:
        pass


class Supervisor:
    """Starts N workers sharing the port; restarts any that die; stops them on a signal."""

    def __init__(self, opts: ServeOptions) -> None:
        self.opts = opts
        self.ctx = multiprocessing.get_context("spawn")
        self.workers: list[multiprocessing.process.BaseProcess] = []
        self.stopping = False
        self.restarts: list[float] = []

    def spawn(self) -> multiprocessing.process.BaseProcess:
        proc = self.ctx.Process(target=_worker_entry, args=(self.opts,), daemon=False)
        # The new interpreter inherits SIGHUP ignored (a handler would be reset
        # to "terminate" by exec), so a SIGHUP passed on while it starts up
        # cannot kill it; it installs its own handler once it serves.
        previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            proc.start()
        finally:
            signal.signal(signal.SIGHUP, previous)
        return proc

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_hangup)
        self.workers = [self.spawn() for _ in range(self.opts.workers)]
        log.info("supervisor %s started %d workers", os.getpid(), len(self.workers))
        while not self.stopping:
            time.sleep(0.2)
            for i, proc in enumerate(self.workers):
                if proc.is_alive() or self.stopping:
                    continue
                now = time.monotonic()
                self.restarts = [t for t in self.restarts if now - t < 60] + [now]
                if len(self.restarts) > 10 * self.opts.workers:
                    log.error("workers keep dying; giving up")
                    self.stopping = True
                    break
                log.warning("worker %s exited with %s; restarting", proc.pid, proc.exitcode)
                self.workers[i] = self.spawn()
        return self._stop_all()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _on_hangup(self, signum: int, frame: Any) -> None:
        """logrotate signals the supervisor; the workers hold the access-log files."""
        for proc in self.workers:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signal.SIGHUP)

    def _stop_all(self) -> int:
        for proc in self.workers:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.opts.shutdown_timeout + 5
        for proc in self.workers:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        return 0


def serve(opts: ServeOptions) -> int:
    """Validate the site, then serve it with one or several workers."""
    config = load_config(opts.workdir, program_path=opts.program_path)
    configure_logging(config, opts.debug)
    if opts.workers <= 1:
        run_worker(opts, reuse_port=False)
        return 0
    # Build the app once in the supervisor so config/plugin errors stop
    # start-up before any worker is spawned.
    from ahcore.app import create_app

    create_app(
        opts.workdir,
        config=config,
        debug=opts.debug,
        program_path=opts.program_path,
        extra_plugins=opts.extra_plugins(),
    )
    return Supervisor(opts).run()


@dataclass(frozen=True)
class _IgnoreApp:
    """Adapts ahserver's ``init()`` (no argument); picklable for spawned workers."""

    init: Callable[[], Any]

    def __call__(self, app: web.Application) -> Any:
        return self.init()


def webapp(
    init: Callable[..., Any] | None = None,
    argv: list[str] | None = None,
    plugins: dict[str, str] | None = None,
) -> None:
    """Embed ahcore as ahserver's ``webapp(init)`` did: parse ``-w``/``-p``, run ``init``, serve.

    ``init`` is called in each worker with the application before it starts
    (ahserver's ``init()`` with no argument is accepted too), so it can bind
    events or add start-up tasks with ``app.on_startup``. ``plugins`` maps
    plugin names to importable module paths for plugins that are not
    installed as distributions; the site config must still enable them.
    """
    parser = argparse.ArgumentParser(description="ahcore site")
    parser.add_argument("-w", "--workdir", default=os.getcwd())
    parser.add_argument("-p", "--port", type=int)
    parser.add_argument("--host")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    wrapped = None
    if init is not None:
        import inspect

        takes_app = bool(inspect.signature(init).parameters)
        wrapped = init if takes_app else _IgnoreApp(init)
    program = Path(sys.argv[0]).resolve().parent if sys.argv and sys.argv[0] else None
    from ahcore.config import ConfigError
    from ahcore.plugins import PluginError

    try:
        code = serve(
            ServeOptions(
                Path(args.workdir).resolve(),
                host=args.host,
                port=args.port,
                workers=args.workers,
                debug=args.debug,
                program_path=program,
                init=wrapped,
                plugin_modules=dict(plugins or {}),
            )
        )
    except (ConfigError, PluginError) as exc:
        print("ahcore: cannot start:\n" + "\n".join(f"  - {p}" for p in exc.problems), file=sys.stderr)
        code = 2
    sys.exit(code)
