"""Plugins: enabled by config, missing/broken/unknown hooks stop start-up, one manager per app."""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from ahcore import hookimpl
from ahcore.app import create_app
from ahcore.appkeys import get_site
from ahcore.config import SiteConfig, validate
from ahcore.plugins import InstalledPlugin, PluginError, create_plugin_manager, wanted_plugins

ROOT = Path(__file__).resolve().parents[1]


def cfg(**raw) -> SiteConfig:
    raw.setdefault("website", {})
    raw["website"].setdefault("paths", [["wwwroot", ""]])  # relative to the workdir
    return validate(raw)


def test_plugins_section_enables_exactly_what_it_names():
    c = cfg(plugins={"dspy": True, "sqlds": {"time_limit_ms": 1000}, "md": False})
    assert wanted_plugins(c) == {"dspy": {}, "sqlds": {"time_limit_ms": 1000}}


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


def test_installed_is_not_enabled(site_dir, echo_plugin):
    c = cfg(website={"paths": [[str(site_dir / "wwwroot"), ""]]}, plugins={})
    app = create_app(site_dir, config=c, extra_plugins={"echo": echo_plugin})
    assert get_site(app).specs == {}
    assert not get_site(app).pm.is_registered(echo_plugin)


def test_missing_plugin_names_the_distribution():
    with pytest.raises(PluginError) as info:
        create_plugin_manager(cfg(plugins={"dspy": True}), available={})
    assert "install the distribution 'ahcore-dspy'" in str(info.value)


def test_processor_suffix_without_enabled_plugin_is_a_startup_error(site_dir, echo_plugin):
    c = cfg(website={"processors": [[".echo", "echo"], [".tmpl", "tmpl"]]}, plugins={"echo": True})
    with pytest.raises(PluginError) as info:
        create_app(site_dir, config=c, extra_plugins={"echo": echo_plugin})
    assert "suffix '.tmpl' uses processor 'tmpl'" in str(info.value)
    assert "ahcore-tmpl" in str(info.value)


def test_broken_plugin_is_named_with_its_error():
    broken = InstalledPlugin(
        "broken", EntryPoint("broken", "ahcore_no_such_module_xyz.plugin", "ahcore")
    )
    missing_too = cfg(plugins={"broken": True, "absent": True})
    with pytest.raises(PluginError) as info:
        create_plugin_manager(missing_too, available={"broken": broken})
    text = str(info.value)
    # every problem is listed, not just the first
    assert "plugin 'broken'" in text and "failed to import: ModuleNotFoundError" in text
    assert "plugin 'absent'" in text


def test_unknown_hook_implementation_is_an_error():
    class Misspelled:
        @hookimpl
        def register_procesor(self):  # typo: not a hook
            return []

    with pytest.raises(PluginError, match="unknown hook implementation"):
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
