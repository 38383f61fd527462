"""Session cookies under attack: forgery, tampering, replay, expiry, fixation, CSRF.

Cookie sessions (the default) are encrypted and signed with the site secret.
Documented behaviour (SPEC §14, ahcore/session.py): with cookie sessions,
logout clears the browser's cookie but a copy of the old cookie keeps working
until its ticket expires (``session_max_time``); with Redis, logout deletes
the session server-side.
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
        good[:-1],
        good + "A",
        '"' + good + '"extra',
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
    other_site = make_site(config=guard_config(cookie_secret="another-secret"), files=GUARD_FILES)
    other = await serve(other_site, extra_plugins={"guard": GuardPlugin()})
    foreign = await login(other, "boss")
    assert await whoami(other, foreign) == "boss"
    assert await whoami(server, foreign) is None


async def test_replayed_cookie_after_logout_works_until_the_ticket_expires(server, monkeypatch):
    """The documented cookie-session behaviour, asserted so that a change is noticed."""
    cookie = await login(server, "ann")
    r = await raw_exchange(
        server, request_bytes("POST", "/logout.call", headers=cookie_header(cookie))
    )
    assert r.status == 200
    cleared = set_cookie_value(r, COOKIE_NAME)
    assert cleared in ("", None) or await whoami(server, cleared) is None
    # The browser's cookie is cleared; a stolen copy still works ...
    assert await whoami(server, cookie) == "ann"
    # ... until its ticket expires (session_max_time = 100 in this site).
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 101)
    assert await whoami(server, cookie) is None


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
    assert await whoami(server, mallory) == "mallory"  # the attacker's copy did not become ann


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
