"""Plugins: enabled by config, missing/broken/unknown hooks stop start-up, one manager per app."""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from ahcore import Processor, ProcessorSpec, hookimpl
from ahcore.app import BUILTIN_PLUGINS, create_app
from ahcore.appkeys import get_site
from ahcore.config import SiteConfig, validate
from ahcore.db.pools import get_pools
from ahcore.plugins import (
    InstalledPlugin,
    PluginError,
    create_plugin_manager,
    installed_plugins,
    load_plugins,
    wanted_plugins,
)
from ahcore.site import Site

ROOT = Path(__file__).resolve().parents[1]


def cfg(**raw) -> SiteConfig:
    raw.setdefault("website", {})
    raw["website"].setdefault("paths", [["wwwroot", ""]])  # relative to the workdir
    return validate(raw)


def test_plugins_section_enables_exactly_what_it_names():
    c = cfg(plugins={"dspy": True, "sqlds": {"time_limit_ms": 1000}, "md": False})
    # ... and the kernel's SQLite driver, which is always there
    assert wanted_plugins(c) == {"dspy": {}, "sqlds": {"time_limit_ms": 1000}, "sqlite": {}}
    assert "sqlite" not in wanted_plugins(cfg(plugins={"sqlite": False}))


def test_the_driver_of_every_database_is_enabled_with_or_without_a_plugins_section():
    dbs = {"a": {"driver": "aiomysql"}, "b": {"driver": "aiosqlite"}}
    assert set(wanted_plugins(cfg(databases=dbs, plugins={"dspy": True}))) == {
        "dspy",
        "mysql",
        "sqlite",
    }
    # false still wins: the site then fails to start naming the database (below)
    assert set(wanted_plugins(cfg(databases=dbs, plugins={"mysql": False}))) == {"sqlite"}


async def test_a_plugins_section_that_forgets_the_driver_still_reaches_the_database(
    make_site, ahcore_client, echo_plugin
):
    """The reported bug: processors listed in plugins, the SQLite driver not."""
    site = make_site(
        config={
            "databases": {"testdb": {"driver": "aiosqlite", "kwargs": {"dbname": "$[workdir]$/t.db"}}},
            "plugins": {"echo": True},
        },
    )
    client = await ahcore_client(site, extra_plugins={"echo": echo_plugin})
    assert "sqlite" in get_site(client.app).drivers
    pools = get_pools(client.app)
    async with pools.sqlorContext("testdb") as sor:
        assert await sor.sqlExe("select 41 + 1 as n", {}) == [{"n": 42}]


def test_a_database_whose_driver_is_switched_off_or_missing_names_what_to_do(site_dir):
    off = cfg(databases={"main": {"driver": "aiosqlite"}}, plugins={"sqlite": False})
    with pytest.raises(PluginError) as info:
        create_app(site_dir, config=off)
    assert "databases.main.driver: 'aiosqlite'" in str(info.value)
    assert '"sqlite": false' in str(info.value)
    missing = cfg(databases={"main": {"driver": "aiomysql"}})
    only_the_kernel = {"sqlite": installed_plugins()["sqlite"]}
    pm = create_plugin_manager(missing, builtins=BUILTIN_PLUGINS, available=only_the_kernel)
    with pytest.raises(PluginError) as info:
        Site(site_dir, missing, pm)
    text = str(info.value)
    assert "databases.main.driver: 'aiomysql' needs the driver plugin 'mysql'" in text
    assert "pip install ./plugins/ahcore_mysql" in text
    unknown = cfg(databases={"main": {"driver": "cx_Oracle"}})
    with pytest.raises(PluginError, match="not a driver ahcore knows"):
        create_app(site_dir, config=unknown)


def test_without_plugins_section_the_config_uses_decide():
    c = cfg(
        website={"processors": [[".tmpl", "tmpl"], [".tmpl.js", "tmpl"], [".dspy", "dspy"]]},
        databases={
            "a": {"driver": "aiomysql"},
            "b": {"driver": "psycopg2"},
            "c": {"driver": "sqlite3"},
        },
    )
    assert set(wanted_plugins(c)) == {"tmpl", "dspy", "mysql", "postgres", "sqlite"}


def test_ahserver_builtins_are_on_when_installed_and_no_plugins_section():
    bare = cfg(website={"processors": [[".dspy", "dspy"]]})
    assert set(wanted_plugins(bare, installed=["compat", "md"])) == {"dspy", "compat", "sqlite"}
    assert set(wanted_plugins(bare, installed=["md"])) == {"dspy", "sqlite"}  # not installed
    listed = cfg(plugins={"dspy": True})
    assert set(wanted_plugins(listed, installed=["compat"])) == {"dspy", "sqlite"}  # lists it
    # through the plugin manager: an in-process "compat" counts as installed
    marker, dspy = type("Compat", (), {})(), type("Dspy", (), {})()
    pm = create_plugin_manager(bare, available={}, extra={"compat": marker, "dspy": dspy})
    assert pm.get_plugin("compat") is marker


def test_installed_is_not_enabled(site_dir, echo_plugin):
    c = cfg(website={"paths": [[str(site_dir / "wwwroot"), ""]]}, plugins={})
    app = create_app(site_dir, config=c, extra_plugins={"echo": echo_plugin})
    assert get_site(app).specs == {}
    assert not get_site(app).pm.is_registered(echo_plugin)


def test_missing_plugin_names_the_distribution():
    with pytest.raises(PluginError) as info:
        create_plugin_manager(cfg(plugins={"dspy": True}), available={})
    assert "install the distribution 'ahcore-dspy'" in str(info.value)


def test_a_named_processor_that_is_installed_but_not_enabled_does_not_stop_start_up(
    site_dir, echo_plugin
):
    c = cfg(website={"processors": [[".echo", "echo"], [".params", "params"]]}, plugins={})
    site = get_site(create_app(site_dir, config=c, extra_plugins={"echo": echo_plugin}))
    gap = site.gaps[".echo"]
    assert gap.status == 404 and not gap.deliberate
    assert "installed but not enabled" in gap.message
    assert 'add "echo": true to the plugins section' in gap.message
    assert {".echo", ".params"} <= set(site.never_raw)


def test_a_processor_no_installed_plugin_provides_does_not_stop_start_up(site_dir, caplog):
    c = cfg(website={"processors": [[".xterm", "xterm"], [".llm", "llm"]]})
    site = get_site(create_app(site_dir, config=c))
    assert {s: g.status for s, g in site.gaps.items()} == {".xterm": 501, ".llm": 501}
    assert "'ahcore-xterm'" in site.gaps[".xterm"].message
    site.log_problems()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and "'xterm'" in errors[0].getMessage()


def test_a_processor_is_found_in_the_plugin_that_declares_it(site_dir, echo_plugin):
    """Without a plugins section, website.processors names processors, not plugins:
    'echojs' is enabled through the 'echo' plugin that declares it."""
    c = cfg(website={"processors": [[".echo.js", "echojs"]]})
    site = get_site(create_app(site_dir, config=c, extra_plugins={"echo": echo_plugin}))
    assert site.pm.is_registered(echo_plugin)
    assert site.gaps == {}


def test_installed_processors_that_are_not_enabled_are_known_by_their_suffixes(site_dir, echo_plugin):
    c = cfg(plugins={})
    site = get_site(create_app(site_dir, config=c, extra_plugins={"echo": echo_plugin}))
    assert not site.pm.is_registered(echo_plugin)
    offered = {o.processor: o for o in site.offers}
    assert offered["echojs"].suffixes == (".echo.js",) and offered["echojs"].plugin == "echo"
    assert {".echo", ".echo.js", ".params", ".dspy", ".sqlds", ".py"} <= set(site.never_raw)


def test_discovery_runs_no_hook_but_register_processor(site_dir):
    calls: list[str] = []

    class Noisy:
        @hookimpl
        def register_processor(self):
            calls.append("register_processor")
            return []

        @hookimpl
        def env_globals(self, app):
            calls.append("env_globals")
            return {}

        @hookimpl
        def on_startup(self, app):
            calls.append("on_startup")

    site = get_site(create_app(site_dir, config=cfg(plugins={}), extra_plugins={"noisy": Noisy()}))
    assert calls == ["register_processor"]
    assert not site.pm.has_plugin("noisy")


def test_an_installed_plugin_that_cannot_be_imported_is_a_warning_unless_enabled(site_dir):
    broken = InstalledPlugin(
        "broken", EntryPoint("broken", "ahcore_no_such_module_xyz.plugin", "ahcore")
    )
    loaded = load_plugins(cfg(plugins={}), available={"broken": broken})
    assert len(loaded.warnings) == 1
    assert "cannot tell which files it processes" in loaded.warnings[0]
    assert "ModuleNotFoundError" in loaded.warnings[0]


def test_broken_plugin_is_named_with_its_error():
    broken = InstalledPlugin(
        "broken", EntryPoint("broken", "ahcore_no_such_module_xyz.plugin", "ahcore")
    )
    missing_too = cfg(plugins={"broken": True, "absent": True})
    with pytest.raises(PluginError) as info:
        create_plugin_manager(missing_too, available={"broken": broken})
    text = str(info.value)
    # every problem is listed, not just the first
    assert "plugins.broken: the plugin 'broken' cannot be imported: ModuleNotFoundError" in text
    assert "plugins.absent: no plugin 'absent' is installed" in text


def test_unknown_hook_implementation_is_an_error():
    class Misspelled:
        @hookimpl
        def register_procesor(self):  # typo: not a hook
            return []

    with pytest.raises(PluginError, match="register_procesor.*a hook ahcore does not know"):
        create_plugin_manager(
            cfg(plugins={"typo": True}), available={}, extra={"typo": Misspelled()}
        )


def test_two_apps_in_one_process_share_nothing(site_dir, echo_plugin):
    a = create_app(site_dir, extra_plugins={"echo": echo_plugin})
    b = create_app(site_dir, extra_plugins={"echo": echo_plugin})
    sa, sb = get_site(a), get_site(b)
    assert sa is not sb
    assert sa.pm is not sb.pm
    assert sa.processor_cache is not sb.processor_cache
    assert sa.events is not sb.events
    assert sa.resolver is not sb.resolver


async def test_hooks_may_be_sync_or_async_and_startup_shutdown_run(
    make_site, ahcore_client, echo_plugin
):
    calls: list[str] = []

    class Lifecycle:
        @hookimpl
        async def on_startup(self, app):
            calls.append("start")

        @hookimpl
        def on_shutdown(self, app):
            calls.append("stop")

        @hookimpl
        async def env_globals(self, app):
            return {"greeting": "hello"}

    site = make_site(config={"plugins": {"life": True, "echo": True}})
    client = await ahcore_client(site, extra_plugins={"life": Lifecycle(), "echo": echo_plugin})
    assert calls == ["start"]
    assert get_site(client.app).global_namespace["greeting"] == "hello"
    # the kernel's own names come through the same hook
    assert "configValue" in get_site(client.app).global_namespace
    await client.close()
    assert calls == ["start", "stop"]


def test_trace_env_var_traces_hook_calls(caplog):
    import os

    os.environ["AHCORE_TRACE_PLUGINS"] = "1"
    try:
        with caplog.at_level(logging.WARNING, logger="ahcore.plugins.trace"):
            pm = create_plugin_manager(cfg(), available={})
            pm.hook.register_processor()
    finally:
        del os.environ["AHCORE_TRACE_PLUGINS"]
    assert "register_processor" in caplog.text


def test_every_hook_is_documented_and_tested():
    from ahcore import hookspecs

    names = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "ahcore_spec")]
    assert set(names) >= {
        "register_processor",
        "register_db_driver",
        "env_globals",
        "request_namespace",
        "auth_check",
        "on_hot_reload",
        "on_startup",
        "on_shutdown",
        "register_routes",
        "check_settings",
    }
    tests_text = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    docs_text = (ROOT / "docs" / "plugins.md").read_text()
    for name in names:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
        assert name in tests_text, f"hook {name} has no test"
        assert f"`{name}" in docs_text, f"hook {name} is not in docs/plugins.md"


def test_kernel_imports_no_plugin():
    code = (
        "import sys, ahcore, ahcore.app, ahcore.cli, ahcore.server, ahcore.testing;"
        "bad=[m for m in sys.modules if m.startswith('ahcore_')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_plugin_versions_are_pinned_in_lockstep():
    import tomllib

    kernel = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for pyproject in (ROOT / "plugins").glob("*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        assert project["version"] == kernel, pyproject
        assert f"ahcore=={kernel}" in project["dependencies"], pyproject



class _LateNameProcessor(Processor):
    async def produce(self, context):
        return {"late": (await context.namespace()).get("late_name")}


class _LatePlugin:
    @hookimpl
    def register_processor(self):
        return ProcessorSpec("late", (".late",), _LateNameProcessor)


async def test_add_globals_reaches_scripts_of_a_started_app(make_site, ahcore_client):
    from ahcore.api import add_globals

    config = {"website": {"paths": [["$[workdir]$/wwwroot", ""]]}, "plugins": {"late": True}}
    workdir = make_site(config=config, files={"wwwroot/x.late": ""})
    with pytest.raises(RuntimeError, match="env_globals"):  # not started: use env_globals
        add_globals(create_app(workdir, extra_plugins={"late": _LatePlugin()}), {"late_name": 1})
    client = await ahcore_client(workdir, extra_plugins={"late": _LatePlugin()})
    assert await (await client.get("/x.late")).json() == {"late": None}
    add_globals(client.app, {"late_name": "now"})
    assert await (await client.get("/x.late")).json() == {"late": "now"}
