"""The plugin API: everything a plugin may use, in one module.

A plugin — ours or a third party's — imports from here, from
:mod:`ahcore.hookspecs` (the hook contract) and, in its tests, from
:mod:`ahcore.testing`. Nothing else of the kernel is promised to stay
where it is; an import-linter contract (``lint``) keeps the built-in plugins
to this rule, so whatever they do a third-party plugin can do the same way.

The surface, by concern (each is documented in ``docs/plugins.md`` with an
example):

- **Declaring**: :data:`hookimpl`, :class:`ProcessorSpec`, :class:`DriverSpec`.
- **The site**: :func:`get_site` gives a :class:`SiteView` — config, roots,
  plugin settings, the resolver as a function (:meth:`SiteView.resolve`),
  URL building (:meth:`SiteView.file_url`), the processor table as a
  question (:meth:`SiteView.processor_name`), the database pools.
- **A request**: :class:`RequestContext` and :func:`current_context`;
  :func:`request_origin` and :func:`request_scheme` as the client used them
  (trusted forwarded headers applied); :func:`read_params`, the one body
  reader, bound by the site's size and read-time limits; :func:`path_call`
  to run another file's processor; :func:`to_response` for ahserver's
  return conventions.
- **Users**: :func:`current_user`, :func:`current_ticket`,
  :func:`remember_user`, :func:`forget_user`.
- **Errors**: :func:`bad_request`, :func:`not_found`, :func:`server_error`.
- **Data for people**: :func:`wants_html` (is this a browser opening the
  page?) and :class:`DataPage` → :func:`data_page_response`, the sortable,
  paged HTML table the data-source plugins show a browser.
- **Data**: :class:`DBPools` (``site.pools``), :class:`SQLor`, the driver
  base types (:class:`Connection`, :class:`Pool`, :class:`BatchedRowStream`
  …) and errors, and :func:`open_site` for a plugin's own command line.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from ahcore.appkeys import get_site as _get_site
from ahcore.background import add_startup
from ahcore.config import ConfigError, DatabaseConfig, SiteConfig
from ahcore.context import RequestContext, current_context
from ahcore.datatable import (
    VARY,
    DataPage,
    FormField,
    TableColumn,
    data_page_response,
    render_data_page,
    sort_keys,
    sort_text,
    wants_html,
)
from ahcore.db.driver import (
    BatchedRowStream,
    ColumnInfo,
    Connection,
    Dialect,
    DriverSpec,
    FetchResult,
    Pool,
    RowStream,
)
from ahcore.db.errors import BadQuery, DatabaseUnavailable, StatementTimeout
from ahcore.db.fieldtypes import FIELD_TYPES, from_sql_name
from ahcore.db.pools import DBPools
from ahcore.db.sqlor import Select, SQLor
from ahcore.db.sqltext import is_query, parse_int, placeholder_names
from ahcore.db.streaming import JsonRowsWriter, encode_rows
from ahcore.dictobject import DictObject
from ahcore.errors import bad_request, not_found, server_error
from ahcore.forwarded import request_origin
from ahcore.jsonutil import dumps, json_response
from ahcore.params import read_params
from ahcore.pipeline import path_call
from ahcore.plugins import PluginError, hookimpl
from ahcore.processor import Processor, ProcessorSpec, to_response
from ahcore.resolver import Resolved, Root
from ahcore.resolver import split_segments as url_segments
from ahcore.session import current_ticket, current_user, forget_user, remember_user

if TYPE_CHECKING:
    from ahcore.uploads import UploadStore

__all__ = [
    "FIELD_TYPES",
    "VARY",
    "BadQuery",
    "BatchedRowStream",
    "ColumnInfo",
    "ConfigError",
    "Connection",
    "DBPools",
    "DataPage",
    "DatabaseConfig",
    "DatabaseUnavailable",
    "Dialect",
    "DictObject",
    "DriverSpec",
    "FetchResult",
    "FormField",
    "JsonRowsWriter",
    "PluginError",
    "Pool",
    "Processor",
    "ProcessorSpec",
    "RequestContext",
    "Resolved",
    "Root",
    "RowStream",
    "SQLor",
    "Select",
    "SiteConfig",
    "SiteView",
    "StatementTimeout",
    "TableColumn",
    "add_startup",
    "bad_request",
    "current_context",
    "current_ticket",
    "current_user",
    "data_page_response",
    "dumps",
    "encode_rows",
    "forget_user",
    "from_sql_name",
    "get_site",
    "hookimpl",
    "is_query",
    "json_response",
    "not_found",
    "open_site",
    "parse_int",
    "path_call",
    "placeholder_names",
    "read_params",
    "remember_user",
    "render_data_page",
    "request_origin",
    "request_scheme",
    "server_error",
    "sort_keys",
    "sort_text",
    "to_response",
    "url_segments",
    "wants_html",
]


class SiteView(Protocol):
    """The part of a site a plugin may use; what :func:`get_site` promises.

    Every member reads the site's *current* config: after a hot reload that
    changes ``website.paths``, :meth:`resolve` and :attr:`roots` answer with
    the new roots. Keep the view, never what it returned (a root list, a
    resolved path) beyond one request.
    """

    @property
    def workdir(self) -> Path:
        """The site folder (where ``conf/config.json`` lives)."""

    @property
    def config(self) -> SiteConfig:
        """The current config; ``config.raw`` is the JSON as written."""

    @property
    def debug(self) -> bool:
        """Whether the server runs with ``--debug`` (tracebacks may be shown)."""

    @property
    def app(self) -> web.Application | None:
        """The aiohttp application serving the site (``None`` only while it is built)."""

    @property
    def roots(self) -> Sequence[Root]:
        """The content roots in search order: ``root.folder`` and its URL ``root.prefix``."""

    @property
    def global_namespace(self) -> Mapping[str, Any]:
        """The names every script and template sees (after ``env_globals``)."""

    @property
    def drivers(self) -> Mapping[str, DriverSpec]:
        """The enabled database drivers by name and alias."""

    @property
    def uploads(self) -> UploadStore | None:
        """Where uploads are stored (``filesroot``), or ``None`` when uploads are off."""

    @property
    def pools(self) -> DBPools:
        """The application's databases; from ``on_startup`` on."""

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """The site's settings object for plugin ``name`` (``{}`` for ``true``)."""

    def resolve(self, url: str) -> Resolved | None:
        """The file ``url`` names, as a request would find it; ``None`` if nothing may be served."""

    def file_url(self, path: str | Path) -> str | None:
        """The URL a file on disk is served at, or ``None``."""

    def processor_name(self, filename: str) -> str | None:
        """The processor that serves ``filename`` here (longest suffix), or ``None``."""


def get_site(app: web.Application) -> SiteView:
    """The site an application serves (in a hook: ``get_site(app)``)."""
    return _get_site(app)


def request_scheme(request: web.Request) -> str:
    """``http`` or ``https`` as the client used it (a trusted proxy's word included)."""
    return request.scheme


@contextlib.asynccontextmanager
async def open_site(workdir: str | Path, *, debug: bool = False) -> AsyncIterator[SiteView]:
    """The site in ``workdir`` started as for serving, but listening nowhere.

    For a plugin's command line (``ahcore rbac adduser``): every enabled
    plugin's ``on_startup`` has run, so ``site.pools`` and a plugin's own
    state are there; leaving the block runs the shutdown hooks. Raises
    :class:`ConfigError` or :class:`PluginError` when the site cannot start.
    """
    from ahcore.app import create_app  # the application builder imports every kernel part

    app = create_app(workdir, debug=debug)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        yield get_site(app)
    finally:
        await runner.cleanup()
