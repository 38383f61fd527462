"""Plugin discovery, enablement and the per-application plugin manager.

Plugins are modules registered in the ``ahcore`` entry-point group; the entry
name is the name used in config. Installed is not enabled: the site's
``plugins`` section enables and configures them. When that section is absent
(every ahserver config), the plugins the config *uses* are enabled: the
processors named in ``website.processors``. Whether or not the section is
there, the driver a ``databases`` entry names is enabled when installed, and
the kernel's SQLite driver is always on (unless set to ``false``): a site
that lists only its processors in ``plugins`` still reaches its database.

A processor that ``website.processors`` names but no installed plugin
provides does not stop start-up (real ahserver sites name processors of
their own era): its files answer 501 instead (see :mod:`ahcore.site`).

Plugins load when an application is built, never at import time, and each
application gets its own :class:`pluggy.PluginManager`.

**Suffix discovery.** Source files are never sent raw, so the kernel must know
the suffixes of every *installed* processor, enabled or not. It learns them
by importing each installed plugin's entry point and calling its
``register_processor`` hook through a throw-away plugin manager that no
other hook is ever called on (:func:`discover_processors`). Entry-point
metadata cannot carry suffixes without a change to every plugin's
packaging, and a kernel list of known suffixes would miss third-party
plugins; the price is importing plugins a site does not enable (a few MB
per worker for a database driver it does not use), paid once at start.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, PackageNotFoundError, entry_points, version
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from ahcore import hookspecs
from ahcore.config import SiteConfig, did_you_mean

if TYPE_CHECKING:
    from ahcore.processor import ProcessorSpec

ENTRY_POINT_GROUP = "ahcore"
log = logging.getLogger("ahcore.plugins")

hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT_NAME)

# ahserver/sqlor driver names and the plugin (entry name) that serves them.
DRIVER_ALIASES: Mapping[str, str] = {
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "aiosqlite": "sqlite",
    "mysql": "mysql",
    "aiomysql": "mysql",
    "mysql.connector": "mysql",
    "pymysql": "mysql",
    "mariadb": "mysql",
    "postgres": "postgres",
    "postgresql": "postgres",
    "aiopg": "postgres",
    "psycopg2": "postgres",
    "psycopg": "postgres",
}


class PluginError(Exception):
    """A plugin problem that stops start-up; ``problems`` lists each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


async def await_me_maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable: lets every hook be sync or async."""
    if inspect.isawaitable(value):
        return await value
    return value


def hook_callers(pm: pluggy.PluginManager, name: str) -> list[tuple[str, Any]]:
    """Hook ``name`` split into one caller per plugin, in pluggy's call order.

    Each caller is a pluggy subset hook caller that holds one plugin's
    implementation (and every hook wrapper), so calling it goes through
    pluggy like ``pm.hook.NAME(...)`` does: ``tryfirst``/``trylast``,
    wrappers and ``AHCORE_TRACE_PLUGINS`` tracing all apply. The kernel uses
    it where the contract asks for one plugin at a time: start-up hooks run
    to the end before the next begins, and one plugin's failure in
    ``on_hot_reload``/``on_shutdown`` does not stop the others.
    """
    hook = getattr(pm.hook, name)
    impls = hook.get_hookimpls()  # pluggy calls these last to first
    plain = [impl for impl in impls if not (impl.hookwrapper or impl.wrapper)]
    callers = []
    for impl in reversed(plain):
        others = {other.plugin for other in plain if other.plugin is not impl.plugin}
        callers.append((impl.plugin_name, pm.subset_hook_caller(name, remove_plugins=others)))
    return callers


async def call_each(
    pm: pluggy.PluginManager, name: str, *, isolate: bool = False, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call hook ``name`` one plugin at a time and await each result.

    Returns ``(plugin name, result)`` pairs in call order. With ``isolate``
    an exception is logged with the plugin's name and the next plugin is
    called; without it, the exception propagates.
    """
    results = []
    for plugin, caller in hook_callers(pm, name):
        try:
            for result in caller(**kwargs):
                results.append((plugin, await await_me_maybe(result)))
        except Exception:
            if not isolate:
                raise
            log.exception("%s of plugin %r failed", name, plugin)
    return results


def fast_caller(caller: Any) -> Any:
    """``caller`` (a pluggy hook caller), or a plain function doing the same when it can.

    When no implementation is a wrapper and the hook is not ``firstresult``,
    pluggy's dispatch is a loop over the implementations, last registered
    (and ``tryfirst``) first, leaving out ``None`` results. ``fast(**kwargs)``
    runs that loop itself, without pluggy's argument checks and result
    objects on every call: for hooks called per request, looked up once the
    site's plugins are fixed. With ``AHCORE_TRACE_PLUGINS=1`` the pluggy
    caller is kept, so the call is traced.
    """
    impls = caller.get_hookimpls()
    if os.environ.get("AHCORE_TRACE_PLUGINS") == "1":
        return caller
    spec = getattr(caller, "spec", None)
    if spec is not None and spec.opts.get("firstresult"):
        return caller
    if any(impl.hookwrapper or getattr(impl, "wrapper", False) for impl in impls):
        return caller
    # pluggy calls the list from its end (see pluggy._execution._multicall).
    calls = tuple((impl.function, tuple(impl.argnames)) for impl in reversed(impls))
    if len(calls) == 1:
        function, names = calls[0]

        def fast_one(**kwargs: Any) -> list[Any]:
            result = function(*[kwargs[name] for name in names])
            return [] if result is None else [result]

        return fast_one

    if all(len(names) == 1 for _, names in calls) and len({n for _, n in calls}) == 1:
        # Every implementation takes the same one argument (request_namespace's
        # ``context``): pass it along without building an argument list per call.
        (name,) = calls[0][1]
        functions = tuple(function for function, _ in calls)

        def fast_single(**kwargs: Any) -> list[Any]:
            arg = kwargs[name]
            results = []
            for function in functions:
                result = function(arg)
                if result is not None:
                    results.append(result)
            return results

        return fast_single

    def fast(**kwargs: Any) -> list[Any]:
        # As pluggy: only the arguments each implementation names, None results left out.
        results = []
        for function, names in calls:
            result = function(*[kwargs[name] for name in names])
            if result is not None:
                results.append(result)
        return results

    return fast


def canonical_driver(name: str) -> str:
    """The plugin (entry name) that serves a ``databases.*.driver`` value, aliases resolved."""
    return DRIVER_ALIASES.get(name.lower(), name.lower())


#: Plugins shipped inside the kernel distribution.
KERNEL_PLUGINS = frozenset({"sqlite"})

#: The plugins shipped in the ahcore sources (``plugins/ahcore_NAME``): only
#: used to word install advice, never to decide what is enabled.
SOURCE_TREE_PLUGINS = frozenset(
    {"dspy", "tmpl", "md", "xlsxds", "sqlds", "rbac", "mysql", "postgres", "compat"}
)


def distribution_hint(plugin: str) -> str:
    """The distribution that provides ``plugin`` (ahcore's own are named ``ahcore-NAME``)."""
    return "ahcore" if plugin in KERNEL_PLUGINS else f"ahcore-{plugin}"


def install_advice(plugin: str) -> str:
    """What to install for a missing ``plugin`` or processor, in a site owner's words.

    The kernel and its plugins are installed from local paths in one command
    (an unrelated project called ``ahcore`` is on the public package index),
    so the advice for ahcore's own plugins names the folder, not ``pip
    install NAME``; for other names it can only say what the distribution
    would be called under ahcore's naming.
    """
    dist = distribution_hint(plugin)
    if plugin in KERNEL_PLUGINS:
        return "reinstall ahcore: the kernel distribution includes it"
    if plugin in SOURCE_TREE_PLUGINS:
        return (
            f"install the distribution {dist!r} (pip install ./plugins/{dist.replace('-', '_')} "
            "from the ahcore sources, in the same command as the kernel)"
        )
    return f"install the distribution that provides it ({dist!r} under ahcore's naming)"


def _kernel_version() -> str:
    try:
        return version("ahcore")
    except PackageNotFoundError:  # a source tree that is not installed
        return "?"


def as_list(value: Any) -> list[Any]:
    """A hook result as a list: ``None`` → ``[]``, one item → ``[item]``."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


@dataclass(frozen=True)
class InstalledPlugin:
    name: str
    entry_point: EntryPoint

    @property
    def distribution(self) -> str:
        dist = self.entry_point.dist
        return dist.name if dist is not None else "?"

    @property
    def version(self) -> str:
        dist = self.entry_point.dist
        return dist.version if dist is not None else "?"


def installed_plugins() -> dict[str, InstalledPlugin]:
    """Every plugin installed in this environment, by entry name."""
    found: dict[str, InstalledPlugin] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, InstalledPlugin(ep.name, ep))
    return found


# ---------------------------------------------------------------- enablement

#: Why a plugin is enabled; it decides what a missing install means. Named in
#: ``plugins``: a start-up error. Named in ``website.processors``: the
#: processor's files answer 501. A database's driver: a start-up error
#: (reported by the site, which knows the database). The kernel's SQLite
#: driver, wanted by default: nothing. An ahserver built-in (below), installed
#: and so wanted: its import error is a start-up error.
Reason = Literal["plugins", "website.processors", "databases", "kernel", "ahserver"]

#: Plugins standing for what ahserver had built in without naming it in its
#: config (the script names of older ahserver versions, the ``ahserver``
#: package for app modules): a site without a ``plugins`` section — every
#: ahserver config — gets them whenever they are installed. A site with the
#: section lists them like any plugin.
AHSERVER_BUILTINS: tuple[str, ...] = ("compat",)


@dataclass(frozen=True)
class Enablement:
    """One plugin a site enables: its settings, and the config key that asked for it."""

    settings: dict[str, Any]
    reason: Reason
    where: str  # config path for messages: "plugins.dspy", "databases.main.driver"


def disabled_plugins(config: SiteConfig) -> frozenset[str]:
    """Plugins the ``plugins`` section switches off with ``false``."""
    return frozenset(name for name, value in (config.plugins or {}).items() if value is False)


def enablements(
    config: SiteConfig, installed: Iterable[str] | None = None
) -> dict[str, Enablement]:
    """Plugin name → why and with which settings this site enables it.

    With a ``plugins`` section: each key whose value is ``true`` or an object.
    Without one: the processors named in ``website.processors``, and those of
    :data:`AHSERVER_BUILTINS` that are in ``installed`` (names of installed
    plugins; ``None`` leaves them out). Either way: the driver of every
    database, and the kernel's SQLite driver, unless the section sets them
    to ``false``.
    """
    wanted: dict[str, Enablement] = {}
    if config.plugins is not None:
        for name, value in config.plugins.items():
            if value is not False:
                settings = value if isinstance(value, dict) else {}
                wanted[name] = Enablement(settings, "plugins", f"plugins.{name}")
    else:
        for i, (_, processor) in enumerate(config.website.processors or []):
            wanted.setdefault(
                processor, Enablement({}, "website.processors", f"website.processors[{i}]")
            )
        present = set(installed or ())
        for name in AHSERVER_BUILTINS:
            if name in present:
                wanted.setdefault(
                    name, Enablement({}, "ahserver", f"the installed plugin {name!r}")
                )
    off = disabled_plugins(config)
    for db_name, db in config.databases.items():
        driver = canonical_driver(db.driver)
        if driver not in off:
            wanted.setdefault(driver, Enablement({}, "databases", f"databases.{db_name}.driver"))
    if "sqlite" not in off:
        wanted.setdefault("sqlite", Enablement({}, "kernel", "the kernel's SQLite driver"))
    return wanted


def wanted_plugins(
    config: SiteConfig, installed: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Plugin name → settings for the plugins this site enables (see :func:`enablements`)."""
    return {name: e.settings for name, e in enablements(config, installed).items()}


# ---------------------------------------------------------------- discovery


@dataclass(frozen=True)
class ProcessorOffer:
    """A processor that an installed plugin provides but this site does not enable.

    Known so that its files are never sent raw and so that ``ahcore check``
    can say which plugin to enable.
    """

    processor: str
    suffixes: tuple[str, ...]
    plugin: str
    distribution: str


def offered_processors(name: str, plugin: object) -> list[ProcessorSpec]:
    """The processor specs ``plugin`` declares, without enabling it.

    The plugin is registered in a throw-away manager on which only
    ``register_processor`` is ever called: none of its other hooks run and
    the site's own manager never sees it.
    """
    probe = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    probe.add_hookspecs(hookspecs)
    probe.register(plugin, name=name)
    specs: list[ProcessorSpec] = []
    for result in probe.hook.register_processor():
        if inspect.iscoroutine(result):
            result.close()
            raise TypeError("register_processor must be synchronous")
        specs.extend(as_list(result))
    return specs


def _distribution_of(
    name: str, installed: Mapping[str, InstalledPlugin], extra: Mapping[str, object]
) -> str:
    if name in extra:
        return "in-process plugin"
    if name in installed:
        return installed[name].distribution
    return distribution_hint(name)


def _plugin_named(name: str, dist: str) -> str:
    """``the plugin 'tmpl' (ahcore-tmpl)``; without the distribution when it is unknown."""
    return f"the plugin {name!r}" + (f" ({dist})" if dist != "?" else "")


@dataclass
class LoadedPlugins:
    """What :func:`load_plugins` made for one application."""

    pm: pluggy.PluginManager
    #: processors of installed plugins this site does not enable
    offers: list[ProcessorOffer]
    #: problems that do not stop start-up (logged, listed by ``ahcore check``,
    #: refused by ``ahcore serve --strict``)
    warnings: list[str]


def load_plugins(
    config: SiteConfig,
    *,
    builtins: Iterable[tuple[str, object]] = (),
    extra: Mapping[str, object] | None = None,
    available: Mapping[str, InstalledPlugin] | None = None,
) -> LoadedPlugins:
    """Build the plugin manager for one application and learn every installed processor.

    ``builtins`` are kernel plugins that are always on. ``extra`` maps names to
    plugin objects supplied in-process (tests, embedding) — they are treated
    as installed but, like any plugin, only registered when the config
    enables them. ``available`` replaces the installed set (tests).

    Raises :class:`PluginError` listing every missing or broken plugin the
    site enables, so the server never starts with a half-loaded set.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if os.environ.get("AHCORE_TRACE_PLUGINS") == "1":
        tracer = logging.getLogger("ahcore.plugins.trace")
        pm.trace.root.setwriter(lambda msg: tracer.warning("%s", msg.rstrip()))
        pm.enable_tracing()

    for name, builtin in builtins:
        pm.register(builtin, name=name)

    installed = installed_plugins() if available is None else dict(available)
    extra = dict(extra or {})

    # Every installed plugin is imported, enabled or not: see "Suffix
    # discovery" in the module docstring.
    objects: dict[str, object] = dict(extra)
    import_errors: dict[str, str] = {}
    for name, plugin in installed.items():
        if name in objects:
            continue
        try:
            objects[name] = plugin.entry_point.load()
        except Exception as exc:  # the plugin's own import error
            import_errors[name] = f"{type(exc).__name__}: {exc}"

    wanted = enablements(config, installed=[*objects, *import_errors])
    offers: dict[str, list[ProcessorOffer]] = {}
    warnings: list[str] = []
    for name, obj in objects.items():
        if name in wanted:
            continue
        dist = _distribution_of(name, installed, extra)
        try:
            specs = offered_processors(name, obj)
        except Exception as exc:
            warnings.append(
                f"{_plugin_named(name, dist)} is installed but its register_processor hook "
                f"fails ({type(exc).__name__}: {exc}); ahcore cannot tell which files it "
                "processes, so it cannot keep their source from being served: repair or "
                "uninstall it"
            )
            continue
        offers[name] = [
            ProcessorOffer(spec.name, tuple(spec.suffixes), name, dist) for spec in specs
        ]
    for name, error in import_errors.items():
        if name not in wanted:
            dist = installed[name].distribution
            warnings.append(
                f"{_plugin_named(name, dist)} is installed but cannot be imported ({error}); "
                "this site does not enable it, but ahcore cannot tell which files it "
                "processes, so it cannot keep their source from being served: repair or "
                "uninstall it"
            )

    # A processor named in website.processors (no plugins section) is
    # usually provided by the plugin of the same name; else by whichever
    # installed plugin declares a processor of that name.
    for name, why in list(wanted.items()):
        if why.reason != "website.processors" or name in objects or name in import_errors:
            continue
        del wanted[name]
        provider = next(
            (o.plugin for found in offers.values() for o in found if o.processor == name), None
        )
        if provider is not None:
            wanted.setdefault(provider, why)

    problems: list[str] = []
    for name, why in wanted.items():
        if name in import_errors:
            dist = installed[name].distribution
            off = (
                f'switch it off with "{name}": false in the plugins section'
                if why.reason != "website.processors"
                else "remove its suffixes from website.processors"
            )
            problems.append(
                f"{why.where}: {_plugin_named(name, dist)} cannot be imported: "
                f"{import_errors[name]}; reinstall it, or {off}"
            )
            continue
        if name not in objects:
            if why.reason == "plugins":
                guess = did_you_mean(name, [*objects, *import_errors])
                if guess is not None:
                    problems.append(
                        f"{why.where}: no plugin {name!r} is installed; did you mean "
                        f'"{guess}"? Rename the key to "{guess}", or remove "{name}" '
                        "from the plugins section"
                    )
                    continue
                problems.append(
                    f"{why.where}: no plugin {name!r} is installed; {install_advice(name)}, "
                    f'or remove "{name}" from the plugins section'
                )
            # website.processors: the site answers 501 for those files;
            # databases: the site names the database; kernel: nothing to do.
            continue
        try:
            pm.register(objects[name], name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            dist = _distribution_of(name, installed, extra)
            problems.append(
                f"{why.where}: {_plugin_named(name, dist)} does not fit this ahcore "
                f"({_kernel_version()}): {exc}; install the release of it made for this ahcore"
            )
        offers.pop(name, None)
    if problems:
        raise PluginError(problems)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            [
                f"{exc}: a plugin implements a hook ahcore does not know (a misspelt hook name, "
                "or a plugin written for another ahcore version)"
            ]
        ) from None
    return LoadedPlugins(pm, [o for found in offers.values() for o in found], warnings)


def create_plugin_manager(
    config: SiteConfig,
    *,
    builtins: Iterable[tuple[str, object]] = (),
    extra: Mapping[str, object] | None = None,
    available: Mapping[str, InstalledPlugin] | None = None,
) -> pluggy.PluginManager:
    """The plugin manager of :func:`load_plugins` alone (for tools that serve no files)."""
    return load_plugins(config, builtins=builtins, extra=extra, available=available).pm
