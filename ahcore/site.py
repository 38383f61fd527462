"""The site: everything one application knows, hung off the aiohttp app.

There is no module-level state in ahcore: two applications in one process
each have their own :class:`Site` — config, plugin manager, processors,
caches, events — reachable with :func:`get_site`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pluggy
from aiohttp import web

from ahcore.config import SiteConfig
from ahcore.db.driver import DriverSpec
from ahcore.events import EventDispatcher
from ahcore.forwarded import parse_networks
from ahcore.i18n import Translations
from ahcore.plugins import (
    PluginError,
    await_me_maybe,
    call_impl,
    canonical_driver,
    distribution_hint,
)
from ahcore.processor import ProcessorCache, ProcessorRegistry, ProcessorSpec
from ahcore.resolver import Resolver, Root
from ahcore.uploads import UploadStore

log = logging.getLogger("ahcore.site")

SITE_KEY: web.AppKey[Site] = web.AppKey("ahcore.site", t=object)  # type: ignore[arg-type]


def get_site(app: web.Application) -> Site:
    """The :class:`Site` of an ahcore application."""
    return app[SITE_KEY]


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
        self.roots = self._roots()
        w = config.website
        self.resolver = Resolver(
            self.roots,
            list(w.indexes),
            self.processors,
            forbidden_dirs=[str(workdir / "conf")],
            allow_listing=w.allowListFolder,
        )
        self.trusted_proxies = parse_networks(w.trusted_proxies)
        self.uploads = self._uploads()
        self.translations = Translations(
            workdir / "i18n", config.langMapping, config.language
        )
        self.global_namespace: dict[str, Any] = {}
        self.request_namespace_impls: list[tuple[Any, bool]] = []
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
        for impl in self.pm.hook.register_processor.get_hookimpls():
            for spec in _as_list(call_impl(impl)):
                if spec.name in specs:
                    problems.append(
                        f"processor {spec.name!r} is declared by both "
                        f"{specs[spec.name].plugin!r} and {impl.plugin_name!r}"
                    )
                    continue
                specs[spec.name] = ProcessorSpec(
                    spec.name, tuple(spec.suffixes), spec.factory, impl.plugin_name
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
        for impl in self.pm.hook.register_db_driver.get_hookimpls():
            for spec in _as_list(call_impl(impl)):
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

    def _roots(self) -> list[Root]:
        paths = self.config.website.paths or [("wwwroot", "")]
        roots = []
        for folder, prefix in paths:
            path = self._path(folder)
            if not path.is_dir():
                log.warning("content root %s does not exist", path)
            roots.append(Root.make(path, prefix))
        return roots

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
        # request_namespace runs on every script request: resolve its
        # implementations once (pluggy's call order, last registered first)
        # instead of paying the generic hook dispatch per request.
        self.request_namespace_impls = [
            (impl.function, bool(impl.argnames))
            for impl in reversed(self.pm.hook.request_namespace.get_hookimpls())
        ]

    async def call_hook(self, name: str, **kwargs: Any) -> list[Any]:
        """Call hook ``name`` and await each result (sync and async impls alike)."""
        results = getattr(self.pm.hook, name)(**kwargs)
        return [await await_me_maybe(r) for r in results]

    async def hot_reload(self, data: dict[str, Any]) -> None:
        """Dispatch a ``hot_reload`` event and the ``on_hot_reload`` hook."""
        assert self.app is not None
        await self.events.dispatch("hot_reload", data)
        for impl in self.pm.hook.on_hot_reload.get_hookimpls():
            try:
                await await_me_maybe(call_impl(impl, app=self.app, data=data))
            except Exception:
                log.exception("on_hot_reload of plugin %r failed", impl.plugin_name)

    def apply_config(self, new: SiteConfig) -> list[str]:
        """Adopt a reloaded config; return the sections that need a restart.

        Roots, indexes, listing, trusted proxies, language mapping and every
        value read through ``configValue`` change at once. Plugins,
        processors, databases, sessions and the listening address are fixed
        for the life of the process.
        """
        old = self.config
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
        self.config = new
        self.roots = self._roots()
        w = new.website
        self.resolver = Resolver(
            self.roots,
            list(w.indexes),
            self.processors,
            forbidden_dirs=[str(self.workdir / "conf")],
            allow_listing=w.allowListFolder,
        )
        self.trusted_proxies = parse_networks(w.trusted_proxies)
        self.translations.mapping = {k.lower(): v for k, v in new.langMapping.items()}
        self.translations.default = new.language
        return restart

    def uses_auth(self) -> bool:
        """Whether any plugin implements ``auth_check`` (fixed once plugins are loaded)."""
        return self._uses_auth


    def __repr__(self) -> str:
        return f"<Site {os.fspath(self.workdir)!r}>"
