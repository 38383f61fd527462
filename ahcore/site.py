"""The site: everything one application knows, hung off the aiohttp app.

There is no module-level state in ahcore: two applications in one process
each have their own :class:`Site` — config, plugin manager, processors,
caches, events — reachable with :func:`get_site`.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
from aiohttp import web

from ahcore.config import ConfigError, SiteConfig
from ahcore.db.driver import DriverSpec
from ahcore.db.pools import DBPOOLS_KEY, DBPools
from ahcore.events import EventDispatcher
from ahcore.forwarded import Network, parse_networks
from ahcore.headers import header_set
from ahcore.i18n import Translations
from ahcore.plugins import (
    KERNEL_PLUGINS,
    SOURCE_TREE_PLUGINS,
    PluginError,
    ProcessorOffer,
    as_list,
    await_me_maybe,
    call_each,
    canonical_driver,
    disabled_plugins,
    fast_caller,
    hook_callers,
    install_advice,
)
from ahcore.problems import Problem, as_problems
from ahcore.processor import ProcessorCache, ProcessorRegistry, ProcessorSpec, unavailable_spec
from ahcore.resolver import (
    NEVER_RAW_SUFFIXES,
    RedirectToSlash,
    Resolved,
    Resolver,
    Root,
    split_segments,
)
from ahcore.scriptnamespace import ScriptNamespace, script_namespace_class
from ahcore.session import request_user
from ahcore.staticfiles import StaticCache
from ahcore.uploads import UploadStore

log = logging.getLogger("ahcore.site")

@dataclass(frozen=True)
class ProcessorGap:
    """A ``website.processors`` suffix this site cannot process.

    Its files are never sent raw: they answer ``status`` instead — 501 when
    no installed plugin provides the processor (a processor of ahserver's
    era, or a plugin not installed here), 404 when an installed plugin does
    but the site does not enable it. Neither stops start-up; each is logged
    at start, ``ahcore check`` lists it and ``ahcore serve --strict`` refuses
    to start.
    """

    suffix: str
    processor: str
    status: int
    message: str  # for the site owner: what happens and what to do
    deliberate: bool = False  # its plugin is switched off with false: a warning only


@dataclass(frozen=True)
class Snapshot:
    """What one config decides for a site, built whole and swapped in one step.

    A hot reload builds a new snapshot beside the old one and replaces it
    with a single assignment. A request pins the snapshot it started with
    (:meth:`Site.pin`), so everything it reads through the site — config,
    roots, resolver, trusted proxies, headers — comes from one config, even
    when a reload lands while it runs. Caches keyed to a config (a
    template's ``uptodate``) compare ``snapshot.config`` by identity.
    """

    owner: int  # id() of the Site: a pin never leaks into another app's site
    config: SiteConfig
    roots: tuple[Root, ...]
    resolver: Resolver
    trusted_proxies: tuple[Network, ...]
    response_headers: tuple[tuple[str, str], ...]
    server_header: str


# The snapshot a request pinned. A ContextVar is a key, not state: each
# request's task holds its own value (like ahcore.context's current context).
_PINNED: ContextVar[Snapshot] = ContextVar("ahcore.site_snapshot")


class Site:
    """Config, plugins, processors and caches of one application."""

    def __init__(
        self,
        workdir: Path,
        config: SiteConfig,
        pm: pluggy.PluginManager,
        *,
        debug: bool = False,
        offers: Sequence[ProcessorOffer] = (),
        plugin_warnings: Sequence[str] = (),
    ) -> None:
        """``offers`` are the processors of installed plugins the site does not
        enable (from :func:`ahcore.plugins.load_plugins`): their files are
        never sent raw. ``plugin_warnings`` are plugin problems that did not
        stop start-up."""
        self.workdir = workdir
        self._config = config  # only until the first snapshot exists
        self.pm = pm
        self.debug = debug or config.debug
        self.events = EventDispatcher()
        self._uses_auth = bool(pm.hook.auth_check.get_hookimpls())
        #: Whether any plugin logs visitors in from headers (``identify_user``);
        #: fixed once plugins are loaded, as :meth:`uses_auth`.
        self.identifies_users = bool(pm.hook.identify_user.get_hookimpls())
        self.processor_cache = ProcessorCache()
        self.static_cache = StaticCache()  # small static files' bytes (ahcore.staticfiles)
        self.offers = list(offers)
        self.plugin_warnings = list(plugin_warnings)
        self.specs = self._collect_processors()
        self.gaps: dict[str, ProcessorGap] = {}
        self.processors = self._processor_table()
        self.never_raw = self._never_raw()
        self.drivers = self._collect_drivers()
        self._snapshot = self._make_snapshot(config)
        self.uploads = self._uploads()
        self.translations = Translations(
            workdir / "i18n", config.langMapping, config.language
        )
        self.global_namespace: dict[str, Any] = {}
        self._script_namespace: type[ScriptNamespace] | None = None
        #: Plugins' ``request_namespace`` implementations (set once the namespace is built).
        self.request_namespace_hook: Callable[..., list[Any]] | None = None
        #: The kernel's per-request ``user`` (:func:`ahcore.session.request_user`).
        self.request_user = request_user
        self.app: web.Application | None = None

    # ------------------------------------------------------------ plugins

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """The settings object a site gives plugin ``name`` (``{}`` for ``true``)."""
        plugins = self.config.plugins or {}
        value = plugins.get(name)
        return value if isinstance(value, dict) else {}

    def settings_problems(self) -> list[Problem]:
        """What each enabled plugin's ``check_settings`` hook finds in its settings.

        One call per plugin (through pluggy, so wrappers and tracing apply),
        with that plugin's name and settings. A hook that raises is reported
        as an error of that plugin, never as a traceback.
        """
        found: list[Problem] = []
        for plugin, caller in hook_callers(self.pm, "check_settings"):
            settings = self.plugin_settings(plugin)
            try:
                for result in caller(name=plugin, settings=settings, site=self):
                    if inspect.isawaitable(result):
                        if inspect.iscoroutine(result):
                            result.close()
                        raise TypeError("check_settings must be synchronous")
                    found.extend(as_problems(result))
            except Exception as exc:
                found.append(
                    Problem(
                        f"plugins.{plugin}: the plugin's check_settings hook failed "
                        f"({type(exc).__name__}: {exc}); this is a bug of the plugin"
                    )
                )
        return found

    def _collect_processors(self) -> dict[str, ProcessorSpec]:
        specs: dict[str, ProcessorSpec] = {}
        problems = []
        for plugin, caller in hook_callers(self.pm, "register_processor"):
            for spec in (s for result in caller() for s in as_list(result)):
                if spec.name in specs:
                    problems.append(
                        f"processor {spec.name!r} is declared by both "
                        f"{specs[spec.name].plugin!r} and {plugin!r}; switch one of these "
                        f'plugins off ("{plugin}": false in the plugins section)'
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
        offered = {offer.processor: offer for offer in self.offers}
        off = disabled_plugins(self.config)
        pairs = []
        for suffix, name in configured:
            spec = self.specs.get(name)
            if spec is not None:
                pairs.append((suffix, spec))
                continue
            offer = offered.get(name)
            if offer is None:
                advice = install_advice(name)
                self.gaps[suffix] = ProcessorGap(
                    suffix,
                    name,
                    501,
                    f"website.processors: {suffix!r} files need the processor {name!r}, which "
                    f"no installed plugin provides; they answer 501 until you {advice}, "
                    f"or remove {suffix!r} from website.processors",
                )
                pairs.append((suffix, unavailable_spec(name, suffix, advice)))
            elif offer.plugin in off:
                self.gaps[suffix] = ProcessorGap(
                    suffix,
                    name,
                    404,
                    f"website.processors: {suffix!r} files need the processor {name!r}, whose "
                    f'plugin {offer.plugin!r} the plugins section switches off ("{offer.plugin}": '
                    "false); they answer 404",
                    deliberate=True,
                )
            else:
                self.gaps[suffix] = ProcessorGap(
                    suffix,
                    name,
                    404,
                    f"website.processors: {suffix!r} files need the processor {name!r} of the "
                    f"plugin {offer.plugin!r} ({offer.distribution}), which is installed but not "
                    f'enabled; they answer 404 until you add "{offer.plugin}": true to the '
                    "plugins section",
                )
        return ProcessorRegistry(pairs)

    def _never_raw(self) -> tuple[str, ...]:
        """Suffixes never sent as static files (lower case): processor source.

        The kernel's list, every suffix an installed processor claims
        (enabled or not) and every suffix ``website.processors`` names. A
        file with a processor is matched before this list is consulted.
        """
        claimed = set(NEVER_RAW_SUFFIXES)
        claimed.update(s for spec in self.specs.values() for s in spec.suffixes)
        claimed.update(s for offer in self.offers for s in offer.suffixes)
        claimed.update(suffix for suffix, _ in self.config.website.processors or [])
        return tuple(sorted({s.lower() for s in claimed}))

    def log_problems(self) -> None:
        """One log line per processor gap and per plugin warning (at start-up)."""
        for gap in self.gaps.values():
            level = logging.WARNING if gap.deliberate or gap.status == 404 else logging.ERROR
            log.log(level, "%s", gap.message)
        for warning in self.plugin_warnings:
            log.warning("%s", warning)

    def _collect_drivers(self) -> dict[str, DriverSpec]:
        drivers: dict[str, DriverSpec] = {}
        for result in self.pm.hook.register_db_driver():
            for spec in as_list(result):
                drivers[spec.name] = spec
                for alias in spec.aliases:
                    drivers.setdefault(alias, spec)
        problems = []
        off = disabled_plugins(self.config)
        for name, db in self.config.databases.items():
            driver = canonical_driver(db.driver)
            if driver in drivers:
                continue
            where = f"databases.{name}.driver: {db.driver!r}"
            if driver in off:
                problems.append(
                    f"{where} is served by the plugin {driver!r}, which the plugins section "
                    f'switches off; remove "{driver}": false from plugins, or the database '
                    "from databases"
                )
            elif driver in KERNEL_PLUGINS or driver in SOURCE_TREE_PLUGINS:
                problems.append(
                    f"{where} needs the driver plugin {driver!r}, which is not installed; "
                    f"{install_advice(driver)}"
                )
            else:
                problems.append(
                    f"{where} is not a driver ahcore knows (sqlite, mysql, postgres or one of "
                    f"their ahserver names); for another database, {install_advice(driver)}"
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

    def _make_snapshot(self, config: SiteConfig) -> Snapshot:
        """Everything ``config`` decides, built without touching the current snapshot."""
        roots = self._roots(config)  # a missing root refuses the config: ConfigError
        w = config.website
        resolver = Resolver(
            roots,
            list(w.indexes),
            self.processors,
            # conf/, and stored uploads even when filesroot lies inside a root:
            # a visitor's file is only sent by idfile/download, never served or
            # run as a page (an uploaded .dspy would run, an .html be stored XSS).
            forbidden_dirs=[
                str(self.workdir / "conf"),
                *([str(self._path(config.filesroot))] if config.filesroot else []),
            ],
            allow_listing=w.allowListFolder,
            never_raw=self.never_raw,
            follow_symlinks=w.follow_symlinks,
        )
        return Snapshot(
            owner=id(self),
            config=config,
            roots=tuple(roots),
            resolver=resolver,
            trusted_proxies=parse_networks(w.trusted_proxies),
            response_headers=header_set(w.security_headers),
            server_header=w.server_header,
        )

    # ------------------------------------------------------------ the snapshot

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot this request pinned, else the current one."""
        pinned = _PINNED.get(None)
        if pinned is not None and pinned.owner == id(self):
            return pinned
        try:
            return self._snapshot
        except AttributeError:  # still building the first one
            raise AttributeError("the site's config is not loaded yet") from None

    def pin(self) -> tuple[Snapshot, Token[Snapshot]]:
        """Pin the current snapshot for the running request; pass the token to :meth:`unpin`."""
        snapshot = self._snapshot
        return snapshot, _PINNED.set(snapshot)

    @staticmethod
    def unpin(token: Token[Snapshot]) -> None:
        _PINNED.reset(token)

    @property
    def config(self) -> SiteConfig:
        try:
            return self.snapshot.config
        except AttributeError:
            return self._config

    @property
    def roots(self) -> tuple[Root, ...]:
        return self.snapshot.roots

    @property
    def resolver(self) -> Resolver:
        return self.snapshot.resolver

    @property
    def trusted_proxies(self) -> tuple[Network, ...]:
        return self.snapshot.trusted_proxies

    @property
    def response_headers(self) -> tuple[tuple[str, str], ...]:
        return self.snapshot.response_headers

    @property
    def server_header(self) -> str:
        return self.snapshot.server_header

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
        # Called per script request: look the hook caller up once, without
        # pluggy's dispatch; None when no plugin implements it (the kernel
        # sets its own per-request names itself, see RequestContext._fill).
        hook = self.pm.hook.request_namespace
        self.request_namespace_hook = fast_caller(hook) if hook.get_hookimpls() else None

    def script_namespace_class(self) -> type[ScriptNamespace]:
        """The class of a script's globals on this site (:mod:`ahcore.scriptnamespace`).

        Made once for the site's namespace dict, and again only if that dict
        is replaced (``add_globals`` changes it in place, which the class
        sees at once).
        """
        cls = self._script_namespace
        if cls is None or cls.site_names is not self.global_namespace:
            cls = self._script_namespace = script_namespace_class(self.global_namespace)
        return cls

    def forget_script_namespace_class(self) -> None:
        """Make the class again at the next request (a new name shadows a builtin)."""
        self._script_namespace = None

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
        old = self._snapshot.config
        snapshot = self._make_snapshot(new)  # a missing root refuses it: ConfigError
        restart = [
            name
            for name, a, b in (
                ("plugins", old.plugins, new.plugins),
                ("website.processors", old.website.processors, new.website.processors),
                ("databases", old.databases, new.databases),
                ("website.session_redis", old.website.session_redis, new.website.session_redis),
                ("website.host/port", (old.website.host, old.website.port), (new.website.host, new.website.port)),
                ("website.ssl", old.website.ssl, new.website.ssl),
                # read when the listening site starts (ahcore.server.start_site)
                ("website.header_timeout", old.website.header_timeout, new.website.header_timeout),
                ("filesroot", old.filesroot, new.filesroot),
            )
            if a != b
        ]
        if "plugins" in restart:
            # Name the plugins switched on, off or re-set: "plugins (md, tmpl)".
            a, b = old.plugins or {}, new.plugins or {}
            names = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            if names:
                restart[restart.index("plugins")] = f"plugins ({', '.join(names)})"
        if new.website.paths != old.website.paths:
            # A file's URL (and so a template's relative includes or a page's
            # links) depends on the roots: build every processor afresh.
            self.processor_cache.clear()
        self._snapshot = snapshot  # the one step a reload takes
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
