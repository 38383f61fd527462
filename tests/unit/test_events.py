"""ahcore.events: the application's event dispatcher."""

from __future__ import annotations

import logging

from ahcore.events import EventDispatcher


async def test_sync_and_async_handlers_run_in_bind_order_with_the_data() -> None:
    events = EventDispatcher()
    seen: list[tuple[str, object]] = []

    def first(data):
        seen.append(("first", data))

    async def second(data):
        seen.append(("second", data))

    events.bind("saved", first)
    events.bind("saved", second)
    assert await events.dispatch("saved", {"id": 1}) == 2
    assert seen == [("first", {"id": 1}), ("second", {"id": 1})]


async def test_binding_twice_is_one_binding_and_unbind_removes_it() -> None:
    events = EventDispatcher()
    calls = []
    handler = calls.append
    events.bind("e", handler)
    events.bind("e", handler)
    assert events.handlers("e") == [handler]
    assert await events.dispatch("e", 1) == 1
    events.unbind("e", handler)
    events.unbind("e", handler)  # unbinding again is harmless
    events.unbind("never-bound", handler)
    assert await events.dispatch("e", 2) == 0
    assert calls == [1]


async def test_one_failing_handler_is_logged_and_does_not_stop_the_others(caplog) -> None:
    events = EventDispatcher()
    calls = []

    def broken(data):
        raise ValueError("handler broke")

    async def broken_async(data):
        raise RuntimeError("async handler broke")

    events.bind("e", broken)
    events.bind("e", broken_async)
    events.bind("e", calls.append)
    with caplog.at_level(logging.ERROR, logger="ahcore.events"):
        assert await events.dispatch("e", "x") == 1
    assert calls == ["x"]
    assert "handler broke" in caplog.text and "async handler broke" in caplog.text


async def test_events_are_separate_and_dispatch_without_handlers_is_zero() -> None:
    events = EventDispatcher()
    calls = []
    events.bind("a", calls.append)
    assert await events.dispatch("b") == 0
    assert calls == []
    assert events.handlers("b") == []


async def test_a_handler_may_unbind_itself_while_being_dispatched() -> None:
    events = EventDispatcher()
    calls = []

    def once(data):
        calls.append("once")
        events.unbind("e", once)

    events.bind("e", once)
    events.bind("e", calls.append)
    assert await events.dispatch("e", "later") == 2
    assert calls == ["once", "later"]  # the list was copied: the second still ran
    assert await events.dispatch("e", "again") == 1


def test_two_dispatchers_share_nothing() -> None:
    a, b = EventDispatcher(), EventDispatcher()
    a.bind("e", print)
    assert b.handlers("e") == []
