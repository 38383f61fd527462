"""Plugin discovery, enablement and the per-application plugin manager.

Plugins are modules registered in the ``ahcore`` entry-point group; the entry
name is the name used in config. Installed is not enabled: the site's
``plugins`` section enables and configures them. When that section is absent
(every ahserver config), the plugins the config *uses* are enabled: the
processors named in ``website.processors`` and the drivers of ``databases``.

Plugins load when an application is built, never at import time, and each
application gets its own :class:`pluggy.PluginManager`.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from ahcore import hookspecs
from ahcore.config import SiteConfig

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


def canonical_driver(name: str) -> str:
    return DRIVER_ALIASES.get(name.lower(), name.lower())


def distribution_hint(plugin: str) -> str:
    """The distribution to install for a missing plugin (ours follow ahcore-NAME)."""
    return "ahcore (the kernel)" if plugin == "sqlite" else f"ahcore-{plugin}"


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


def wanted_plugins(config: SiteConfig) -> dict[str, dict[str, Any]]:
    """Plugin name → settings for the plugins this site enables.

    With a ``plugins`` section: each key whose value is ``true`` or an object.
    Without one: the processors named in ``website.processors`` and the
    drivers the databases use.
    """
    if config.plugins is not None:
        return {
            name: (value if isinstance(value, dict) else {})
            for name, value in config.plugins.items()
            if value is not False
        }
    wanted: dict[str, dict[str, Any]] = {}
    for _, processor in config.website.processors or []:
        wanted.setdefault(processor, {})
    for db in config.databases.values():
        wanted.setdefault(canonical_driver(db.driver), {})
    return wanted


def create_plugin_manager(
    config: SiteConfig,
    *,
    builtins: Iterable[tuple[str, object]] = (),
    extra: Mapping[str, object] | None = None,
    available: Mapping[str, InstalledPlugin] | None = None,
) -> pluggy.PluginManager:
    """Build the plugin manager for one application.

    ``builtins`` are kernel plugins that are always on. ``extra`` maps names to
    plugin objects supplied in-process (tests, embedding) — they are treated
    as installed but, like any plugin, only registered when the config
    enables them. Raises :class:`PluginError` listing every missing or broken
    plugin, so the server never starts with a half-loaded set.
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
    problems: list[str] = []
    for name in wanted_plugins(config):
        if name in extra:
            plugin: object = extra[name]
        elif name in installed:
            try:
                plugin = installed[name].entry_point.load()
            except Exception as exc:  # the plugin's own import error
                problems.append(
                    f"plugin {name!r} ({installed[name].distribution}) failed to import: "
                    f"{type(exc).__name__}: {exc}"
                )
                continue
        else:
            problems.append(
                f"plugin {name!r} is enabled in the config but not installed; "
                f"install the distribution {distribution_hint(name)!r}"
            )
            continue
        try:
            pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            problems.append(f"plugin {name!r} is invalid: {exc}")
    if problems:
        raise PluginError(problems)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError([f"unknown hook implementation: {exc}"]) from None
    return pm


