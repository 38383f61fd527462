"""Hooks are dispatched by pluggy: its ordering rules, wrappers, firstresult and tracing hold."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import pytest

from ahcore.api import get_site, hookimpl

needs_dspy = pytest.mark.skipif(
    importlib.util.find_spec("ahcore_dspy") is None,
    reason="needs the dspy plugin (not in the kernel-only session)",
)


def _plugin(name: str, calls: list[str], **marks: Any) -> Any:
    """A plugin object whose on_startup/on_shutdown/on_hot_reload record their call."""

    @hookimpl(**marks)
    def on_startup(app: Any) -> None:
        calls.append(f"start:{name}")

    @hookimpl(**marks)
    async def on_shutdown(app: Any) -> None:
        calls.append(f"stop:{name}")

    @hookimpl(**marks)
    def on_hot_reload(app: Any, data: Any) -> None:
        calls.append(f"reload:{name}")

    return _hashable(on_startup=on_startup, on_shutdown=on_shutdown, on_hot_reload=on_hot_reload)


def _hashable(**hooks: Any) -> Any:
    """A plugin object holding ``hooks`` (hashable, as pluggy's subset callers need)."""
    return type("Plugin", (), {k: staticmethod(v) for k, v in hooks.items()})()


def _site(make_site: Any, names: list[str]) -> Any:
    return make_site(config={"plugins": {n: True for n in names}})


async def test_tryfirst_runs_first_and_trylast_last(make_site, ahcore_client):
    calls: list[str] = []
    plugins = {
        "early": _plugin("early", calls, trylast=True),
        "plain": _plugin("plain", calls),
        "late": _plugin("late", calls, tryfirst=True),
    }
    site = _site(make_site, list(plugins))
    client = await ahcore_client(site, extra_plugins=plugins)
    # tryfirst first, trylast last, whatever the registration order
    assert [c for c in calls if c.startswith("start:")] == ["start:late", "start:plain", "start:early"]
    await get_site(client.app).hot_reload({"source": "test"})  # type: ignore[attr-defined]
    assert [c for c in calls if c.startswith("reload:")] == [
        "reload:late",
        "reload:plain",
        "reload:early",
    ]
    await client.close()
    assert [c for c in calls if c.startswith("stop:")] == ["stop:late", "stop:plain", "stop:early"]


async def test_plain_implementations_run_last_registered_first(make_site, ahcore_client):
    calls: list[str] = []
    plugins = {"one": _plugin("one", calls), "two": _plugin("two", calls)}
    site = _site(make_site, list(plugins))
    client = await ahcore_client(site, extra_plugins=plugins)
    assert [c for c in calls if c.startswith("start:")] == ["start:two", "start:one"]
    await client.close()


async def test_a_failing_hot_reload_plugin_does_not_stop_the_others(make_site, ahcore_client, caplog):
    calls: list[str] = []

    class Broken:
        @hookimpl(tryfirst=True)
        def on_hot_reload(self, app: Any, data: Any) -> None:
            raise RuntimeError("broken plugin")

    plugins = {"broken": Broken(), "fine": _plugin("fine", calls)}
    client = await ahcore_client(_site(make_site, list(plugins)), extra_plugins=plugins)
    with caplog.at_level(logging.ERROR):
        await get_site(client.app).hot_reload({"source": "test"})  # type: ignore[attr-defined]
    assert "reload:fine" in calls
    assert "on_hot_reload of plugin 'broken' failed" in caplog.text
    await client.close()


async def test_a_wrapper_wraps_every_startup_call(make_site, ahcore_client):
    calls: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def on_startup(self, app: Any) -> Any:
            calls.append("before")
            result = yield
            calls.append("after")
            return result

    plugins = {"wrap": Wrapper(), "one": _plugin("one", calls)}
    client = await ahcore_client(_site(make_site, list(plugins)), extra_plugins=plugins)
    assert calls[:3] == ["before", "start:one", "after"]
    await client.close()


@needs_dspy
async def test_identify_user_is_firstresult_and_awaits_async_answers(make_site, ahcore_client):
    asked: list[str] = []

    class Abstains:
        @hookimpl(tryfirst=True)
        async def identify_user(self, request: Any) -> None:
            asked.append("abstains")
            return None

    class Knows:
        @hookimpl
        async def identify_user(self, request: Any) -> str:
            asked.append("knows")
            return "alice"

    class NeverAsked:
        @hookimpl(trylast=True)
        def identify_user(self, request: Any) -> str:
            asked.append("never")
            return "mallory"

    plugins = {"abstains": Abstains(), "knows": Knows(), "never": NeverAsked()}
    site = make_site(
        config={"plugins": {**{n: True for n in plugins}, "dspy": True}},
        files={"wwwroot/who.dspy": "return {'user': await get_user()}"},
    )
    client = await ahcore_client(site, extra_plugins=plugins)
    resp = await client.get("/who.dspy")
    assert resp.status == 200
    assert await resp.json() == {"user": "alice"}
    assert asked == ["abstains", "knows"]
    await client.close()


@needs_dspy
async def test_trace_shows_every_kind_of_hook_call(make_site, ahcore_client, caplog, monkeypatch):
    monkeypatch.setenv("AHCORE_TRACE_PLUGINS", "1")
    calls: list[str] = []

    @hookimpl
    def request_namespace(context: Any) -> dict[str, Any]:
        return {"traced": True}

    plugins = {"one": _plugin("one", calls), "names": _hashable(request_namespace=request_namespace)}
    site = make_site(
        config={"plugins": {"one": True, "names": True, "dspy": True}},
        files={"wwwroot/a.dspy": "return {'ok': traced}"},
    )
    with caplog.at_level(logging.WARNING, logger="ahcore.plugins.trace"):
        client = await ahcore_client(site, extra_plugins=plugins)
        assert (await client.get("/a.dspy")).status == 200
        await get_site(client.app).hot_reload({"source": "test"})  # type: ignore[attr-defined]
        await client.close()
    for hook in (
        "register_processor",
        "register_db_driver",
        "register_routes",
        "env_globals",
        "on_startup",
        "request_namespace",
        "on_hot_reload",
        "on_shutdown",
    ):
        assert hook in caplog.text, f"{hook} was not traced"


@pytest.mark.parametrize("marks", [{"tryfirst": True}, {"trylast": True}])
async def test_processor_registration_follows_pluggy_order(make_site, ahcore_client, marks):
    """Two plugins declaring one processor name: the error names both, in call order."""
    from ahcore.api import PluginError, Processor, ProcessorSpec

    class P(Processor):
        async def produce(self, context: Any) -> Any:
            return "x"

    def declaring(tag: str, **m: Any) -> Any:
        @hookimpl(**m)
        def register_processor() -> ProcessorSpec:
            return ProcessorSpec(name="dup", suffixes=(".dup",), factory=P)

        return _hashable(register_processor=register_processor)

    plugins = {"a": declaring("a", **marks), "b": declaring("b")}
    site = _site(make_site, list(plugins))
    with pytest.raises(PluginError) as info:
        await ahcore_client(site, extra_plugins=plugins)
    first, second = ("a", "b") if "tryfirst" in marks else ("b", "a")
    assert f"declared by both {first!r} and {second!r}" in str(info.value)
