"""ahcore.plugins: enablement rules and one-plugin-at-a-time hook calls (direct calls).

Loading from entry points and start-up failures are tested in ``tests/test_plugins.py``.
"""

from __future__ import annotations

import logging

import pluggy
import pytest

from ahcore import ProcessorSpec, hookimpl, hookspecs
from ahcore.config import validate
from ahcore.plugins import (
    DRIVER_ALIASES,
    as_list,
    await_me_maybe,
    call_each,
    canonical_driver,
    disabled_plugins,
    enablements,
    hook_callers,
    install_advice,
    offered_processors,
    wanted_plugins,
)
from ahcore.processor import Processor


def cfg(**raw):
    raw.setdefault("website", {})
    raw["website"].setdefault("paths", [["wwwroot", ""]])
    return validate(raw)


# ---------------------------------------------------------------- enablement


def test_wanted_plugins_with_a_plugins_section() -> None:
    c = cfg(plugins={"dspy": True, "tmpl": {"autoescape": False}, "md": False})
    assert wanted_plugins(c) == {"dspy": {}, "tmpl": {"autoescape": False}, "sqlite": {}}
    assert disabled_plugins(c) == frozenset({"md"})


def test_without_a_section_the_processors_and_installed_builtins_are_wanted() -> None:
    c = cfg(website={"paths": [["w", ""]], "processors": [[".dspy", "dspy"], [".tmpl", "tmpl"]]})
    assert set(wanted_plugins(c)) == {"dspy", "tmpl", "sqlite"}
    assert set(wanted_plugins(c, installed=["compat", "other"])) == {"dspy", "tmpl", "sqlite", "compat"}
    # With a section, an installed ahserver built-in is only on when named.
    assert "compat" not in wanted_plugins(cfg(plugins={}), installed=["compat"])


def test_database_drivers_are_wanted_through_their_aliases_unless_switched_off() -> None:
    dbs = {"main": {"driver": "aiopg"}, "legacy": {"driver": "MySQL"}}
    why = enablements(cfg(databases=dbs, plugins={}))
    assert why["postgres"].reason == "databases" and why["postgres"].where == "databases.main.driver"
    assert why["mysql"].where == "databases.legacy.driver"
    assert why["sqlite"].reason == "kernel"
    off = wanted_plugins(cfg(databases=dbs, plugins={"postgres": False, "sqlite": False}))
    assert set(off) == {"mysql"}


def test_a_plugin_named_in_the_section_keeps_that_reason() -> None:
    why = enablements(cfg(plugins={"sqlite": {"x": 1}}, databases={"d": {"driver": "sqlite3"}}))
    assert why["sqlite"].reason == "plugins" and why["sqlite"].settings == {"x": 1}


@pytest.mark.parametrize(
    ("name", "plugin"),
    [("sqlite3", "sqlite"), ("aiosqlite", "sqlite"), ("mysql.connector", "mysql"),
     ("PyMySQL", "mysql"), ("mariadb", "mysql"), ("psycopg2", "postgres"),
     ("postgresql", "postgres"), ("Oracle", "oracle")],
)
def test_canonical_driver(name, plugin) -> None:
    assert canonical_driver(name) == plugin
    assert set(DRIVER_ALIASES.values()) == {"sqlite", "mysql", "postgres"}


def test_install_advice_names_the_right_thing() -> None:
    assert "reinstall ahcore" in install_advice("sqlite")
    assert "pip install ./plugins/ahcore_tmpl" in install_advice("tmpl")
    assert "'ahcore-llm'" in install_advice("llm")


def test_as_list() -> None:
    assert as_list(None) == []
    assert as_list(1) == [1]
    assert as_list((1, 2)) == [1, 2]
    assert as_list([1]) == [1]


async def test_await_me_maybe() -> None:
    async def coro():
        return 2

    assert await await_me_maybe(1) == 1
    assert await await_me_maybe(coro()) == 2


# ---------------------------------------------------------------- discovery


class Offers:
    started = False

    @hookimpl
    def register_processor(self):
        return ProcessorSpec("x", (".x",), Processor)

    @hookimpl
    def on_startup(self, app):
        type(self).started = True


def test_offered_processors_runs_only_register_processor() -> None:
    specs = offered_processors("offers", Offers())
    assert [s.name for s in specs] == ["x"]
    assert Offers.started is False


def test_an_async_register_processor_is_refused() -> None:
    class Async:
        @hookimpl
        async def register_processor(self):
            return []

    with pytest.raises(TypeError, match="register_processor must be synchronous"):
        offered_processors("async", Async())


# ---------------------------------------------------------------- one plugin at a time


def manager(*plugins: tuple[str, object]) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return pm


def recorder(log: list, name: str, *, fail: bool = False, tryfirst: bool = False, trylast: bool = False,
             is_async: bool = False):
    class Plugin:
        if is_async:

            @hookimpl(tryfirst=tryfirst, trylast=trylast)
            async def on_hot_reload(self, app, data):
                log.append(name)
                if fail:
                    raise RuntimeError(f"{name} failed")
                return name

        else:

            @hookimpl(tryfirst=tryfirst, trylast=trylast)
            def on_hot_reload(self, app, data):
                log.append(name)
                if fail:
                    raise RuntimeError(f"{name} failed")
                return name

    return Plugin()


def test_hook_callers_follow_pluggys_order() -> None:
    log: list = []
    pm = manager(
        ("a", recorder(log, "a")),
        ("first", recorder(log, "first", tryfirst=True)),
        ("b", recorder(log, "b")),
        ("last", recorder(log, "last", trylast=True)),
    )
    assert [name for name, _ in hook_callers(pm, "on_hot_reload")] == ["first", "b", "a", "last"]
    pm.hook.on_hot_reload(app=None, data={})
    assert log[:4] == ["first", "b", "a", "last"]  # the same order as a plain hook call
    log.clear()
    for _, caller in hook_callers(pm, "on_hot_reload"):
        caller(app=None, data={})
    assert log == ["first", "b", "a", "last"]  # each caller runs its own plugin only


def test_hook_callers_keep_wrappers_around_each_call() -> None:
    log: list = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def on_hot_reload(self, app, data):
            log.append("enter")
            result = yield
            log.append("leave")
            return result

    pm = manager(("a", recorder(log, "a")), ("b", recorder(log, "b")), ("w", Wrapper()))
    callers = hook_callers(pm, "on_hot_reload")
    assert [name for name, _ in callers] == ["b", "a"]  # a wrapper is no plugin call of its own
    for _, caller in callers:
        caller(app=None, data={})
    assert log == ["enter", "b", "leave", "enter", "a", "leave"]


async def test_call_each_awaits_each_result_in_order() -> None:
    log: list = []
    pm = manager(("sync", recorder(log, "sync")), ("async", recorder(log, "async", is_async=True)))
    results = await call_each(pm, "on_hot_reload", app=None, data={})
    assert results == [("async", "async"), ("sync", "sync")]


async def test_call_each_isolate_logs_a_failure_and_goes_on(caplog) -> None:
    log: list = []
    pm = manager(
        ("a", recorder(log, "a")),
        ("broken", recorder(log, "broken", fail=True, is_async=True)),
        ("c", recorder(log, "c")),
    )
    with caplog.at_level(logging.ERROR, logger="ahcore.plugins"):
        results = await call_each(pm, "on_hot_reload", isolate=True, app=None, data={})
    assert log == ["c", "broken", "a"]
    assert results == [("c", "c"), ("a", "a")]
    assert "on_hot_reload of plugin 'broken' failed" in caplog.text
    assert "broken failed" in caplog.text


async def test_call_each_without_isolate_stops_at_the_failure() -> None:
    log: list = []
    pm = manager(("a", recorder(log, "a")), ("broken", recorder(log, "broken", fail=True)))
    with pytest.raises(RuntimeError, match="broken failed"):
        await call_each(pm, "on_hot_reload", app=None, data={})
    assert log == ["broken"]


async def test_call_each_on_a_hook_nobody_implements() -> None:
    assert await call_each(manager(), "on_hot_reload", app=None, data={}) == []
    assert hook_callers(manager(), "on_shutdown") == []


def test_fast_caller_answers_as_pluggy_would(monkeypatch) -> None:
    """One plain implementation is called directly, with pluggy's argument and None rules."""
    from ahcore.plugins import fast_caller

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)

    class Once:
        answer: object = None

        @hookimpl
        def request_namespace(self, context):  # type: ignore[no-untyped-def]
            return Once.answer if context == "ctx" else {"other": context}

    pm.register(Once(), name="once")
    hook = pm.hook.request_namespace
    fast = fast_caller(hook)
    assert fast is not hook
    assert fast(context="ctx") == hook(context="ctx") == []  # a None result is left out
    Once.answer = {"terminalType": "pc"}
    assert fast(context="ctx") == hook(context="ctx") == [{"terminalType": "pc"}]

    class Again:
        @hookimpl
        def request_namespace(self, context):  # type: ignore[no-untyped-def]
            return {"again": 1}

    pm.register(Again(), name="again")
    fast = fast_caller(hook)
    assert fast is not hook  # two plain implementations: still called directly
    assert fast(context="ctx") == hook(context="ctx") == [{"again": 1}, {"terminalType": "pc"}]

    class First:
        @hookimpl(tryfirst=True)
        def request_namespace(self, context):  # type: ignore[no-untyped-def]
            return {"first": context}

    pm.register(First(), name="first")
    assert fast_caller(hook)(context="ctx") == hook(context="ctx")  # pluggy's order
    assert hook(context="ctx")[0] == {"first": "ctx"}

    class Wrapper:
        @hookimpl(wrapper=True)
        def request_namespace(self, context):  # type: ignore[no-untyped-def]
            return (yield)

    pm.register(Wrapper(), name="wrapper")
    assert fast_caller(hook) is hook  # a wrapper: pluggy's dispatch
    for name in ("again", "first", "wrapper"):
        pm.unregister(name=name)
    monkeypatch.setenv("AHCORE_TRACE_PLUGINS", "1")
    assert fast_caller(hook) is hook  # traced: pluggy's dispatch
