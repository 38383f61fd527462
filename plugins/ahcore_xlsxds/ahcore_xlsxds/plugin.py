"""The ahcore plugin module (entry point ``xlsxds`` in the ``ahcore`` group).

Uses only public hooks: ``register_processor`` for ``.xlsxds`` files,
``env_globals`` to give scripts ``data2xlsx`` and ``on_startup`` to check
``plugins.xlsxds`` when the server starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web

from ahcore.api import ProcessorSpec, get_site, hookimpl
from ahcore_xlsxds.export import data2xlsx
from ahcore_xlsxds.processor import PLUGIN_NAME, XlsxdsProcessor, html_enabled


@hookimpl
def register_processor() -> ProcessorSpec:
    """``.xlsxds`` → :class:`XlsxdsProcessor`."""
    return ProcessorSpec(name=PLUGIN_NAME, suffixes=(".xlsxds",), factory=XlsxdsProcessor)


@hookimpl
def on_startup(app: web.Application) -> None:
    """A wrong ``plugins.xlsxds.html`` stops start-up, rather than failing each request."""
    html_enabled(get_site(app))


@hookimpl
def env_globals(app: web.Application) -> Mapping[str, Any]:
    """``data2xlsx`` for scripts, with relative file names under the site's workdir.

    Bound per application (not a module global) so two sites in one process
    write relative exports into their own folders.
    """
    workdir = get_site(app).workdir

    def site_data2xlsx(
        rows: Iterable[Mapping[str, Any] | Sequence[Any]],
        filename: str | os.PathLike[str] | None = None,
        fields: Sequence[str | Mapping[str, Any]] | None = None,
        *,
        sheet_name: str = "Sheet1",
    ) -> bytes | str:
        return data2xlsx(rows, filename, fields, sheet_name=sheet_name, base_dir=workdir)

    site_data2xlsx.__doc__ = data2xlsx.__doc__
    site_data2xlsx.__name__ = site_data2xlsx.__qualname__ = "data2xlsx"
    return {"data2xlsx": site_data2xlsx}
