"""Events, hot reload sources, the endpoint, i18n and background tasks (in-process)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import pytest

from ahcore import add_startup, hookimpl
from ahcore.app import HOT_RELOADER, create_app
from ahcore.appkeys import get_site
from ahcore.events import EventDispatcher
from ahcore.i18n import parse_accept_language

from .conftest import require_services


async def test_dispatcher_sync_async_unbind_and_isolated_failures(caplog):
    events = EventDispatcher()
    got = []

    def sync_handler(data):
        got.append(("sync", data))

    async def async_handler(data):
        got.append(("async", data))

    def broken(data):
        raise ValueError("boom")

    for h in (sync_handler, broken, async_handler, sync_handler):
        events.bind("hot_reload", h)
    assert await events.dispatch("hot_reload", {"x": 1}) == 2
    assert got == [("sync", {"x": 1}), ("async", {"x": 1})]
    assert "boom" in caplog.text
    events.unbind("hot_reload", sync_handler)
    got.clear()
    await events.dispatch("hot_reload", 2)
    assert got == [("async", 2)]
    assert await events.dispatch("nobody-listens") == 0


class Recorder:
    def __init__(self):
        self.hook_calls = []

    @hookimpl
    async def on_hot_reload(self, app, data):
        self.hook_calls.append(dict(data))


TOKEN = "hot-reload-test-token-of-32-bytes"
WITH_TOKEN = {"X-Hot-Reload-Token": TOKEN}


def hot_site(make_site, **hot):
    return make_site(
        config={
            "website": {"cookie_secret": "s" * 32},
            "hot_reload": {"enabled": True, "interval": 0.05, "token": TOKEN, **hot},
            "langMapping": {"zh-CN": "zh-cn"},
            "plugins": {"rec": True},
            "mysetting": {"a": 1},
        },
        files={
            "i18n/en/msg.txt": "hello:Hello\n",
            "i18n/zh-cn/msg.txt": "hello:你好\n# comment\nbye : 再见\n",
            "wwwroot/x.txt": "x",
        },
    )


async def wait_for(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def bump(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


async def test_config_change_reloads_config_without_event(make_site, ahcore_client):
    site_dir = hot_site(make_site)
    rec = Recorder()
    client = await ahcore_client(site_dir, extra_plugins={"rec": rec})
    site = get_site(client.app)
    events = []
    site.events.bind("hot_reload", events.append)
    cfg_path = site_dir / "conf" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["mysetting"] = {"a": 2}
    cfg["website"]["allowListFolder"] = True
    bump(cfg_path, json.dumps(cfg))
    await wait_for(lambda: site.config.raw.get("mysetting") == {"a": 2})
    assert site.global_namespace["configValue"](".mysetting.a") == 2
    assert site.resolver.allow_listing is True
    # a broken config is refused and the old one kept
    bump(cfg_path, '{"website": {"port": "nope"}}')
    await asyncio.sleep(0.3)
    assert site.config.raw.get("mysetting") == {"a": 2}
    assert events == [] and rec.hook_calls == []


async def test_i18n_change_dispatches_and_translates(make_site, ahcore_client):
    site_dir = hot_site(make_site)
    rec = Recorder()
    client = await ahcore_client(site_dir, extra_plugins={"rec": rec})
    site = get_site(client.app)
    events = []
    site.events.bind("hot_reload", events.append)
    assert site.translations.translate("zh-cn", "bye") == "再见"
    bump(site_dir / "i18n" / "zh-cn" / "msg.txt", "hello:您好\n")
    await wait_for(lambda: events == [{"i18n": True}])
    assert rec.hook_calls == [{"i18n": True}]
    assert site.translations.translate("zh-cn", "hello") == "您好"
    assert site.translations.translate("zh-cn", "missing text") == "missing text"


def test_accept_language_negotiation(make_site):
    site = get_site(create_app(hot_site(make_site), extra_plugins={"rec": Recorder()}))
    t = site.translations
    assert parse_accept_language("fr;q=0.1, zh-CN;q=0.9, en;q=0.8, de;q=0") == ["zh-CN", "en", "fr"]
    assert t.language_for("zh-CN,zh;q=0.9") == "zh-cn"  # via langMapping
    assert t.language_for("en-GB, fr;q=0.5") == "en"  # primary subtag
    assert t.language_for("fr;q=1, en;q=0.5") == "en"  # best available
    assert t.language_for("de") is None and t.language_for(None) is None
    assert t.language_for("en;q=0, zh-CN;q=0.2") == "zh-cn"


async def test_endpoint_local_event_signal_file_and_rate_limit(make_site, ahcore_client):
    site_dir = hot_site(make_site, rate_limit=0.5)
    rec_a, rec_b = Recorder(), Recorder()
    a = await ahcore_client(site_dir, extra_plugins={"rec": rec_a})
    await ahcore_client(site_dir, extra_plugins={"rec": rec_b})  # a second worker of the site
    r = await a.post("/__hot_reload__", headers=WITH_TOKEN)
    assert r.status == 200
    assert rec_a.hook_calls == [{"source": "http_endpoint"}]
    await wait_for(lambda: rec_b.hook_calls == [{"signal": True}])
    await asyncio.sleep(0.2)
    assert rec_a.hook_calls == [{"source": "http_endpoint"}]  # no echo of its own signal
    r = await a.post("/__hot_reload__", headers=WITH_TOKEN)
    assert r.status == 429
    signal = site_dir / "conf" / ".hot_reload_signal"
    assert signal.stat().st_mode & 0o777 == 0o600
    assert (await a.get("/conf/.hot_reload_signal")).status in (400, 404)


async def test_endpoint_is_off_unless_enabled_and_admin_only_with_auth(make_site, ahcore_client):
    off = make_site(files={"wwwroot/x.txt": "x"})
    client = await ahcore_client(off)
    assert (await client.get("/__hot_reload__")).status == 404

    class Abstain:
        @hookimpl
        def auth_check(self, request, user, path):
            return None

    site_dir = hot_site(make_site)
    cfg_path = site_dir / "conf" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["plugins"]["auth"] = True
    cfg_path.write_text(json.dumps(cfg))
    client = await ahcore_client(site_dir, extra_plugins={"rec": Recorder(), "auth": Abstain()})
    # with an auth plugin, abstaining is not enough: an administrator must be allowed explicitly
    assert (await client.post("/__hot_reload__")).status == 401
    assert (await client.get("/__hot_reload__")).status == 405


@pytest.fixture
def redis_url():
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            pass
    except OSError as exc:
        if require_services():
            pytest.fail(f"Redis is required (AHCORE_REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"Redis not reachable on 127.0.0.1:6379: {exc}")
    return "redis://127.0.0.1:6379/0"


async def test_redis_fans_out_between_two_servers(make_site, ahcore_client, redis_url):
    channel = f"ahcore:test:{os.getpid()}:{id(make_site)}"
    one = hot_site(make_site, redis=redis_url, channel=channel)
    two = hot_site(make_site, redis=redis_url, channel=channel)  # another machine: own folder
    rec1, rec2 = Recorder(), Recorder()
    c1 = await ahcore_client(one, extra_plugins={"rec": rec1})
    await ahcore_client(two, extra_plugins={"rec": rec2})
    await asyncio.sleep(0.3)  # subscriptions established
    assert (await c1.post("/__hot_reload__", headers=WITH_TOKEN)).status == 200
    await wait_for(lambda: rec2.hook_calls == [{"signal": True}])
    await asyncio.sleep(0.2)
    assert rec1.hook_calls == [{"source": "http_endpoint"}]


async def test_background_tasks_start_and_are_cancelled_at_shutdown(make_site, ahcore_client):
    state = {"ticks": 0, "cancelled": False}

    async def ticker(app):
        try:
            while True:
                state["ticks"] += 1
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    app = create_app(make_site())
    add_startup(app, ticker)
    from aiohttp.test_utils import TestClient, TestServer

    client = TestClient(TestServer(app))
    await client.start_server()
    await wait_for(lambda: state["ticks"] > 3)
    await client.close()
    assert state["cancelled"] is True


async def test_hot_reloader_is_per_app(make_site):
    rec = {"rec": Recorder()}
    a = create_app(hot_site(make_site), extra_plugins=rec)
    b = create_app(hot_site(make_site), extra_plugins=rec)
    assert a[HOT_RELOADER] is not b[HOT_RELOADER]


async def test_janitor_removes_stale_partial_uploads_only(make_site, ahcore_client):
    import time

    site_dir = make_site(config={"filesroot": "$[workdir]$/files"})
    day = site_dir / "files" / "2026" / "01" / "01"
    day.mkdir(parents=True)
    stale, fresh, whole = day / "a.bin.part", day / "b.bin.part", day / "c.bin"
    for p in (stale, fresh, whole):
        p.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    os.utime(whole, (old, old))
    await ahcore_client(site_dir)
    await wait_for(lambda: not stale.exists())
    assert fresh.exists() and whole.exists()


async def test_reloads_under_load_drop_no_request(make_site, ahcore_client):
    site_dir = hot_site(make_site, rate_limit=0)
    client = await ahcore_client(site_dir, extra_plugins={"rec": Recorder()})
    cfg_path = site_dir / "conf" / "config.json"

    async def load() -> list[int]:
        statuses = []
        for _ in range(40):
            statuses.append((await client.get("/x.txt")).status)
        return statuses

    async def reloads() -> None:
        for i in range(5):
            assert (await client.post("/__hot_reload__", headers=WITH_TOKEN)).status == 200
            cfg = json.loads(cfg_path.read_text())
            cfg["mysetting"] = {"a": i}
            bump(cfg_path, json.dumps(cfg))
            bump(site_dir / "i18n" / "en" / "msg.txt", f"hello:Hello {i}\n")
            await asyncio.sleep(0.06)

    results = await asyncio.gather(*(load() for _ in range(10)), reloads())
    statuses = [s for group in results[:-1] for s in group]
    assert len(statuses) == 400 and set(statuses) == {200}


def test_reloaded_settings_read_only_at_start_are_reported_as_needing_a_restart(make_site):
    """A new header_timeout (read when the listening site starts) is adopted
    but reported as taking effect after a restart; a new index list is not."""
    from ahcore.config import load_config

    site_dir = make_site(config={"website": {"header_timeout": 10}})
    site = get_site(create_app(site_dir))
    config_file = site_dir / "conf" / "config.json"
    raw = json.loads(config_file.read_text())
    raw["website"]["header_timeout"] = 3
    raw["website"]["indexes"] = ["start.html"]
    config_file.write_text(json.dumps(raw))
    restart = site.apply_config(load_config(site_dir))
    assert restart == ["website.header_timeout"]
    assert site.config.website.header_timeout == 3
