"""Running a site: one process, a supervisor of workers, or the ``--dev`` parent.

The package, one module per job:

- :mod:`~ahcore.server.options` — :class:`ServeOptions` and the serve
  flags, defined once for ``ahcore serve`` and ``webapp()``;
- :mod:`~ahcore.server.startup` — :class:`StartupError`: every failure to
  start as one line saying what to do;
- :mod:`~ahcore.server.guard` — :class:`SlowClientGuard`, the deadline on
  each request head;
- :mod:`~ahcore.server.runner` — :func:`start_site`, the one way a site is
  put on a socket (``ahcore serve`` and :mod:`ahcore.testing` alike);
- :mod:`~ahcore.server.logs` — :func:`configure_logging` from the site's
  ``logger`` section;
- :mod:`~ahcore.server.worker` — :func:`run_worker`, one serving process;
- :mod:`~ahcore.server.supervisor` — :class:`Supervisor` of ``--workers N``
  and :func:`serve`, which picks how to run;
- :mod:`~ahcore.server.dev` and :mod:`~ahcore.server.livereload` —
  ``ahcore serve --dev``;
- :mod:`~ahcore.server.embed` — :func:`webapp`, ahserver's embedding.

Access log: every runner that :func:`start_site` makes writes its access
lines through an :class:`ahcore.accesslog.AccessLog`; SIGHUP makes a
serving process reopen that file (the supervisor passes the signal on to
its workers), for logrotate.
"""

from __future__ import annotations

from ahcore.server.embed import webapp
from ahcore.server.guard import LINGER_SECONDS, SlowClientGuard
from ahcore.server.logs import ACCESS_LOGGER, LEVELS, configure_logging
from ahcore.server.options import ServeOptions, add_serve_arguments, options_from_args
from ahcore.server.runner import KEEPALIVE_TIMEOUT, GuardedSite, RunningSite, SiteRunner, start_site
from ahcore.server.startup import StartupError, cannot_start, ssl_context
from ahcore.server.supervisor import Supervisor, serve, serve_main
from ahcore.server.worker import run_worker

__all__ = [
    "ACCESS_LOGGER",
    "KEEPALIVE_TIMEOUT",
    "LEVELS",
    "LINGER_SECONDS",
    "GuardedSite",
    "RunningSite",
    "ServeOptions",
    "SiteRunner",
    "SlowClientGuard",
    "StartupError",
    "Supervisor",
    "add_serve_arguments",
    "cannot_start",
    "configure_logging",
    "options_from_args",
    "run_worker",
    "serve",
    "serve_main",
    "ssl_context",
    "start_site",
    "webapp",
]
