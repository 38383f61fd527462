"""The ahcore plugin module (entry point ``xlsxds`` in the ``ahcore`` group).

Uses only public hooks: ``register_processor`` for ``.xlsxds`` files,
``env_globals`` to give scripts ``data2xlsx`` and ``xlsxdata``, and
``on_startup`` to check ``plugins.xlsxds`` when the server starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web

from ahcore.api import FileOutZone, ProcessorSpec, SiteFileNotFound, SiteView, get_site, hookimpl
from ahcore_xlsxds.export import data2xlsx
from ahcore_xlsxds.processor import (
    PLUGIN_NAME,
    XlsxdsProcessor,
    html_enabled,
    settings_problems,
)
from ahcore_xlsxds.xlsxdata import XLSXData


@hookimpl
def register_processor() -> ProcessorSpec:
    """``.xlsxds`` → :class:`XlsxdsProcessor`."""
    return ProcessorSpec(
        name=PLUGIN_NAME, suffixes=(".xlsxds",), factory=XlsxdsProcessor, data=True
    )


@hookimpl
def check_settings(settings: Mapping[str, Any]) -> list[str]:
    """``plugins.xlsxds``: ``html``, ``max_rows``, ``default_rows``."""
    return settings_problems(settings)


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

    site = get_site(app)

    def xlsxdata(path: str | os.PathLike[str], desc: Mapping[str, Any]) -> XLSXData:
        """ahserver's ``xlsxdata(path, desc)`` (:class:`ahcore_xlsxds.xlsxdata.XLSXData`).

        ``path`` is relative to the site's work directory, or absolute (what
        ``abspath(url)`` gives); it must lie in the work directory or a
        content root: else :class:`FileOutZone` (403), and no file is read.
        """
        return XLSXData(workbook_path(site, path), desc)

    return {"data2xlsx": site_data2xlsx, "xlsxdata": xlsxdata}


def workbook_path(site: SiteView, path: str | os.PathLike[str]) -> str:
    """The real path of a workbook a script names, if it lies inside the site.

    Inside means: in the work directory or a content root, never under
    ``conf/``. A path spelt inside the site that leads out through a link the
    owner placed (a module folder linked into ``wwwroot``), or a path the site
    serves through such a link (what ``abspath(url)`` returns), counts as
    inside while ``website.follow_symlinks`` is on, as for serving.
    """
    name = os.fspath(path)
    lexical = os.path.normpath(os.path.join(site.workdir, name))
    real = os.path.realpath(lexical)
    conf = os.path.realpath(site.workdir / "conf") + os.sep
    if (real + os.sep).startswith(conf):
        raise FileOutZone(name, "the site's conf/ folder is private")
    folders = [str(site.workdir), *(str(root.folder) for root in site.roots)]
    reals = [os.path.realpath(site.workdir) + os.sep, *(root.real for root in site.roots)]
    inside = any((real + os.sep).startswith(base) for base in reals)
    if not inside and site.config.website.follow_symlinks:
        spelt_inside = any(
            (lexical + os.sep).startswith(os.path.abspath(f).rstrip(os.sep) + os.sep)
            for f in folders
        )
        inside = spelt_inside or site.file_url(real) is not None
    if not inside:
        raise FileOutZone(name, "outside the site")
    if not os.path.isfile(real):
        raise SiteFileNotFound(name)
    return real
