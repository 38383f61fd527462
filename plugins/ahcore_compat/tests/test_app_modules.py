"""App modules written for ahserver: ServerEnv, events, start-up/clean-up, RegisterFunction.

Each test starts a site the way ``ahserver.webapp.webapp(init)`` does in a
worker — the application is built, ``init`` runs with it made current, then
it starts — but in-process, so several applications can share one process.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ahcore_compat.launcher import CompatInit
from ahcore_compat.serverenv import ServerEnv as CompatServerEnv
from ahserver.configuredServer import RegisterFunction, add_cleanup, add_cleanupctx, add_startup
from ahserver.serverenv import ServerEnv, get_serverenv, set_serverenv

from ahcore import create_app
from ahcore.api import PluginError, get_site
from ahcore.testing import SiteTestServer

# An ahserver config: no plugins section; compat is on because it is installed.
CONFIG = {
    "website": {
        "paths": [["$[workdir]$/wwwroot", ""]],
        "processors": [[".dspy", "dspy"]],
        "cookie_secret": "x" * 32,
    },
}

SCRIPT = """\
return {
    "db": get_module_dbname("orders"),
    "who": site_name,
    "late": late,
    "old": [callable(runSQL), callable(CRUD), callable(absurl)],
}
"""


def app_site(make_site: Callable[..., Path], name: str, **extra: Any) -> Path:
    return make_site(config={**CONFIG, **extra}, files={"wwwroot/env.dspy": SCRIPT}, name=name)


async def start(aiohttp_client: Any, workdir: Path, init: Callable[..., Any]) -> Any:
    """Build the site's app, run ``init`` as ``webapp(init)`` does, start it."""
    app = create_app(workdir)
    CompatInit(init)(app)
    return await aiohttp_client(SiteTestServer(app))


async def test_serverenv_assignment_reaches_scripts(make_site, aiohttp_client):
    def init() -> None:
        env = ServerEnv()
        env.get_module_dbname = lambda module: f"db_{module}"
        env["site_name"] = "shop"
        set_serverenv("late", None)

        async def learn_later(app) -> None:  # after the namespace is built
            ServerEnv().late = "learnt at start-up"

        add_startup(learn_later)

    client = await start(aiohttp_client, app_site(make_site, "shop"), init)
    r = await client.get("/env.dspy")
    assert r.status == 200, await r.text()
    assert await r.json() == {
        "db": "db_orders",
        "who": "shop",
        "late": "learnt at start-up",
        "old": [True, True, True],
    }
    env = ServerEnv.of(client.app)
    assert env.get_module_dbname("x") == "db_x"
    assert env.workdir == str(get_site(client.app).workdir)
    assert env.not_set_anywhere is None  # ahserver's DictObject: a missing name is None
    assert env.uuid is get_site(client.app).global_namespace["uuid"]  # reads fall back to it


async def test_event_dispatcher_gets_hot_reload(make_site, aiohttp_client):
    workdir = app_site(
        make_site, "hot", hot_reload={"enabled": True, "interval": 0.05}
    )
    (workdir / "i18n" / "en").mkdir(parents=True)
    (workdir / "i18n" / "en" / "msg.txt").write_text("a:b\n")
    got: list[Any] = []
    seen_env: list[Any] = []

    def init() -> None:
        env = ServerEnv()

        async def on_reload(data) -> None:
            seen_env.append(env.marker)
            got.append(data)

        env.marker = "mine"
        env.event_dispatcher.bind("hot_reload", on_reload)

    client = await start(aiohttp_client, workdir, init)
    assert ServerEnv.of(client.app).event_dispatcher is get_site(client.app).events
    msg = workdir / "i18n" / "en" / "msg.txt"
    msg.write_text("a:c\n")
    st = msg.stat()
    os.utime(msg, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    for _ in range(200):
        if got:
            break
        await asyncio.sleep(0.05)
    assert got == [{"i18n": True}]
    assert seen_env == ["mine"]
    with pytest.raises(AttributeError):
        ServerEnv.of(client.app).event_dispatcher = object()


async def test_startup_and_cleanup_run_in_order(make_site, aiohttp_client):
    log: list[str] = []
    cancelled = asyncio.Event()

    def init() -> None:
        async def ctx(name: str):
            log.append(f"{name} up")
            yield
            log.append(f"{name} down")

        async def ctx1(app):
            async for _ in ctx("ctx1"):
                yield

        async def ctx2(app):
            async for _ in ctx("ctx2"):
                yield

        async def first(app) -> None:
            # the app's databases and namespace are ready, and ServerEnv is this app's
            assert "uuid" in get_site(app).global_namespace
            log.append("startup 1")
            ServerEnv().from_startup = True

        def second() -> None:  # sync, no argument
            log.append("startup 2")

        async def background() -> None:  # a coroutine object: runs in the background
            log.append(f"background sees {ServerEnv().from_startup}")
            try:
                await asyncio.Event().wait()
            finally:
                cancelled.set()

        async def cleanup1(app) -> None:
            log.append("cleanup 1")

        def cleanup2(app) -> None:
            log.append("cleanup 2")
            raise RuntimeError("a failing clean-up does not stop the next")

        def cleanup3() -> None:
            log.append("cleanup 3")

        add_cleanupctx(ctx1)
        add_startup(first)
        add_cleanupctx(ctx2)
        add_startup(second)
        add_startup(background())
        for func in (cleanup1, cleanup2, cleanup3):
            add_cleanup(func)

    client = await start(aiohttp_client, app_site(make_site, "order"), init)
    for _ in range(100):
        if len(log) >= 5:
            break
        await asyncio.sleep(0.02)
    assert log == ["ctx1 up", "ctx2 up", "startup 1", "startup 2", "background sees True"]
    await client.close()
    assert cancelled.is_set()
    assert log[5:] == ["ctx2 down", "ctx1 down", "cleanup 1", "cleanup 2", "cleanup 3"]


async def test_two_apps_in_one_process_do_not_share(make_site, aiohttp_client):
    events: dict[str, list[Any]] = {"a": [], "b": []}
    startups: list[str] = []

    def init_for(name: str) -> Callable[[], None]:
        def init() -> None:
            env = ServerEnv()
            env.site_name = name
            env.late = None
            env.get_module_dbname = lambda module: f"{name}_{module}"
            env.event_dispatcher.bind("custom", events[name].append)
            RegisterFunction().register("whoami", lambda: name)
            add_startup(lambda app: startups.append(name))

        return init

    a = await start(aiohttp_client, app_site(make_site, "a"), init_for("a"))
    b = await start(aiohttp_client, app_site(make_site, "b"), init_for("b"))
    ra, rb = await (await a.get("/env.dspy")).json(), await (await b.get("/env.dspy")).json()
    assert (ra["who"], ra["db"]) == ("a", "a_orders")
    assert (rb["who"], rb["db"]) == ("b", "b_orders")
    env_a, env_b = ServerEnv.of(a.app), ServerEnv.of(b.app)
    assert env_a is not env_b and env_a is ServerEnv.of(a.app)
    await env_a.event_dispatcher.dispatch("custom", 1)
    assert events == {"a": [1], "b": []}
    assert RegisterFunction.of(a.app).get("whoami")() == "a"
    assert await RegisterFunction.of(b.app).exe("whoami") == "b"
    assert await RegisterFunction.of(b.app).exe("nothing") is None
    assert sorted(startups) == ["a", "b"]  # each app ran its own start-up, once


async def test_serverenv_in_a_request_is_that_apps(make_site, aiohttp_client):
    script = (
        "from ahserver.serverenv import ServerEnv\n"
        "env = ServerEnv()\n"
        "env.counter = (env.counter or 0) + 1\n"
        "return {'n': env.counter, 'name': env.site_name}\n"
    )
    workdir = make_site(config=CONFIG, files={"wwwroot/count.dspy": script}, name="req")

    def init() -> None:
        ServerEnv().site_name = "req"

    client = await start(aiohttp_client, workdir, init)
    assert await (await client.get("/count.dspy")).json() == {"n": 1, "name": "req"}
    assert await (await client.get("/count.dspy")).json() == {"n": 2, "name": "req"}


def test_serverenv_outside_any_app_says_what_to_do():
    with pytest.raises(RuntimeError, match=r"ServerEnv\(\) is bound to the application being started"):
        ServerEnv()
    with pytest.raises(RuntimeError, match="init"):
        get_serverenv("x")
    with pytest.raises(RuntimeError, match=r"add_startup\(\) registers work"):
        add_startup(lambda app: None)
    with pytest.raises(RuntimeError, match=r"RegisterFunction\(\)"):
        RegisterFunction()
    assert ServerEnv is CompatServerEnv


def test_init_refused_when_the_site_switches_compat_off(make_site):
    config = {**CONFIG, "plugins": {"dspy": True}}
    app = create_app(make_site(config=config, files={}, name="off"))
    with pytest.raises(PluginError, match='add "compat": true'):
        CompatInit(lambda: None)(app)


async def test_compat_listed_in_a_plugins_section(make_site, aiohttp_client):
    config = {**CONFIG, "plugins": {"dspy": True, "compat": True}}
    workdir = make_site(config=config, files={"wwwroot/env.dspy": SCRIPT}, name="listed")

    def init(app) -> None:  # init(app) is accepted too
        env = ServerEnv()
        assert ServerEnv.of(app) is env
        env.update(site_name="listed", late=1, get_module_dbname=str.upper)

    client = await start(aiohttp_client, workdir, init)
    assert (await (await client.get("/env.dspy")).json())["who"] == "listed"


def test_add_cleanupctx_wants_an_async_generator(make_site):
    app = create_app(app_site(make_site, "ctx"))

    def init() -> None:
        async def not_a_generator(app) -> None:
            pass

        add_cleanupctx(not_a_generator)

    with pytest.raises(TypeError, match="async generator"):
        CompatInit(init)(app)


async def test_register_function_serves_function_routes(make_site, aiohttp_client):
    config = {
        **CONFIG,
        "website": {
            **CONFIG["website"],
            "startswiths": [{"leading": "/api/orders", "registerfunction": "orders"}],
        },
    }
    workdir = make_site(config=config, files={}, name="routes")

    def init() -> None:
        async def orders(request, params_kw, *rest):
            return {"rest": list(rest), "q": params_kw.q, "site": ServerEnv().site_name}

        ServerEnv().site_name = "routes"
        RegisterFunction().register("orders", orders)

    client = await start(aiohttp_client, workdir, init)
    r = await client.get("/api/orders/12/lines?q=x")
    assert r.status == 200, await r.text()
    assert await r.json() == {"rest": ["12", "lines"], "q": "x", "site": "routes"}
    registry = RegisterFunction.of(client.app)
    assert set(registry.registKW) == {"orders"}
    assert registry.get("download") is not None  # the kernel's own are there too
