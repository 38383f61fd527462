"""Running a site: one process, or a supervisor with several workers.

With ``--workers N`` (N > 1) a supervisor starts N worker processes that all
bind the same port with ``SO_REUSEPORT`` (the kernel balances connections),
restarts a worker that dies, and on SIGINT/SIGTERM asks each worker to stop.
Every worker shuts down gracefully: it stops accepting, lets in-flight
requests finish (up to ``shutdown_timeout``), then runs the cleanup hooks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import signal
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from ahcore.background import initialising
from ahcore.config import SiteConfig, load_config

log = logging.getLogger("ahcore.server")

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


def configure_logging(config: SiteConfig, debug: bool = False) -> None:
    """Logging from the site's ``logger`` section: level and optional log file."""
    level = logging.DEBUG if debug else LEVELS.get(config.logger.levelname.lower(), logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.logger.logfile:
        path = Path(config.logger.logfile)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(path, encoding="utf-8")]
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

    def announce(_message: str) -> None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        print(
            f"ahcore: serving {opts.workdir} on {scheme}://{shown}:{port}/ (pid {os.getpid()})",
            flush=True,
        )

    web.run_app(
        app,
        host=host,
        port=port,
        ssl_context=sslctx,
        reuse_port=reuse_port,
        shutdown_timeout=opts.shutdown_timeout,
        print=announce,
        access_log=logging.getLogger("ahcore.access"),
        handle_signals=True,
    )


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
        proc.start()
        return proc

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
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
