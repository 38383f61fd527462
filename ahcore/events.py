"""The application's event dispatcher (ahserver's ``env.event_dispatcher``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ahcore.plugins import await_me_maybe

log = logging.getLogger("ahcore.events")

Handler = Callable[..., Any]


class EventDispatcher:
    """``bind``/``unbind``/``dispatch`` named events to sync or async handlers.

    One handler's exception is logged and does not stop the others. Handlers
    run in bind order; binding the same handler twice is a no-op.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def bind(self, event: str, handler: Handler) -> None:
        handlers = self._handlers.setdefault(event, [])
        if handler not in handlers:
            handlers.append(handler)

    def unbind(self, event: str, handler: Handler) -> None:
        handlers = self._handlers.get(event, [])
        if handler in handlers:
            handlers.remove(handler)

    def handlers(self, event: str) -> list[Handler]:
        return list(self._handlers.get(event, ()))

    async def dispatch(self, event: str, data: Any = None) -> int:
        """Call every handler of ``event`` with ``data``; return how many succeeded."""
        ok = 0
        for handler in self.handlers(event):
            try:
                await await_me_maybe(handler(data))
                ok += 1
            except Exception:
                log.exception("handler %r for event %r failed", handler, event)
        return ok
