"""Logging of a serving process: the site's ``logger`` section applied."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

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

