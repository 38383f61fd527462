"""The plugin API: everything a plugin may use, in one module.

A plugin — ours or a third party's — imports from here, from
:mod:`ahcore.hookspecs` (the hook contract) and, in its tests, from
:mod:`ahcore.testing`. Nothing else of the kernel is promised to stay
where it is; an import-linter contract (``lint``) keeps the built-in plugins
to this rule, so whatever they do a third-party plugin can do the same way.

The surface, by concern (each is documented in ``docs/plugins.md`` with an
example):

- **Declaring**: :data:`hookimpl`, :class:`ProcessorSpec`, :class:`DriverSpec`.
- **Checking** (``ahcore check``): :class:`Problem`, returned by the
  ``check_settings`` hook and by :meth:`Processor.check`; :func:`json_error`
  words a JSON file's decode error with its line and column.
- **The site**: :func:`get_site` gives a :class:`SiteView` — config, roots,
  plugin settings, the resolver as a function (:meth:`SiteView.resolve`),
  URL building (:meth:`SiteView.file_url`), the processor table as a
  question (:meth:`SiteView.processor_name`), the database pools.
- **A request**: :class:`RequestContext` and :func:`current_context`;
  :func:`request_origin` and :func:`request_scheme` as the client used them
  (trusted forwarded headers applied); :func:`read_body`, the one body
  reader (``params``, ``fields`` and ``raw`` modes; :func:`read_params` is
  its ``params`` mode), bound by the site's size and read-time limits;
  :func:`path_call`
  to run another file's processor; :func:`to_response` for ahserver's
  return conventions.
- **Users**: :func:`current_user`, :func:`current_ticket`,
  :func:`remember_user`, :func:`forget_user`; :func:`safe_next` (where a
  login handler may send the visitor back to: same-site paths only),
  :func:`login_redirect` (the kernel's 303 to ``website.login_page`` for a
  401 on a navigation, for a plugin that answers its own 401s).
- **Cookies**: :func:`set_cookie` and :func:`delete_cookie`, the one way a
  cookie is set (HttpOnly, SameSite=Lax, Secure when the client used https).
- **Errors**: :func:`bad_request`, :func:`not_found`, :func:`server_error`;
  :class:`FileOutZone` (403, a ``PermissionError``) and
  :class:`SiteFileNotFound` (404, a ``FileNotFoundError``) for a file name
  that leads outside the site or to nothing.
- **Function routes** (``website.startswiths``): :func:`register_function`,
  :func:`registered_function` — the application's own registry.
- **Data for people**: :func:`wants_html` (is this a browser opening the
  page?) and :class:`DataPage` → :func:`data_page_response`, the sortable,
  paged HTML table the data-source plugins show a browser.
- **Data**: :class:`DBPools` (``site.pools``), :class:`SQLor`, the driver
  base types (:class:`Connection`, :class:`Pool`, :class:`BatchedRowStream`,
  the table descriptions :class:`TableSummary`/:class:`TableDetail` …) and
  errors, and :func:`open_site` for a plugin's own command line.
- **The application**: :func:`add_startup` (background work),
  :func:`add_globals` (names added to a started site's namespace), the
  event dispatcher (:attr:`SiteView.events`), and :func:`webapp`, the
  embedding entry point (ahserver's ``webapp(init)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from ahcore.appkeys import get_site as _get_site
from ahcore.background import add_startup
from ahcore.config import ConfigError, DatabaseConfig, SiteConfig, json_error
from ahcore.context import RequestContext, current_context
from ahcore.cookies import SameSite, delete_cookie, set_cookie
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
    ColumnDetail,
    ColumnInfo,
    Connection,
    Dialect,
    DriverSpec,
    FetchResult,
    IndexDetail,
    Pool,
    RowStream,
    TableDetail,
    TableSummary,
)
from ahcore.db.errors import BadQuery, DatabaseUnavailable, StatementTimeout
from ahcore.db.fieldtypes import FIELD_TYPES, from_sql_name
from ahcore.db.kwargscheck import check_connection_kwargs
from ahcore.db.pools import DBPools
from ahcore.db.sqlor import Select, SQLor
from ahcore.db.sqltext import MAX_INT_PARAM, is_query, parse_int, placeholder_names
from ahcore.db.streaming import JsonRowsWriter, encode_rows
from ahcore.dictobject import DictObject
from ahcore.errors import bad_request, not_found, server_error
from ahcore.events import EventDispatcher
from ahcore.forwarded import client_scheme, request_origin
from ahcore.functions import register_function, registered_function
from ahcore.jsonutil import dumps, json_response
from ahcore.loginpage import NEXT_PARAM, is_safe_next, login_redirect, safe_next
from ahcore.params import BodyMode, read_body, read_params
from ahcore.pipeline import path_call
from ahcore.plugins import PluginError, hookimpl
from ahcore.problems import Problem
from ahcore.processor import Processor, ProcessorSpec, to_response
from ahcore.resolver import Resolved, Root
from ahcore.resolver import split_segments as url_segments
from ahcore.scriptnamespace import shadows_builtin
from ahcore.session import current_ticket, current_user, forget_user, remember_user
from ahcore.sitefiles import FileOutZone, SiteFileNotFound

if TYPE_CHECKING:
    from ahcore.server.options import ServeOptions
    from ahcore.uploads import UploadStore

__all__ = [
    "FIELD_TYPES",
    "NEXT_PARAM",
    "VARY",
    "BadQuery",
    "BatchedRowStream",
    "BodyMode",
    "ColumnDetail",
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
    "EventDispatcher",
    "FetchResult",
    "FileOutZone",
    "IndexDetail",
    "FormField",
    "JsonRowsWriter",
    "PluginError",
    "Pool",
    "Problem",
    "Processor",
    "ProcessorSpec",
    "RequestContext",
    "Resolved",
    "Root",
    "RowStream",
    "SameSite",
    "SQLor",
    "Select",
    "SiteConfig",
    "SiteFileNotFound",
    "SiteView",
    "StatementTimeout",
    "add_globals",
    "TableDetail",
    "TableSummary",
    "TableColumn",
    "add_startup",
    "bad_request",
    "current_context",
    "current_ticket",
    "current_user",
    "delete_cookie",
    "data_page_response",
    "dumps",
    "encode_rows",
    "forget_user",
    "from_sql_name",
    "get_site",
    "hookimpl",
    "is_query",
    "is_safe_next",
    "check_connection_kwargs",
    "json_error",
    "json_response",
    "login_redirect",
    "not_found",
    "open_site",
    "parse_int",
    "MAX_INT_PARAM",
    "path_call",
    "placeholder_names",
    "read_body",
    "read_params",
    "register_function",
    "registered_function",
    "remember_user",
    "safe_next",
    "render_data_page",
    "request_origin",
    "request_scheme",
    "server_error",
    "set_cookie",
    "sort_keys",
    "sort_text",
    "to_response",
    "url_segments",
    "wants_html",
    "serve_options",
    "webapp",
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

    @property
    def events(self) -> EventDispatcher:
        """The application's event dispatcher (ahserver's ``env.event_dispatcher``).

        ``bind(event, handler)``, ``unbind(event, handler)`` and ``await
        dispatch(event, data)``; handlers may be sync or async, and one
        handler's error is logged without stopping the others. The kernel
        dispatches ``hot_reload`` (with the data of :func:`on_hot_reload`).
        """

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


def add_globals(app: web.Application, names: Mapping[str, Any]) -> None:
    """Add (or replace) ``names`` in the script namespace of a started application.

    For names that become known only once the application runs (a start-up
    task that learns a value, ahserver's ``ServerEnv`` assigned after
    start). Scripts and templates see them from their next request on.
    Before start a plugin returns its names from the ``env_globals`` hook
    instead: the namespace is built from those when the application starts,
    so calling this earlier raises :class:`RuntimeError`.
    """
    site = _get_site(app)
    if not site.global_namespace:
        raise RuntimeError(
            "add_globals(app, ...) before the application started: "
            "return the names from the plugin's env_globals hook instead"
        )
    site.global_namespace.update(names)
    if shadows_builtin(names):  # the scripts' __builtins__ copy them: make it again
        site.forget_script_namespace_class()


def webapp(
    init: Callable[..., Any] | None = None,
    argv: list[str] | None = None,
    plugins: dict[str, str] | None = None,
) -> None:
    """Serve the site named on the command line, as ahserver's ``webapp(init)`` did.

    Parses ``-w/--workdir`` and ``-p/--port`` (with ``--host``,
    ``--workers N`` and ``--debug``) from ``argv`` (``sys.argv`` by
    default), loads the site's config and calls ``init(app)`` — or
    ``init()`` — in each worker with the application before it starts, then
    serves until SIGINT/SIGTERM and exits the process. ``init`` must be
    picklable (a module-level function or object) when ``--workers`` is
    above 1. ``plugins`` maps plugin names to importable module paths for
    plugins that are not installed as distributions; the site config must
    still enable them.
    """
    from ahcore.server import webapp as serve_webapp  # argparse, multiprocessing: load on use

    serve_webapp(init, argv=argv, plugins=plugins)


def serve_options(argv: Sequence[str]) -> ServeOptions:
    """The serve flags of a command line (``-w``, ``-p``, ``--workers``...), parsed as ``webapp`` does.

    For a plugin that needs a value of the command line it is started
    with (ahcore-compat gives ``-p`` to ahserver's ``ServerEnv().port``)
    without parsing the flags a second way. A wrong value exits with
    argparse's error line (status 2).
    """
    from ahcore.server.options import serve_options as parse  # argparse: load on use

    return parse(argv)


def request_scheme(request: web.Request) -> str:
    """``http`` or ``https`` as the client used it (a trusted proxy's word included)."""
    return client_scheme(request)


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
