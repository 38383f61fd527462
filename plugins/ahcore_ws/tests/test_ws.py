"""ahcore-ws against a real server on 127.0.0.1, with aiohttp's websocket client.

Each test writes a site folder (``make_site``), starts it (``ahcore_client``
or, for shutdown, ``ahcore.server.start_site``) and talks to ``.ws`` files
over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ahcore_ws.settings import parse_settings

from ahcore.api import hookimpl
from ahcore.testing import build_app, start_test_site

MakeSite = Callable[..., Path]
Client = Callable[..., Awaitable[Any]]


class Guard:
    """An auth plugin: ``/private/…`` is for nobody, the rest is open."""

    @hookimpl
    def auth_check(self, request: Any, user: str | None, path: str) -> bool | None:
        return False if path.startswith("/private/") else None


def config(ws_settings: Any = True) -> dict[str, Any]:
    return {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "processors": [[".ws", "ws"], [".dspy", "dspy"]],
        },
        "plugins": {"ws": ws_settings, "dspy": True, "guard": True},
    }


ECHO = """\
user = await get_user()
await ws_send(ws, {"got": ws_data, "user": user, "name": params_kw.name})
"""

COUNTER = """\
global counter
try:
    counter += 1
except NameError:
    counter = 1
await ws_send(counter)
"""

CHAT = """\
msg = json.loads(ws_data)
if msg["op"] == "register":
    ws_pool.register(msg["id"])
    await ws_send({"registered": msg["id"], "online": ws_pool.is_online(msg["id"])})
else:
    sent = await ws_pool.sendto({"from": ws_pool.id, "text": msg["text"]}, msg["to"])
    await ws_send({"delivered": sent is None})
"""

FAILING = """\
if ws_data == "boom":
    raise ValueError("secret detail")
if ws_data == "deny":
    server_error(403)
await ws_send("fine")
"""

FILES = {
    "wwwroot/echo.ws": ECHO,
    "wwwroot/counter.ws": COUNTER,
    "wwwroot/chat.ws": CHAT,
    "wwwroot/failing.ws": FAILING,
    "wwwroot/broken.ws": "await ws_send(\n",
    "wwwroot/private/secret.ws": "await ws_send('secret')\n",
    "wwwroot/login.dspy": "await remember_user('alice')\nreturn 'ok'\n",
}


@pytest.fixture
def start(make_site: MakeSite, ahcore_client: Client) -> Callable[..., Awaitable[Any]]:
    """``client = await start(settings)``: the site of FILES on a real socket."""

    async def start_site(settings: Any = True, **kwargs: Any) -> Any:
        site = make_site(config=config(settings), files=FILES)
        return await ahcore_client(site, extra_plugins={"guard": Guard()}, **kwargs)

    return start_site


async def receive(ws: aiohttp.ClientWebSocketResponse) -> Any:
    msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


# ---------------------------------------------------------------- what a script sees


async def test_script_runs_per_message_with_the_handshakes_namespace(start):
    client = await start()
    assert (await client.get("/login.dspy")).status == 200  # session cookie in the jar
    async with client.ws_connect("/echo.ws?name=bob") as ws:
        for text in ("one", "two"):
            await ws.send_str(text)
            assert await receive(ws) == {
                "type": 1,
                "data": {"got": text, "user": "alice", "name": "bob"},
            }


async def test_globals_persist_per_connection_and_are_never_shared(start):
    client = await start()
    async with client.ws_connect("/counter.ws") as a, client.ws_connect("/counter.ws") as b:
        for expected in (1, 2, 3):
            await a.send_str("x")
            assert (await receive(a))["data"] == expected
        await b.send_str("x")
        assert (await receive(b))["data"] == 1  # b never saw a's counter
        await a.send_str("x")
        assert (await receive(a))["data"] == 4


async def test_concurrent_connections_keep_their_own_params(start):
    client = await start()
    async with client.ws_connect("/echo.ws?name=a") as a, client.ws_connect("/echo.ws?name=b") as b:
        await a.send_str("1")
        await b.send_str("2")
        assert (await receive(b))["data"]["name"] == "b"
        assert (await receive(a))["data"]["name"] == "a"


async def test_ws_pool_registry_reaches_another_connection_of_the_same_file(start):
    client = await start()
    async with client.ws_connect("/chat.ws") as a, client.ws_connect("/chat.ws") as b:
        await a.send_str(json.dumps({"op": "register", "id": "ann"}))
        assert (await receive(a))["data"] == {"registered": "ann", "online": True}
        await b.send_str(json.dumps({"op": "register", "id": "ben"}))
        await receive(b)
        await b.send_str(json.dumps({"op": "send", "to": "ann", "text": "hi"}))
        assert (await receive(a))["data"] == {"from": "ben", "text": "hi"}
        assert (await receive(b))["data"] == {"delivered": True}
    # Both left: a new connection finds nobody registered.
    async with client.ws_connect("/chat.ws") as c:
        await c.send_str(json.dumps({"op": "send", "to": "ann", "text": "hello?"}))
        assert (await receive(c))["data"] == {"delivered": False}


async def test_ahserver_heartbeat_is_answered_without_running_the_script(start):
    client = await start()
    async with client.ws_connect("/counter.ws") as ws:
        await ws.send_str("_#_heartbeat_#_")
        assert await receive(ws) == {"type": 1, "data": "_#_heartbeat_#_"}
        await ws.send_str("x")
        assert (await receive(ws))["data"] == 1  # the heartbeat did not count


async def test_binary_messages_get_an_error_and_do_not_run_the_script(start):
    client = await start()
    async with client.ws_connect("/counter.ws") as ws:
        await ws.send_bytes(b"\x00\x01")
        reply = await receive(ws)
        assert reply["type"] == "error" and reply["error"]["status"] == 415
        await ws.send_str("x")
        assert (await receive(ws))["data"] == 1


# ---------------------------------------------------------------- errors


async def test_script_exception_is_logged_with_file_and_line_client_gets_no_traceback(
    start, caplog
):
    client = await start()
    caplog.set_level(logging.ERROR)
    async with client.ws_connect("/failing.ws") as ws:
        await ws.send_str("boom")
        msg = await ws.receive()
        reply = json.loads(msg.data)
        assert reply["type"] == "error" and reply["error"]["status"] == 500
        assert "secret detail" not in msg.data and "Traceback" not in msg.data
        error_id = reply["error"]["id"]
        # The connection survives a failed message.
        await ws.send_str("ok")
        assert (await receive(ws))["data"] == "fine"
        await ws.send_str("deny")
        denied = await receive(ws)
        assert denied["error"]["status"] == 403
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert error_id in logged
    assert "failing.ws, line 2" in logged
    assert "ValueError: secret detail" in logged


async def test_debug_mode_shows_the_exception_text(start):
    client = await start(debug=True)
    async with client.ws_connect("/failing.ws") as ws:
        await ws.send_str("boom")
        reply = await receive(ws)
        assert reply["error"]["detail"] == "ValueError: secret detail"


async def test_syntax_error_refuses_the_handshake_with_500(start, caplog):
    client = await start()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/broken.ws")
    assert info.value.status == 500
    assert any("broken.ws, line 1" in r.getMessage() for r in caplog.records)


async def test_message_over_the_size_limit_closes_with_1009(start):
    client = await start({"max_message_size": 1000})
    async with client.ws_connect("/counter.ws") as ws:
        await ws.send_str("x" * 1000)
        assert (await receive(ws))["data"] == 1
        await ws.send_str("x" * 1001)
        msg = await ws.receive()
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1009  # message too big


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"max_message_size": 0}, "max_message_size"),
        ({"max_message_size": "1MB"}, "max_message_size"),
        ({"heartbeat": -1}, "heartbeat"),
        ({"allowed_origins": "https://a.example"}, "allowed_origins"),
        ({"allowed_origins": ["https://a.example/path"]}, "allowed_origins"),
        ({"allowed_origins": ["ftp://a.example"]}, "allowed_origins"),
    ],
)
def test_bad_settings_name_the_key(settings, problem):
    with pytest.raises(ValueError, match=rf"plugins\.ws\.{problem}"):
        parse_settings(settings)


# ---------------------------------------------------------------- the handshake


async def test_cross_origin_handshake_with_session_cookie_is_refused(start):
    client = await start()
    await client.get("/login.dspy")
    host = f"http://{client.server.host}:{client.server.port}"
    for origin in ("http://evil.example", "null", host.replace("http:", "https:")):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect("/echo.ws", headers={"Origin": origin})
        assert info.value.status == 403, origin
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/echo.ws", headers={"Sec-Fetch-Site": "cross-site"})
    assert info.value.status == 403
    # The page's own origin, and a client that sends no Origin (not a browser), pass.
    async with client.ws_connect("/echo.ws", headers={"Origin": host}) as ws:
        await ws.send_str("hi")
        assert (await receive(ws))["data"]["user"] == "alice"
    async with client.ws_connect("/echo.ws") as ws:
        await ws.send_str("hi")
        assert (await receive(ws))["data"]["got"] == "hi"


async def test_allowed_origins_may_connect(start):
    client = await start({"allowed_origins": ["https://App.example.com:443"]})
    async with client.ws_connect("/echo.ws", headers={"Origin": "https://app.example.com"}) as ws:
        await ws.send_str("hi")
        assert (await receive(ws))["data"]["got"] == "hi"
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/echo.ws", headers={"Origin": "https://other.example.com"})
    assert info.value.status == 403


async def test_auth_check_applies_to_the_handshake(start):
    client = await start()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/private/secret.ws")
    assert info.value.status == 401


async def test_methods_and_plain_requests(start):
    client = await start()
    resp = await client.post("/echo.ws")
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET,OPTIONS"  # the kernel answers OPTIONS itself
    resp = await client.get("/echo.ws")  # not a websocket handshake
    assert resp.status == 426
    assert resp.headers["Upgrade"] == "websocket"
    assert "websocket" in await resp.text()
    # The source is never sent.
    assert "ws_send" not in await resp.text()


async def test_path_call_of_a_ws_file_is_a_500_not_a_crash(make_site, ahcore_client):
    files = dict(FILES, **{"wwwroot/call.dspy": "return await path_call('echo.ws')\n"})
    client = await ahcore_client(
        make_site(config=config(), files=files), extra_plugins={"guard": Guard()}
    )
    resp = await client.get("/call.dspy")
    assert resp.status == 500
    assert "Traceback" not in await resp.text()


# ---------------------------------------------------------------- shutdown


async def test_shutdown_closes_connections_with_going_away(make_site, tmp_path):
    done = tmp_path / "script-stopped"
    files = dict(
        FILES,
        **{
            "wwwroot/ticker.ws": (
                "try:\n"
                "    while True:\n"
                "        await ws_send('tick')\n"
                "        await async_sleep(0.01)\n"
                "finally:\n"
                f"    open({str(done)!r}, 'w').close()\n"
            )
        },
    )
    app = build_app(make_site(config=config(), files=files), extra_plugins={"guard": Guard()})
    # A shutdown_timeout far beyond the wait below: only the plugin's own
    # close can make shutdown finish in time.
    running = await start_test_site(app, shutdown_timeout=600)
    async with aiohttp.ClientSession() as http:
        idle = await http.ws_connect(running.url / "echo.ws")
        busy = await http.ws_connect(running.url / "ticker.ws")
        await busy.send_str("go")
        assert (await receive(busy))["data"] == "tick"
        closing = asyncio.create_task(running.close())
        msg = await idle.receive(timeout=60)  # the client answers the close frame while reading
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert (msg.data, msg.extra) == (1001, "server shutting down")
        while (msg := await busy.receive(timeout=60)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
        await asyncio.wait_for(closing, 60)
        assert done.exists()  # the looping script was stopped
        await idle.close()
        await busy.close()
