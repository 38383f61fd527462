"""Logging of a serving process: the site's ``logger`` section applied."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

from aiohttp.http_exceptions import HttpProcessingError

from ahcore.config import SiteConfig

LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}

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


class MalformedRequestFilter(logging.Filter):
    """aiohttp's "Error handling request" for a request its parser refused: one debug line.

    aiohttp answers a malformed request (a duplicate ``Content-Length``,
    ``Transfer-Encoding`` with ``Content-Length``, an obs-fold, a missing
    ``Host`` …) with a 400 itself and logs it as an *error* with a full
    traceback: anyone could fill the site's log with them. The 400 is the
    client's fault and already answered: the record becomes a one-line
    ``debug`` (dropped unless the logger shows debug). Errors of the server
    (a 5xx, anything that is not the parser's) are left as they are.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or (exc.code or 400) >= 500:
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.msg = f"{record.getMessage()}: {exc.code} {exc.message}"
        record.args = ()
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def quiet_malformed_requests(logger: logging.Logger) -> None:
    """Give ``logger`` (aiohttp's ``aiohttp.server``) one :class:`MalformedRequestFilter`."""
    if not any(isinstance(f, MalformedRequestFilter) for f in logger.filters):
        logger.addFilter(MalformedRequestFilter())

