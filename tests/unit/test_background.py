"""ahcore.background: start-up functions and the background tasks they return."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from ahcore.background import (
    FUNCS,
    TASKS,
    add_startup,
    initialising,
    start_background,
    stop_background,
)


async def test_functions_run_at_start_with_or_without_the_app_in_order() -> None:
    app = web.Application()
    calls: list[object] = []
    add_startup(app, lambda a: calls.append(("with", a)))
    add_startup(app, lambda: calls.append("without"))
    await start_background(app)
    assert calls == [("with", app), "without"]
    assert app[TASKS] == []  # nothing awaitable was returned
    await stop_background(app)


async def test_a_returned_coroutine_runs_until_shutdown_cancels_it() -> None:
    app = web.Application()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def worker(app: web.Application) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    add_startup(app, worker)
    await start_background(app)
    [task] = app[TASKS]
    await started.wait()
    assert not task.done()
    stopping = asyncio.ensure_future(stop_background(app))
    done, _ = await asyncio.wait({stopping}, timeout=10)  # a guard against a hang, not a measurement
    if not done:
        task.cancel()  # clean up before failing
        await stopping
    assert done, "stop_background did not cancel the task"
    assert cancelled.is_set() and task.cancelled()


async def test_a_coroutine_object_is_accepted_as_ahserver_passed_it() -> None:
    app = web.Application()
    ran = asyncio.Event()

    async def job() -> None:
        ran.set()

    add_startup(app, job())
    await start_background(app)
    await ran.wait()
    await stop_background(app)


async def test_a_failed_background_task_is_logged_at_shutdown_not_raised(caplog) -> None:
    app = web.Application()

    async def broken() -> None:
        raise RuntimeError("task broke")

    add_startup(app, broken)
    await start_background(app)
    await asyncio.sleep(0)  # let it fail
    with caplog.at_level(logging.ERROR, logger="ahcore.background"):
        await stop_background(app)
    assert "task broke" in caplog.text


async def test_the_one_argument_form_needs_an_app_being_initialised() -> None:
    with pytest.raises(RuntimeError, match=r"add_startup\(func\) needs the app"):
        add_startup(lambda: None)
    app = web.Application()
    token = initialising.set(app)
    try:
        add_startup(lambda: None)
    finally:
        initialising.reset(token)
    assert len(app[FUNCS]) == 1


async def test_two_apps_keep_their_own_functions() -> None:
    one, two = web.Application(), web.Application()
    add_startup(one, lambda: None)
    assert FUNCS not in two
    await start_background(two)  # nothing registered: nothing to do
    assert two[TASKS] == []
    await stop_background(web.Application())  # never started: harmless
