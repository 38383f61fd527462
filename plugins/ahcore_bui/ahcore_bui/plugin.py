"""The ahcore plugin objects of ahcore-bui (entry points ``bui`` and ``app``).

One module, two plugins: pluggy registers an object once, so each processor
has its own plugin object, and a site enables either or both by naming the
processor in ``website.processors`` (``[".ui", "bui"]``) or in ``plugins``.
Only public hooks are used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ahcore_tmpl import environment_for
from aiohttp import web

from ahcore.api import Processor, ProcessorSpec, SiteView, get_site, hookimpl
from ahcore_bui.processor import (
    METHODS,
    BricksAppProcessor,
    BricksUIProcessor,
    missing_layouts,
)

ProcessorFactory = Callable[[Path, SiteView], Processor]

log = logging.getLogger(__name__)


class BricksPlugin:
    """One bricks processor as a plugin: its spec, and a start-up check of its layout files."""

    def __init__(
        self,
        name: str,
        suffixes: tuple[str, ...],
        factory: ProcessorFactory,
        layouts: tuple[str, ...],
    ) -> None:
        self.name = name
        self.suffixes = suffixes
        self.factory = factory
        self.layouts = layouts

    @hookimpl
    def register_processor(self) -> ProcessorSpec:
        """Declare the processor; ``website.processors`` decides its suffixes on real sites."""
        return ProcessorSpec(
            name=self.name, suffixes=self.suffixes, factory=self.factory, methods=METHODS
        )

    @hookimpl
    def on_startup(self, app: web.Application) -> None:
        """Warn once at start about layout files the site lacks (their pages would answer 500).

        Also makes sure the site's template environment exists before the
        app runs, for a site that enables ``bui`` without ``tmpl``.
        """
        site = get_site(app)
        environment_for(site)
        for url, why in missing_layouts(site, self.layouts).items():
            log.warning(
                "%s pages cannot be wrapped until %s is there: %s (requests get 500)",
                self.name,
                url,
                why,
            )

    def __repr__(self) -> str:
        return f"<ahcore-bui plugin {self.name!r}>"


bui_plugin = BricksPlugin("bui", (".ui",), BricksUIProcessor, BricksUIProcessor.layouts)
app_plugin = BricksPlugin("app", (".app",), BricksAppProcessor, BricksAppProcessor.layouts)
