"""``ws_send`` and ``ws_pool``: the names ahserver 1.2.0 gives websocket scripts.

``ws_send(ws, data)`` sends ``{"type": 1, "data": data}`` as a JSON text
message, as ahserver's does; it returns ``False`` instead of raising when
the connection is gone.

``ws_pool`` is ahserver's ``WsPool``: the connection's own handle (``ws``,
``ip``, ``id``) plus a registry shared by every connection to the *same
file*, so a chat script can ``register(userid)`` and ``sendto(data, id)``
another connection. The registry is the one thing connections share, on
purpose; it lives on the application (:class:`WsRegistry` under the
plugin's app key), never on a module, and a connection leaves it when it
closes.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ahcore.api import DictObject, dumps

log = logging.getLogger(__name__)

#: ahserver's keep-alive text: answered with itself, the script is not run.
HEARTBEAT_TEXT = "_#_heartbeat_#_"


async def ws_send(ws: web.WebSocketResponse, data: Any) -> bool | None:
    """Send ``data`` wrapped as ``{"type": 1, "data": data}`` (ahserver's format).

    ``None`` when sent (as ahserver returned), ``False`` when the connection
    is closed or broken: a script pushing to a client that left keeps running
    without an exception and can stop on ``False``.
    """
    text = dumps({"type": 1, "data": data}).decode()
    try:
        await ws.send_str(text)
    except (ConnectionError, RuntimeError) as exc:
        # aiohttp raises ClientConnectionResetError (a ConnectionError) on a
        # closing transport and RuntimeError before prepare / after close.
        log.debug("ws_send: connection gone: %s", exc)
        return False
    return None


class WsData:
    """The connections registered under ids, and sessions, of one ``.ws`` file.

    ahserver's ``WsData``; nodes are ``DictObject(id=, ws=, ip=)``.
    """

    def __init__(self) -> None:
        self.nodes: dict[Any, DictObject] = {}
        self.sessions: dict[Any, Any] = {}

    def add_node(self, node: DictObject) -> None:
        self.nodes[node.id] = node

    def del_node(self, node: DictObject) -> None:
        self.nodes.pop(node.id, None)

    def get_nodes(self) -> dict[Any, DictObject]:
        return self.nodes

    def get_node(self, id: Any) -> DictObject | None:
        return self.nodes.get(id)

    def add_session(self, session: Any) -> None:
        self.sessions[session.sessionid] = session

    def del_session(self, session: Any) -> None:
        self.sessions.pop(session.sessionid, None)

    def get_session(self, id: Any) -> Any:
        return self.sessions.get(id)


class WsRegistry:
    """One :class:`WsData` per ``.ws`` file URL, for one application."""

    def __init__(self) -> None:
        self._by_url: dict[str, WsData] = {}

    def data(self, url: str) -> WsData:
        found = self._by_url.get(url)
        if found is None:
            found = self._by_url[url] = WsData()
        return found


class WsPool:
    """ahserver's ``WsPool``: this connection, and the registry of its file.

    One per connection; ``ws``, ``ip`` and ``id`` are this connection's.
    """

    def __init__(self, ws: web.WebSocketResponse, ip: str | None, data: WsData) -> None:
        self.ws = ws
        self.ip = ip
        self.id: Any = None
        self._data = data

    def get_data(self) -> WsData:
        return self._data

    def set_data(self, data: WsData) -> None:
        """Kept for ahserver scripts; the registry is changed in place."""
        self._data = data

    def is_online(self, userid: Any) -> bool:
        return self._data.get_node(userid) is not None

    def register(self, id: Any) -> None:
        """Make this connection reachable as ``id`` (``sendto(data, id)``)."""
        node = DictObject()
        node.id = id
        self.add_me(node)

    def add_me(self, iddata: Any) -> None:
        node = iddata if isinstance(iddata, DictObject) else DictObject(iddata)
        node.ws = self.ws
        node.ip = self.ip
        self.id = node.id
        self._data.add_node(node)

    def delete_id(self, id: Any) -> None:
        node = self._data.get_node(id)
        if node is not None:
            self._data.del_node(node)

    def delete_me(self) -> None:
        """Leave the registry, unless a newer connection took over our id."""
        if self.id is None:
            return
        node = self._data.get_node(self.id)
        if node is not None and node.ws is self.ws:
            self._data.del_node(node)

    def add_session(self, session: Any) -> None:
        self._data.add_session(session)

    def del_session(self, session: Any) -> None:
        self._data.del_session(session)

    def get_session(self, sessionid: Any) -> Any:
        return self._data.get_session(sessionid)

    async def sendto(self, data: Any, id: Any = None) -> bool | None:
        """Send to this connection (no ``id``) or to the one registered as ``id``.

        ``False`` when ``id`` is unknown or its connection is gone (it is then
        dropped from the registry, as ahserver did).
        """
        if id is None:
            return await ws_send(self.ws, data)
        node = self._data.get_node(id)
        if node is None:
            return False
        sent = await ws_send(node.ws, data)
        if sent is False:
            self.delete_id(id)
        return sent
