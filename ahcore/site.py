"""The site: everything one application knows, hung off the aiohttp app.

There is no module-level state in ahcore: two applications in one process
each have their own :class:`Site` — config, plugin manager, processors,
caches, events — reachable with :func:`get_site`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import pluggy
from aiohttp import web

from ahcore.config import ConfigError, SiteConfig
from ahcore.db.driver import DriverSpec
from ahcore.db.pools import DBPOOLS_KEY, DBPools
from ahcore.events import EventDispatcher
from ahcore.forwarded import parse_networks
from ahcore.headers import header_set
from ahcore.i18n import Translations
from ahcore.plugins import (
    PluginError,
    await_me_maybe,
    call_each,
    canonical_driver,
    distribution_hint,
    hook_callers,
)
from ahcore.processor import ProcessorCache, ProcessorRegistry, ProcessorSpec
from ahcore.resolver import RedirectToSlash, Resolved, Resolver, Root, split_segments
from ahcore.uploads import UploadStore

log = logging.getLogger("ahcore.site")

def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


class Site:
    """Config, plugins, processors and caches of one application."""

    def __init__(
        self,
        workdir: Path,
        config: SiteConfig,
        pm: pluggy.PluginManager,
        *,
        debug: bool = False,
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.pm = pm
        self.debug = debug or config.debug
        self.events = EventDispatcher()
        self._uses_auth = bool(pm.hook.auth_check.get_hookimpls())
        self.processor_cache = ProcessorCache()
        self.specs = self._collect_processors()
        self.processors = self._processor_table()
        self.drivers = self._collect_drivers()
        self.roots = self._roots(config)
        self.resolver = self._resolver()
        w = config.website
        self.trusted_proxies = parse_networks(w.trusted_proxies)
        self.response_headers = header_set(w.security_headers)
        self.server_header = w.server_header
        self.uploads = self._uploads()
        self.translations = Translations(
            workdir / "i18n", config.langMapping, config.language
        )
        self.global_namespace: dict[str, Any] = {}
        self.request_namespace_hook = pm.hook.request_namespace
        self.app: web.Application | None = None

    # ------------------------------------------------------------ plugins

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """The settings object a site gives plugin ``name`` (``{}`` for ``true``)."""
        plugins = self.config.plugins or {}
        value = plugins.get(name)
        return value if isinstance(value, dict) else {}

    def _collect_processors(self) -> dict[str, ProcessorSpec]:
        specs: dict[str, ProcessorSpec] = {}
        problems = []
        for plugin, caller in hook_callers(self.pm, "register_processor"):
            for spec in (s for result in caller() for s in _as_list(result)):
                if spec.name in specs:
                    problems.append(
                        f"processor {spec.name!r} is declared by both "
                        f"{specs[spec.name].plugin!r} and {plugin!r}"
                    )
                    continue
                specs[spec.name] = dataclasses.replace(
                    spec, suffixes=tuple(spec.suffixes), methods=tuple(spec.methods), plugin=plugin
                )
        if problems:
            raise PluginError(problems)
        return specs

    def _processor_table(self) -> ProcessorRegistry:
        configured = self.config.website.processors
        if configured is None:
            pairs = [(s, spec) for spec in self.specs.values() for s in spec.suffixes]
            return ProcessorRegistry(pairs)
        problems = []
        pairs = []
        for suffix, name in configured:
            spec = self.specs.get(name)
            if spec is None:
                problems.append(
                    f"website.processors: suffix {suffix!r} uses processor {name!r}, "
                    f"which no enabled plugin provides; install {distribution_hint(name)!r} "
                    f"and enable it in the 'plugins' section"
                )
                continue
            pairs.append((suffix, spec))
        if problems:
            raise PluginError(problems)
        return ProcessorRegistry(pairs)

    def _collect_drivers(self) -> dict[str, DriverSpec]:
        drivers: dict[str, DriverSpec] = {}
        for result in self.pm.hook.register_db_driver():
            for spec in _as_list(result):
                drivers[spec.name] = spec
                for alias in spec.aliases:
                    drivers.setdefault(alias, spec)
        problems = []
        for name, db in self.config.databases.items():
            driver = canonical_driver(db.driver)
            if driver not in drivers:
                problems.append(
                    f"databases.{name}.driver: {db.driver!r} needs the driver plugin "
                    f"{driver!r}; install {distribution_hint(driver)!r} and enable it"
                )
        if problems:
            raise PluginError(problems)
        return drivers

    # ------------------------------------------------------------ layout

    def _path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.workdir / p

    def _roots(self, config: SiteConfig) -> list[Root]:
        """The content roots; a missing one stops start-up (and ``ahcore check``)."""
        roots = []
        problems = []
        for i, (folder, prefix) in enumerate(config.website.paths):
            path = self._path(folder)
            if not path.is_dir():
                what = "is not a folder" if path.exists() else "does not exist"
                problems.append(
                    f"website.paths[{i}]: the content root {path} {what}; create it or "
                    "correct the path"
                )
            roots.append(Root.make(path, prefix))
        if problems:
            raise ConfigError(problems)
        return roots

    def _resolver(self) -> Resolver:
        w = self.config.website
        return Resolver(
            self.roots,
            list(w.indexes),
            self.processors,
            forbidden_dirs=[str(self.workdir / "conf")],
            allow_listing=w.allowListFolder,
            follow_symlinks=w.follow_symlinks,
        )

    def _uploads(self) -> UploadStore | None:
        if not self.config.filesroot:
            return None
        root = self._path(self.config.filesroot)
        settings = self.config.raw.get("uploads", {}) if isinstance(self.config.raw, dict) else {}
        max_body = self.config.website.client_max_size
        return UploadStore(
            root,
            max_file_size=int(settings.get("max_file_size", max_body)),
            max_body_size=max_body,
            max_parts=int(settings.get("max_parts", 100)),
        )

    # ------------------------------------------------------------ lifecycle

    async def build_namespace(self, app: web.Application) -> None:
        ns: dict[str, Any] = {}
        for result in self.pm.hook.env_globals(app=app)[::-1]:
            result = await await_me_maybe(result)
            if result:
                ns.update(result)
        self.global_namespace = ns
        # Called per script request: look the hook caller up once.
        self.request_namespace_hook = self.pm.hook.request_namespace

    async def call_hook(self, name: str, **kwargs: Any) -> list[Any]:
        """Call hook ``name`` and await each result (sync and async impls alike)."""
        results = getattr(self.pm.hook, name)(**kwargs)
        return [await await_me_maybe(r) for r in results]

    async def hot_reload(self, data: dict[str, Any]) -> None:
        """Dispatch a ``hot_reload`` event and the ``on_hot_reload`` hook."""
        assert self.app is not None
        await self.events.dispatch("hot_reload", data)
        await call_each(self.pm, "on_hot_reload", isolate=True, app=self.app, data=data)

    def apply_config(self, new: SiteConfig) -> list[str]:
        """Adopt a reloaded config; return the sections that need a restart.

        Roots, indexes, listing, trusted proxies, language mapping and every
        value read through ``configValue`` change at once. Plugins,
        processors, databases, sessions and the listening address are fixed
        for the life of the process.
        """
        old = self.config
        roots = self._roots(new)  # a missing root refuses the new config: ConfigError
        self.config = new
        restart = [
            name
            for name, a, b in (
                ("plugins", old.plugins, new.plugins),
                ("website.processors", old.website.processors, new.website.processors),
                ("databases", old.databases, new.databases),
                ("website.session_redis", old.website.session_redis, new.website.session_redis),
                ("website.host/port", (old.website.host, old.website.port), (new.website.host, new.website.port)),
                # read when the listening site starts (ahcore.server.start_site)
                ("website.header_timeout", old.website.header_timeout, new.website.header_timeout),
                ("filesroot", old.filesroot, new.filesroot),
            )
            if a != b
        ]
        if new.website.paths != old.website.paths:
            # A file's URL (and so a template's relative includes or a page's
            # links) depends on the roots: build every processor afresh.
            self.processor_cache.clear()
        self.roots = roots
        self.resolver = self._resolver()
        w = new.website
        self.trusted_proxies = parse_networks(w.trusted_proxies)
        self.response_headers = header_set(w.security_headers)
        self.server_header = w.server_header
        self.translations.mapping = {k.lower(): v for k, v in new.langMapping.items()}
        self.translations.default = new.language
        return restart

    # ------------------------------------------------------------ public view
    # What ahcore.api.SiteView declares: the part of a Site a plugin may use.
    # Each reads the current config's objects on every call, so a plugin
    # never keeps a resolver or a root list that a reload has replaced.

    def resolve(self, url: str) -> Resolved | None:
        """The file ``url`` names, as a request for it would find it.

        ``None`` when nothing may be served there: missing, refused
        (traversal, dotfile, ``conf/``) or a folder without an index.
        """
        try:
            return self.resolver.resolve(split_segments(url), url.endswith("/"))
        except (RedirectToSlash, web.HTTPException):
            return None

    def file_url(self, path: str | Path) -> str | None:
        """The URL a file on disk is served at, or ``None`` when no root serves it."""
        return self.resolver.file_url(path)

    def processor_name(self, filename: str) -> str | None:
        """The name of the processor that serves ``filename`` on this site, if any."""
        match = self.processors.match(filename)
        return match[1].name if match is not None else None

    @property
    def pools(self) -> DBPools:
        """The application's databases (available from ``on_startup`` on)."""
        if self.app is None or DBPOOLS_KEY not in self.app:
            raise RuntimeError("the database pools are made when the application starts")
        return self.app[DBPOOLS_KEY]

    def uses_auth(self) -> bool:
        """Whether any plugin implements ``auth_check`` (fixed once plugins are loaded)."""
        return self._uses_auth


    def __repr__(self) -> str:
        return f"<Site {os.fspath(self.workdir)!r}>"
