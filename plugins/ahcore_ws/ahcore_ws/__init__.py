"""ahcore-ws: websocket scripts (``.ws``) run once per received message, as in ahserver.

The plugin module registered in the ``ahcore`` entry-point group is
:mod:`ahcore_ws.plugin`; the processor is :class:`WsProcessor`; the names a
script gets besides the kernel's are ``ws_data``, ``ws``, ``ws_send`` and
``ws_pool`` (:mod:`ahcore_ws.pool`).
"""

from __future__ import annotations

from ahcore_ws.pool import HEARTBEAT_TEXT, WsData, WsPool, ws_send
from ahcore_ws.processor import WsProcessor
from ahcore_ws.settings import DEFAULT_HEARTBEAT, DEFAULT_MAX_MESSAGE_SIZE, WsSettings

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "HEARTBEAT_TEXT",
    "WsData",
    "WsPool",
    "WsProcessor",
    "WsSettings",
    "ws_send",
]
