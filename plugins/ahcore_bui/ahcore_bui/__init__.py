"""ahcore-bui: bricks UI pages for ahcore — ahserver's ``bui`` and ``app`` processors.

The plugin objects are in :mod:`ahcore_bui.plugin` (entry points ``bui`` and ``app``).
"""

from __future__ import annotations

from ahcore_bui.processor import (
    APP_LAYOUT,
    APP_MARKER,
    FOOTER,
    HEADER,
    METHODS,
    BricksAppProcessor,
    BricksPage,
    BricksUIProcessor,
    missing_layouts,
    wants_bare,
)

__all__ = [
    "APP_LAYOUT",
    "APP_MARKER",
    "FOOTER",
    "HEADER",
    "METHODS",
    "BricksAppProcessor",
    "BricksPage",
    "BricksUIProcessor",
    "missing_layouts",
    "wants_bare",
]
