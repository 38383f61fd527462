"""Where a Site hangs off its aiohttp application: the key and its getter.

A module of its own, importing nothing of the kernel at run time, so that
every part of the kernel can find the site of an application without
importing :mod:`ahcore.site` (which imports most of the kernel): that keeps
the kernel's import graph free of cycles (checked by import-linter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ahcore.site import Site

SITE_KEY: web.AppKey[Site] = web.AppKey("ahcore.site", t=object)  # type: ignore[arg-type]


def get_site(app: web.Application) -> Site:
    """The :class:`~ahcore.site.Site` of an ahcore application."""
    return app[SITE_KEY]
