"""ahcore.hotreload: the watcher's checks, the signal file and the endpoint, called directly."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat

import pytest
from aiohttp import web

from ahcore.appkeys import get_site
from ahcore.hotreload import (
    ENDPOINT,
    TOKEN_HEADER,
    HotReloader,
    _cross_site,
    signal_file_path,
)

TOKEN = "t" * 40


@pytest.fixture
def site(make_app):
    app = make_app(
        {"hot_reload": {"enabled": True, "interval": 60, "rate_limit": 3600, "token": TOKEN}, "v": 1},
        files={"i18n/en/a.txt": "Hello:Hi\n"},
    )
    return get_site(app)


@pytest.fixture
def events(site):
    seen: list = []
    site.events.bind("hot_reload", seen.append)
    return seen


def config_path(site):
    return site.workdir / "conf" / "config.json"


def edit_config(site, **changes) -> None:
    cfg = json.loads(config_path(site).read_text())
    cfg.update(changes)
    config_path(site).write_text(json.dumps(cfg) + " " * len(json.dumps(changes)))  # size changes


async def test_nothing_changed_nothing_happens(site, events) -> None:
    reloader = HotReloader(site)
    await reloader.check_once()
    assert events == [] and site.config.raw["v"] == 1


async def test_a_changed_config_is_applied_without_an_event(site, events) -> None:
    reloader = HotReloader(site)
    edit_config(site, v=2)
    await reloader.check_once()
    assert site.config.raw["v"] == 2
    assert events == []  # as in ahserver: module caches stay


async def test_an_invalid_config_is_refused_and_the_old_one_kept(site, events, caplog) -> None:
    reloader = HotReloader(site)
    config_path(site).write_text("{ not json")
    with caplog.at_level(logging.ERROR, logger="ahcore.hotreload"):
        await reloader.check_once()
    assert site.config.raw["v"] == 1
    assert "new config refused, keeping the old one" in caplog.text


async def test_a_change_needing_a_restart_is_logged(site, caplog) -> None:
    reloader = HotReloader(site)
    edit_config(site, plugins={"x": False})
    with caplog.at_level(logging.WARNING, logger="ahcore.hotreload"):
        await reloader.check_once()
    assert "plugins (x) changed: restart to apply" in caplog.text


async def test_a_changed_translation_reloads_and_dispatches(site, events) -> None:
    reloader = HotReloader(site)
    (site.workdir / "i18n" / "en" / "a.txt").write_text("Hello:Hello there\n")
    await reloader.check_once()
    assert site.translations.translate("en", "Hello") == "Hello there"
    assert events == [{"i18n": True}]
    await reloader.check_once()
    assert events == [{"i18n": True}]  # once per change


async def test_trigger_reloads_here_and_signals_the_other_workers(site, events, make_app) -> None:
    worker_a, worker_b = HotReloader(site), HotReloader(site)
    event_id = await worker_a.trigger()
    assert events == [{"source": "http_endpoint"}]
    data = json.loads(worker_a.signal_path.read_text())
    assert data["event"] == event_id and data["pid"] == os.getpid()
    assert stat.S_IMODE(worker_a.signal_path.stat().st_mode) == 0o600
    await worker_a.check_once()  # its own signal: not dispatched again
    assert len(events) == 1
    await worker_b.check_once()  # another worker's: dispatched once
    await worker_b.check_once()
    assert events == [{"source": "http_endpoint"}, {"signal": True}]


async def test_a_garbage_signal_file_is_ignored(site, events) -> None:
    reloader = HotReloader(site)
    for text in ("not json", "[]", '{"no": "event"}'):
        reloader.signal_path.write_text(text + " " * len(events))
        os.utime(reloader.signal_path, ns=(0, os.stat(reloader.signal_path).st_mtime_ns + 10**9))
        await reloader.check_once()
    assert events == []


def test_signal_file_path(tmp_path, monkeypatch) -> None:
    (tmp_path / "conf").mkdir()
    assert signal_file_path(tmp_path) == tmp_path / "conf" / ".hot_reload_signal"
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    other = signal_file_path(tmp_path)
    assert other.suffix == ".signal" and not other.is_relative_to(tmp_path / "conf")


def test_a_short_token_is_warned_about(make_app, caplog) -> None:
    site = get_site(make_app({"hot_reload": {"enabled": True, "token": "short"}}))
    with caplog.at_level(logging.WARNING, logger="ahcore.hotreload"):
        HotReloader(site)
    assert "hot_reload.token is 5 bytes; use at least 32" in caplog.text


# ---------------------------------------------------------------- the endpoint


def post(make_request, site, headers=None, method="POST"):
    return make_request(method, ENDPOINT, headers, app=site.app)


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
async def test_only_post(site, make_request, method) -> None:
    with pytest.raises(web.HTTPMethodNotAllowed) as info:
        await HotReloader(site).endpoint(post(make_request, site, {TOKEN_HEADER: TOKEN}, method))
    assert info.value.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"Sec-Fetch-Site": "cross-site"}, "refuses cross-site requests"),
        ({"Sec-Fetch-Site": "same-site"}, "refuses same-site requests"),
        ({"Origin": "https://evil.example"}, "refuses cross-origin requests"),
    ],
)
async def test_cross_site_callers_are_refused_even_with_the_token(site, make_request, headers, why, events) -> None:
    with pytest.raises(web.HTTPForbidden) as info:
        await HotReloader(site).endpoint(post(make_request, site, {**headers, TOKEN_HEADER: TOKEN}))
    assert why in info.value.text
    assert events == []


def test_cross_site_allows_same_origin_and_scripts(site, make_request) -> None:
    assert _cross_site(post(make_request, site, {"Sec-Fetch-Site": "same-origin"})) is None
    assert _cross_site(post(make_request, site, {"Origin": "http://example.org"})) is None
    assert _cross_site(post(make_request, site)) is None


async def test_the_token_opens_it_and_anything_else_is_401_or_403(site, make_request, events) -> None:
    reloader = HotReloader(site)
    with pytest.raises(web.HTTPUnauthorized) as info:
        await reloader.endpoint(post(make_request, site))
    assert TOKEN_HEADER in info.value.text
    for wrong in ("x" * 40, TOKEN[:-1], TOKEN + "t", "", "ü" * 20):
        with pytest.raises(web.HTTPForbidden, match="Forbidden") as info:
            await reloader.endpoint(post(make_request, site, {TOKEN_HEADER: wrong}))
        assert info.value.text == "403: wrong hot-reload token\n"
    assert events == []
    resp = await reloader.endpoint(post(make_request, site, {TOKEN_HEADER: TOKEN}))
    body = json.loads(resp.body)
    assert body["ok"] is True and body["pid"] == os.getpid() and len(body["event"]) == 16
    assert events == [{"source": "http_endpoint"}]


async def test_without_a_configured_token_every_token_is_wrong(make_app, make_request) -> None:
    site = get_site(make_app({"hot_reload": {"enabled": True}}))
    with pytest.raises(web.HTTPForbidden):
        await HotReloader(site).endpoint(post(make_request, site, {TOKEN_HEADER: ""}))


async def test_the_rate_limit_counts_only_authorised_callers(site, make_request, events) -> None:
    reloader = HotReloader(site)
    for _ in range(3):  # strangers do not spend it
        with pytest.raises(web.HTTPUnauthorized):
            await reloader.endpoint(post(make_request, site))
    await reloader.endpoint(post(make_request, site, {TOKEN_HEADER: TOKEN}))
    with pytest.raises(web.HTTPTooManyRequests):
        await reloader.endpoint(post(make_request, site, {TOKEN_HEADER: TOKEN}))
    assert events == [{"source": "http_endpoint"}]


class FakeRedis:
    """Pub/sub between reloaders of one test, as Redis connects machines."""

    def __init__(self) -> None:
        self.queues: list[asyncio.Queue] = []

    async def publish(self, channel, message):
        for queue in self.queues:
            queue.put_nowait({"type": "message", "channel": channel, "data": message.encode()})

    def pubsub(self):
        redis = self

        class PubSub:
            async def subscribe(self, channel):
                self.queue = asyncio.Queue()
                self.queue.put_nowait({"type": "subscribe", "data": 1})
                redis.queues.append(self.queue)

            async def listen(self):
                while True:
                    yield await self.queue.get()

        return PubSub()


async def test_an_event_seen_through_redis_and_the_signal_file_is_dispatched_once(site, events) -> None:
    redis = FakeRedis()
    here, there = HotReloader(site), HotReloader(site)
    tasks = []
    for reloader in (here, there):
        reloader.redis = redis
        tasks.append(asyncio.create_task(reloader._listen()))
    try:
        for _ in range(100):
            if len(redis.queues) == 2:
                break
            await asyncio.sleep(0)
        await here.trigger()
        for _ in range(500):  # "there" hears it through Redis (bounded: never hangs)
            if len(events) == 2:
                break
            await asyncio.sleep(0.01)
        await there.check_once()  # ... and then sees the signal file: the same event
        await here.check_once()
        for _ in range(5):
            await asyncio.sleep(0)
        assert events == [{"source": "http_endpoint"}, {"signal": True}]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
