"""Session cookies under attack: forgery, tampering, replay, expiry, fixation, CSRF.

Cookie sessions (the default) are encrypted and signed with the site secret.
Logout ends a session everywhere (SPEC §14, ahcore/session.py,
ahcore/revocations.py): the ticket's id is recorded as revoked — in a SQLite
file in the site, or in Redis when configured — so a copy of the cookie taken
before logout is anonymous when replayed, in this worker and in any other.
"""

from __future__ import annotations

import json
import time

import pytest
from advkit import (
    GUARD_FILES,
    GuardPlugin,
    guard_config,
    raw_exchange,
    request_bytes,
    set_cookie_lines,
    set_cookie_value,
)

from ahcore import hookimpl
from ahcore.session import COOKIE_NAME

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def site(make_site):
    return make_site(config=guard_config(), files=GUARD_FILES)


@pytest.fixture
async def server(site, serve):
    return await serve(site, extra_plugins={"guard": GuardPlugin()})


def cookie_header(value: str | None) -> dict[str, str]:
    return {"Cookie": f"{COOKIE_NAME}={value}"} if value is not None else {}


async def login(server, user: str, cookie: str | None = None) -> str:
    r = await raw_exchange(
        server,
        request_bytes("POST", "/login.call", f"user={user}".encode(), FORM | cookie_header(cookie)),
    )
    assert r.status == 200, r.raw[:300]
    value = set_cookie_value(r, COOKIE_NAME)
    assert value
    return value


async def whoami(server, cookie: str | None) -> str | None:
    r = await raw_exchange(
        server, request_bytes("GET", "/whoami.call", headers=cookie_header(cookie))
    )
    assert r.status == 200, r.raw[:300]
    r.assert_clean()
    return json.loads(r.body)["user"]


async def test_cookie_flags(server):
    r = await raw_exchange(server, request_bytes("POST", "/login.call", b"user=ann", FORM))
    (line,) = [x for x in set_cookie_lines(r) if COOKIE_NAME in x]
    lowered = line.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered


async def test_forged_and_tampered_cookies_are_anonymous(server):
    good = await login(server, "boss")
    assert await whoami(server, good) == "boss"
    mid = len(good) // 2
    forged = [
        "",
        "garbage",
        "A" * 4000,
        good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        good[:mid] + ("x" if good[mid] != "x" else "y") + good[mid + 1 :],
        good[::-1],
        # The last data character dropped (a token is ``…==``: dropping one
        # ``=`` leaves the same token, which cryptography 51 decodes as such).
        good.rstrip("=")[:-1],
        # Appended after base64 padding a character is ignored by the decoder
        # (the same token); before it, it changes the token.
        good.rstrip("=") + "A",
        # Quotes are stripped by the cookie parser: a whole token inside them
        # would be the genuine one, so the quoted token is a truncated one.
        '"' + good.rstrip("=")[:-4] + '"extra',
        "%00%00",
        '{"ahcore.ticket": {"userid": "boss", "issued": 9999999999}}',
    ]
    for value in forged:
        assert await whoami(server, value) is None, value
        r = await raw_exchange(
            server, request_bytes("GET", "/private/secret.txt", headers=cookie_header(value))
        )
        assert r.status == 401 and b"PRIVATE-" not in r.raw
        r.assert_clean()


async def test_cookie_from_a_site_with_another_secret_is_anonymous(make_site, serve, server):
    other_site = make_site(config=guard_config(cookie_secret="another-secret-also-at-least-32-bytes"), files=GUARD_FILES)
    other = await serve(other_site, extra_plugins={"guard": GuardPlugin()})
    foreign = await login(other, "boss")
    assert await whoami(other, foreign) == "boss"
    assert await whoami(server, foreign) is None


async def logout(server, cookie: str) -> None:
    r = await raw_exchange(
        server, request_bytes("POST", "/logout.call", headers=cookie_header(cookie))
    )
    assert r.status == 200, r.raw[:300]
    cleared = set_cookie_value(r, COOKIE_NAME)
    assert cleared in ("", None) or await whoami(server, cleared) is None


async def test_a_cookie_replayed_after_logout_is_anonymous(server, site):
    cookie = await login(server, "boss")
    other = await login(server, "ann")
    assert await whoami(server, cookie) == "boss"
    await logout(server, cookie)
    # The browser's cookie is cleared, and a copy taken before logout is dead too:
    assert await whoami(server, cookie) is None
    r = await raw_exchange(
        server, request_bytes("GET", "/private/secret.txt", headers=cookie_header(cookie))
    )
    assert r.status == 401 and b"PRIVATE-" not in r.raw
    # The replayed cookie's answer carries no ticket either.
    refreshed = set_cookie_value(r, COOKIE_NAME)
    assert refreshed is None or await whoami(server, refreshed) is None
    # Nobody else was logged out.
    assert await whoami(server, other) == "ann"
    # The record is in the site's own store, private to its owner.
    store = site / "conf" / ".session_revocations.sqlite3"
    assert store.stat().st_mode & 0o777 == 0o600


async def test_a_logout_ends_the_cookie_in_every_server_of_the_site(site, serve, server):
    """Two servers of one site folder (as two workers of ``ahcore serve --workers 2``)."""
    second = await serve(site, extra_plugins={"guard": GuardPlugin()})
    # An earlier logout, so that the store exists and each server keeps
    # its memory of live sessions (ahcore/revocations.py) ...
    await logout(server, await login(server, "ann"))
    cookie = await login(server, "boss")
    assert await whoami(server, cookie) == "boss"
    assert await whoami(second, cookie) == "boss"
    # ... which a logout in the other server must override at once.
    await logout(second, cookie)
    assert await whoami(server, cookie) is None
    assert await whoami(second, cookie) is None


async def test_a_revoked_cookie_stays_dead_after_its_session_was_reissued(server, monkeypatch):
    """A copy reissued (fresher ``issued``) before the logout is ended with it."""
    cookie = await login(server, "boss")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 50)  # past reissue_time (10)
    r = await raw_exchange(
        server, request_bytes("GET", "/whoami.call", headers=cookie_header(cookie))
    )
    reissued = set_cookie_value(r, COOKIE_NAME)
    assert reissued and reissued != cookie
    await logout(server, cookie)
    assert await whoami(server, cookie) is None
    assert await whoami(server, reissued) is None


async def test_logging_in_again_ends_the_previous_ticket(server):
    first = await login(server, "ann")
    second = await login(server, "boss", cookie=first)
    assert await whoami(server, second) == "boss"
    assert await whoami(server, first) is None


async def test_expired_ticket_is_anonymous_and_not_reissued(server, monkeypatch):
    cookie = await login(server, "ann")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 101)
    r = await raw_exchange(
        server, request_bytes("GET", "/members/m.txt", headers=cookie_header(cookie))
    )
    assert r.status == 401
    assert b"MEMBERS-CONTENT" not in r.raw
    refreshed = set_cookie_value(r, COOKIE_NAME)
    if refreshed:
        # Whatever comes back must not carry a live ticket.
        monkeypatch.setattr(time, "time", real)
        assert await whoami(server, refreshed) is None


async def test_planted_cookie_never_becomes_the_logged_in_session(server):
    # A planted garbage value ...
    fresh = await login(server, "ann", cookie="attacker-chosen-value")
    assert fresh != "attacker-chosen-value"
    assert await whoami(server, "attacker-chosen-value") is None
    # ... and a planted valid session of the attacker's own.
    mallory = await login(server, "mallory")
    victim = await login(server, "ann", cookie=mallory)
    assert victim != mallory
    assert await whoami(server, victim) == "ann"
    # The attacker's copy did not become ann (logging in ended its ticket).
    assert await whoami(server, mallory) is None


CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1.evil.example"},
    {"Origin": "https://127.0.0.1"},
    {"Referer": "http://evil.example/page"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1"},
]


@pytest.mark.parametrize(
    "headers", CROSS_SITE, ids=lambda h: "+".join(f"{k}={v}" for k, v in h.items())
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_cross_site_state_change_is_refused_and_changes_nothing(server, headers, method):
    cookie = await login(server, "ann")
    target = "/logout.call" if method == "POST" else "/login.call"
    r = await raw_exchange(
        server,
        request_bytes(method, target, b"user=boss", FORM | cookie_header(cookie) | headers),
    )
    assert r.status == 403, r.raw[:300]
    r.assert_clean()
    assert set_cookie_value(r, COOKIE_NAME) is None
    assert await whoami(server, cookie) == "ann"


async def test_cross_site_login_switch_is_refused(server):
    """Login CSRF against a logged-in visitor: the attacker cannot swap the session."""
    cookie = await login(server, "ann")
    r = await raw_exchange(
        server,
        request_bytes(
            "POST",
            "/login.call",
            b"user=mallory",
            FORM | cookie_header(cookie) | {"Origin": "http://evil.example"},
        ),
    )
    assert r.status == 403
    assert set_cookie_value(r, COOKIE_NAME) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        # a cross-site form post is a top-level navigation: past the fetch-metadata check
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"},
    ],
)
async def test_a_cross_site_login_without_a_session_issues_none(server, headers):
    """Login CSRF against a visitor with no session yet: another site's form
    posting the attacker's credentials must not log the visitor in."""
    r = await raw_exchange(
        server, request_bytes("POST", "/login.call", b"user=mallory", FORM | headers)
    )
    assert r.status == 403
    assert b"login refused" in r.body
    assert set_cookie_value(r, COOKIE_NAME) is None
    r.assert_clean()


async def test_a_same_origin_login_without_a_session_works(server):
    own = {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"}  # advkit sends Host: 127.0.0.1
    r = await raw_exchange(server, request_bytes("POST", "/login.call", b"user=ann", FORM | own))
    assert r.status == 200
    cookie = set_cookie_value(r, COOKIE_NAME)
    assert cookie and await whoami(server, cookie) == "ann"


async def test_same_origin_state_change_is_allowed(server):
    cookie = await login(server, "ann")
    origin = "http://127.0.0.1"  # the Host header request_bytes sends
    r = await raw_exchange(
        server,
        request_bytes(
            "POST",
            "/logout.call",
            headers=cookie_header(cookie) | {"Origin": origin, "Sec-Fetch-Site": "same-origin"},
        ),
    )
    assert r.status == 200


# ------------------------------------------------------------------ Redis sessions


def redis_or_skip() -> str:
    import os
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError as exc:
        if os.environ.get("AHCORE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis is required (AHCORE_REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"Redis not reachable on 127.0.0.1:6379: {exc}")
    return "redis://127.0.0.1:6379/0"


class HoldPlugin:
    """``GET /hold``: reads the session, then waits for the test before answering.

    A request in flight while the same session logs out elsewhere: when it
    answers, its (older) view of the session is saved back.
    """

    def __init__(self) -> None:
        import asyncio

        self.loaded = asyncio.Event()
        self.release = asyncio.Event()

    @hookimpl
    def register_routes(self, app):
        from aiohttp import web

        from ahcore.api import current_user

        async def hold(request):
            user = await current_user(request)
            self.loaded.set()
            await self.release.wait()
            return web.json_response({"user": user})

        app.router.add_get("/hold", hold)


async def test_redis_logout_ends_a_replayed_cookie_even_one_saved_back_in_flight(
    make_site, serve, monkeypatch
):
    import asyncio

    url = redis_or_skip()
    config = guard_config(session_redis={"url": url})
    config["plugins"]["hold"] = True
    holder = HoldPlugin()
    one = await serve(
        make_site(config=config, files=GUARD_FILES),
        extra_plugins={"guard": GuardPlugin(), "hold": holder},
    )
    two = await serve(
        make_site(config=config, files=GUARD_FILES),
        extra_plugins={"guard": GuardPlugin(), "hold": HoldPlugin()},
    )
    cookie = await login(one, "boss")
    assert await whoami(two, cookie) == "boss"  # shared through Redis

    # A request of the same session is in flight on server one ...
    in_flight = asyncio.create_task(
        raw_exchange(one, request_bytes("GET", "/hold", headers=cookie_header(cookie)))
    )
    await asyncio.wait_for(holder.loaded.wait(), 5)
    # ... when the session logs out on server two.
    await logout(two, cookie)
    assert await whoami(one, cookie) is None
    # The in-flight request finishes late enough to reissue the ticket, which
    # writes the session back to Redis under the old id.
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 50)
    holder.release.set()
    r = await in_flight
    assert r.status == 200 and json.loads(r.body)["user"] == "boss"
    # The replayed cookie is still anonymous, on both servers.
    assert await whoami(one, cookie) is None
    assert await whoami(two, cookie) is None


# ------------------------------------------------------------------ two server processes


async def test_a_logout_in_one_server_process_ends_the_cookie_in_another(tmp_path):
    """Two ``ahcore serve`` processes of one site folder (what ``--workers 2`` runs):
    the record of the logout is in the site, so the other process sees it at once."""
    import asyncio
    import os
    import socket
    import subprocess
    import sys

    from advkit import parse_reply

    site = tmp_path / "site"
    (site / "conf").mkdir(parents=True)
    (site / "wwwroot").mkdir()
    (site / "conf" / "config.json").write_text(
        json.dumps(
            {
                "website": {
                    "host": "127.0.0.1",
                    "paths": [["$[workdir]$/wwwroot", ""]],
                    "cookie_secret": "two-processes-secret-of-32-bytes!",
                },
                "plugins": {"dspy": True},
            }
        )
    )
    (site / "wwwroot" / "hello.txt").write_text("hello")
    (site / "wwwroot" / "login.dspy").write_text("await remember_user(params_kw.user)\nreturn {'ok': True}\n")
    (site / "wwwroot" / "logout.dspy").write_text("await forget_user()\nreturn {'ok': True}\n")
    (site / "wwwroot" / "whoami.dspy").write_text(
        "return {'user': await get_user(), 'pid': __import__('os').getpid()}\n"
    )

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    async def exchange(port: int, payload: bytes):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return parse_reply(data)

    async def whoami_at(port: int, cookie: str):
        r = await exchange(port, request_bytes("GET", "/whoami.dspy", headers=cookie_header(cookie)))
        assert r.status == 200, r.raw[:300]
        return json.loads(r.body)

    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ahcore", "serve", "-w", str(site), "-p", str(p)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        for p in ports
    ]
    try:
        for proc in procs:
            assert "serving" in proc.stdout.readline()

        async def login_at(port: int, user: str) -> str:
            r = await exchange(port, request_bytes("POST", "/login.dspy", f"user={user}".encode(), FORM))
            cookie = set_cookie_value(r, COOKIE_NAME)
            assert r.status == 200 and cookie
            return cookie

        # An earlier logout creates the store; both processes then remember
        # ann's session as live before it ends in one of them.
        earlier = await login_at(ports[0], "bob")
        await exchange(ports[0], request_bytes("POST", "/logout.dspy", headers=cookie_header(earlier)))
        cookie = await login_at(ports[0], "ann")
        assert (await whoami_at(ports[0], cookie))["user"] == "ann"
        seen = await whoami_at(ports[1], cookie)
        assert seen == {"user": "ann", "pid": procs[1].pid}
        r = await exchange(ports[1], request_bytes("POST", "/logout.dspy", headers=cookie_header(cookie)))
        assert r.status == 200
        seen = await whoami_at(ports[0], cookie)
        assert seen == {"user": None, "pid": procs[0].pid}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
