"""Lifecycles: each resource an aiohttp cleanup context, stopped in reverse order.

Sessions, database pools, the plugins' ``on_startup``/``on_shutdown``
hooks, background tasks: started in that order, stopped in the reverse
one. When start-up fails part-way, what had started is stopped and what had
not is never touched.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from ahcore.api import DatabaseUnavailable, add_startup, get_site, hookimpl
from ahcore.testing import build_app, start_test_site

DATABASES = {"db": {"driver": "sqlite3", "kwargs": {"dbname": "app.db"}}}


class Recorder:
    """Opens a pooled connection at start-up and records what it sees, start to end."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.pool = None

    @hookimpl(tryfirst=True)
    async def on_startup(self, app: web.Application) -> None:
        site = get_site(app)
        async with site.pools.sqlorContext("db") as sor:  # the pools exist already
            await sor.sqlExe("select 1", {})
        self.pool = await site.pools.database("db").pool()
        self.events.append("on_startup")

        async def background(app: web.Application) -> None:
            self.events.append("background started")
            try:
                await asyncio.Event().wait()
            finally:
                self.events.append("background cancelled")

        add_startup(app, background)

    @hookimpl
    async def on_shutdown(self, app: web.Application) -> None:
        # Background work is stopped first; the pools are still open.
        async with get_site(app).pools.sqlorContext("db") as sor:
            await sor.sqlExe("select 1", {})
        self.events.append("on_shutdown")


class FailsToStart:
    @hookimpl(trylast=True)
    async def on_startup(self, app: web.Application) -> None:
        raise RuntimeError("this plugin cannot start")

    @hookimpl
    def on_shutdown(self, app: web.Application) -> None:
        raise AssertionError("on_shutdown of a start-up that failed")


async def assert_closed(pool) -> None:
    with pytest.raises(DatabaseUnavailable, match="is shut down"):
        async with pool.acquire():
            pass


async def test_resources_start_in_order_and_stop_in_reverse(make_site) -> None:
    events: list[str] = []
    recorder = Recorder(events)
    site = make_site(config={"plugins": {"rec": True}, "databases": DATABASES})
    running = await start_test_site(build_app(site, extra_plugins={"rec": recorder}))
    await asyncio.sleep(0)  # let the background task begin
    assert events == ["on_startup", "background started"]
    await running.close()
    assert events == ["on_startup", "background started", "background cancelled", "on_shutdown"]
    await assert_closed(recorder.pool)  # closed after every on_shutdown


async def test_a_failed_start_up_stops_exactly_what_had_started(make_site, caplog) -> None:
    events: list[str] = []
    recorder = Recorder(events)
    site = make_site(config={"plugins": {"rec": True, "fails": True}, "databases": DATABASES})
    app = build_app(site, extra_plugins={"rec": recorder, "fails": FailsToStart()})
    runner = web.AppRunner(app)  # what aiohttp's run_app and an embedding program do
    with pytest.raises(RuntimeError, match="this plugin cannot start"):
        await runner.setup()
    await runner.cleanup()
    # The pool the first plugin opened is closed; no on_shutdown ran for the
    # failed start, and the background work, which comes later, never began.
    await assert_closed(recorder.pool)
    assert events == ["on_startup"]
    assert "on_shutdown of a start-up that failed" not in caplog.text


async def test_start_site_stops_what_had_started_when_start_up_fails(make_site) -> None:
    recorder = Recorder([])
    site = make_site(config={"plugins": {"rec": True, "fails": True}, "databases": DATABASES})
    app = build_app(site, extra_plugins={"rec": recorder, "fails": FailsToStart()})
    with pytest.raises(RuntimeError, match="this plugin cannot start"):
        await start_test_site(app)
    await assert_closed(recorder.pool)
