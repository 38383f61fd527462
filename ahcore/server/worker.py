"""One serving process: build the site's application, put it on its socket, serve.

:func:`run_worker` is ``ahcore serve`` with one worker, and each worker of
the supervisor. Every way it can fail before it serves is a
:class:`~ahcore.server.startup.StartupError` (or the config's and plugins'
own errors), never a traceback. SIGHUP makes a serving process reopen its
access-log file (logrotate).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

from ahcore.background import initialising
from ahcore.config import ConfigError, load_config
from ahcore.plugins import PluginError
from ahcore.server.livereload import install_livereload
from ahcore.server.logs import configure_logging
from ahcore.server.options import ServeOptions
from ahcore.server.runner import RunningSite, start_site
from ahcore.server.startup import StartupError, hook_problem, ssl_context

log = logging.getLogger("ahcore.server")


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_worker(
    opts: ServeOptions, reuse_port: bool, ready: Callable[[], None] | None = None
) -> None:
    """Serve the site in this process until SIGINT/SIGTERM; ``ready()`` once it serves."""
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
    if opts.livereload:
        install_livereload(app)
    if opts.init is not None:
        token = initialising.set(app)
        try:
            opts.init(app)
        except (ConfigError, PluginError, StartupError):
            raise
        except Exception as exc:
            if opts.debug:
                log.exception("init(app) failed")
            raise StartupError(hook_problem(exc)) from exc
        finally:
            initialising.reset(token)
    host = opts.host or config.website.host
    port = opts.port if opts.port is not None else config.website.port
    sslctx = ssl_context(config)
    scheme = "https" if sslctx else "http"

    async def listen() -> RunningSite:
        try:
            return await start_site(
                app,
                host,
                port,
                ssl_context=sslctx,
                reuse_port=reuse_port,
                shutdown_timeout=opts.shutdown_timeout,
            )
        except (ConfigError, PluginError, StartupError):
            raise  # a socket that cannot listen is a StartupError of start_site
        except Exception as exc:
            if opts.debug:
                log.exception("start-up failed")
            raise StartupError(hook_problem(exc)) from exc

    async def main() -> None:
        running = await listen()
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
        if ready is not None:
            ready()
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
