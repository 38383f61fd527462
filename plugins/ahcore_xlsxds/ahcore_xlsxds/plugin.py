"""The ahcore plugin module (entry point ``xlsxds`` in the ``ahcore`` group).

Uses only public hooks: ``register_processor`` for ``.xlsxds`` files,
``env_globals`` to give scripts ``data2xlsx`` and ``xlsxdata``, and
``on_startup`` to check ``plugins.xlsxds`` when the server starts.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
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

    site = get_site(app)

    def site_data2xlsx(
        rows: Iterable[Mapping[str, Any] | Sequence[Any]],
        filename: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None = None,
        fields: Sequence[str | Mapping[str, Any]] | None = None,
        *,
        sheet_name: str = "Sheet1",
    ) -> bytes | str:
        if filename is not None and not isinstance(filename, (str, os.PathLike)):
            return ahserver_export(site, rows, filename, sheet_name)
        return data2xlsx(rows, filename, fields, sheet_name=sheet_name, base_dir=workdir)

    site_data2xlsx.__doc__ = (data2xlsx.__doc__ or "") + AHSERVER_FORM
    site_data2xlsx.__name__ = site_data2xlsx.__qualname__ = "data2xlsx"

    def xlsxdata(path: str | os.PathLike[str], desc: Mapping[str, Any]) -> XLSXData:
        """ahserver's ``xlsxdata(path, desc)`` (:class:`ahcore_xlsxds.xlsxdata.XLSXData`).

        ``path`` is relative to the site's work directory, or absolute (what
        ``abspath(url)`` gives); it must lie in the work directory or a
        content root: else :class:`FileOutZone` (403), and no file is read.
        """
        return XLSXData(workbook_path(site, path), desc)

    return {"data2xlsx": site_data2xlsx, "xlsxdata": xlsxdata}


AHSERVER_FORM = """

    ahserver 1.2.0's form, ``data2xlsx(rows, headers)`` with ``headers``
    items ``{name, title}``, writes the workbook under ``filesroot``
    (``exports/<random>.xlsx``) and returns that file's path, for
    ``file_download(request, path)`` as in ahserver (which wrote a temporary
    file anywhere; ``file_download`` sends only files of the site).
"""


def ahserver_export(
    site: SiteView,
    rows: Iterable[Mapping[str, Any] | Sequence[Any]],
    headers: Sequence[Mapping[str, Any]],
    sheet_name: str = "Sheet1",
) -> str:
    """ahserver's ``data2xlsx(rows, headers)``: a new workbook under ``filesroot``; its path."""
    if site.uploads is None:
        raise RuntimeError("data2xlsx(rows, headers) writes under filesroot: set 'filesroot'")
    fields = [
        {"name": h["name"], "label": h.get("title") or h["name"]} for h in headers
    ]
    folder = Path(site.uploads.root) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{secrets.token_hex(16)}.xlsx"
    return str(data2xlsx(rows, target, fields, sheet_name=sheet_name))


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
