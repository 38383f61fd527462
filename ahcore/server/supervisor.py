"""Several workers on one port, and :func:`serve`, which picks how to run.

With ``--workers N`` (N > 1) a supervisor starts N worker processes that all
bind the same port with ``SO_REUSEPORT`` (the kernel balances connections),
restarts a worker that dies while serving, and on SIGINT/SIGTERM asks each
worker to stop. Every worker shuts down gracefully: it stops accepting,
lets in-flight requests finish (up to ``shutdown_timeout``), runs the
cleanup hooks, then writes the last access-log lines. SIGHUP is passed on
to the workers (they hold the access-log files).

Start-up is checked before and while the workers start: the supervisor
builds the application once (config and plugin errors), loads the TLS
certificate and probes the port, and each worker reports on a queue that
it serves or why it could not start. A worker that dies before it served
is a start-up failure: the supervisor stops the others and raises
:class:`~ahcore.server.startup.StartupError` with the worker's one line,
rather than respawning it for ever.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import sys
import time
from typing import Any

from ahcore.config import ConfigError, load_config
from ahcore.plugins import PluginError
from ahcore.server.logs import configure_logging
from ahcore.server.options import ServeOptions
from ahcore.server.startup import StartupError, cannot_start, probe_port, ssl_context
from ahcore.server.worker import run_worker

log = logging.getLogger("ahcore.server")

#: Seconds a worker has to report that it serves (building the application
#: included) before the supervisor gives up on it.
START_TIMEOUT = 60.0

# What a worker tells the supervisor: ("ready" | "failed", pid, problems, exit code).
Report = tuple[str, int, list[str], int]


def _worker_entry(opts: ServeOptions, reports: Any) -> None:
    pid = os.getpid()
    try:
        run_worker(opts, reuse_port=True, ready=lambda: reports.put(("ready", pid, [], 0)))
    except KeyboardInterrupt:
        pass
    except (ConfigError, PluginError) as exc:
        reports.put(("failed", pid, exc.problems, 2))
        sys.exit(2)
    except StartupError as exc:
        reports.put(("failed", pid, exc.problems, 1))
        sys.exit(1)


class Supervisor:
    """Starts N workers sharing the port; restarts any that die; stops them on a signal."""

    def __init__(self, opts: ServeOptions) -> None:
        self.opts = opts
        self.ctx = multiprocessing.get_context("spawn")
        self.reports = self.ctx.Queue()
        self.workers: list[multiprocessing.process.BaseProcess] = []
        self.started: dict[int, float] = {}  # pid -> when spawned, until it reports ready
        self.serving: set[int] = set()
        self.stopping = False
        self.restarts: list[float] = []
        self.failure: StartupError | ConfigError | PluginError | None = None

    def spawn(self) -> multiprocessing.process.BaseProcess:
        proc = self.ctx.Process(target=_worker_entry, args=(self.opts, self.reports), daemon=False)
        # The new interpreter inherits SIGHUP ignored (a handler would be reset
        # to "terminate" by exec), so a SIGHUP passed on while it starts up
        # cannot kill it; it installs its own handler once it serves.
        previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            proc.start()
        finally:
            signal.signal(signal.SIGHUP, previous)
        if proc.pid is not None:
            self.started[proc.pid] = time.monotonic()
        return proc

    def run(self) -> int:
        """Serve until a signal; raise the first start-up failure of a worker."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_hangup)
        self.workers = [self.spawn() for _ in range(self.opts.workers)]
        log.info("supervisor %s started %d workers", os.getpid(), len(self.workers))
        code = 0
        while not self.stopping:
            self._read_reports(0.2)
            if self.stopping:
                break
            code = self._look_after_workers()
        code = max(code, self._stop_all())
        if self.failure is not None:
            raise self.failure
        return code

    def _read_reports(self, timeout: float) -> None:
        try:
            report: Report = self.reports.get(timeout=timeout)
        except (queue.Empty, InterruptedError):
            return
        while True:
            kind, pid, problems, status = report
            self.started.pop(pid, None)
            if kind == "ready":
                self.serving.add(pid)
            elif self.failure is None:
                self._fail(problems, status)
            try:
                report = self.reports.get_nowait()
            except queue.Empty:
                return

    def _fail(self, problems: list[str], status: int) -> None:
        self.failure = ConfigError(problems) if status == 2 else StartupError(problems)
        self.stopping = True

    def _look_after_workers(self) -> int:
        now = time.monotonic()
        for i, proc in enumerate(self.workers):
            pid = proc.pid or 0
            if proc.is_alive():
                since = self.started.get(pid)
                if since is not None and now - since > START_TIMEOUT:
                    self._fail([f"a worker did not start serving within {START_TIMEOUT:g} s"], 1)
                    return 1
                continue
            if pid not in self.serving:
                # Died before it served: its report may still be on its way.
                self._read_reports(1.0)
                if self.failure is None:
                    self._fail(
                        [f"a worker exited with status {proc.exitcode} while starting "
                         "(serve with --debug for more)"],
                        1,
                    )
                return 1
            self.serving.discard(pid)
            self.restarts = [t for t in self.restarts if now - t < 60] + [now]
            if len(self.restarts) > 10 * self.opts.workers:
                log.error("workers keep dying; giving up")
                self.stopping = True
                return 1
            log.warning("worker %s exited with %s; restarting", proc.pid, proc.exitcode)
            self.workers[i] = self.spawn()
        return 0

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
    """Serve the site: under the ``--dev`` parent, in this process, or with workers.

    Raises :class:`ConfigError`, :class:`PluginError` or
    :class:`StartupError` when the site cannot start.
    """
    if opts.dev:
        from ahcore.server.dev import run_dev

        return run_dev(opts)
    config = load_config(opts.workdir, program_path=opts.program_path)
    configure_logging(config, opts.debug)
    if opts.workers <= 1:
        run_worker(opts, reuse_port=False)
        return 0
    # Build the app once in the supervisor so config/plugin errors stop
    # start-up before any worker is spawned; then the certificate and the port.
    from ahcore.app import create_app

    create_app(
        opts.workdir,
        config=config,
        debug=opts.debug,
        program_path=opts.program_path,
        extra_plugins=opts.extra_plugins(),
    )
    ssl_context(config)
    probe_port(opts.host or config.website.host, opts.port if opts.port is not None else config.website.port)
    return Supervisor(opts).run()


def serve_main(opts: ServeOptions) -> int:
    """:func:`serve`, with a failure to start printed as one line: the exit status.

    1 for a :class:`StartupError` (the port, the certificate, a start-up
    hook), 2 for an invalid config or plugin, 130 for Ctrl-C during start-up.
    """
    try:
        return serve(opts)
    except (ConfigError, PluginError) as exc:
        print(cannot_start(exc.problems), file=sys.stderr)
        return 2
    except StartupError as exc:
        print(cannot_start(exc.problems), file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while it was still starting
        return 130
