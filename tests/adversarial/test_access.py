"""Access control cannot be side-stepped by spelling the URL differently.

The auth plugin (``advkit.GuardPlugin``) is default-deny: ``/private/`` is for
``boss``, ``/members/`` for any logged-in user, a short public list for
everyone, everything else refused. Requests go over raw sockets so that no
client library normalises ``//``, ``/./``, ``;params`` or percent-encodings.
"""

from __future__ import annotations

import json

import pytest
from advkit import GUARD_FILES, GuardPlugin, guard_config, raw_exchange, request_bytes

from ahcore.session import COOKIE_NAME

PROTECTED_MARKERS = (b"PRIVATE-", b"MEMBERS-CONTENT", b"UNLISTED-CONTENT")


@pytest.fixture
def site(make_site):
    return make_site(config=guard_config(), files=GUARD_FILES)


@pytest.fixture
async def server(site, serve):
    return await serve(site, extra_plugins={"guard": GuardPlugin()})


async def login(server, user: str) -> str:
    """Log in over a raw socket; the session cookie's value."""
    body = f"user={user}".encode()
    r = await raw_exchange(
        server,
        request_bytes(
            "POST", "/login.call", body, {"Content-Type": "application/x-www-form-urlencoded"}
        ),
    )
    assert r.status == 200, r.raw[:300]
    cookie = next(
        line for line in r.raw.split(b"\r\n") if line.lower().startswith(b"set-cookie: ahcore")
    )
    return cookie.split(b":", 1)[1].split(b";", 1)[0].strip().split(b"=", 1)[1].decode()


async def get(server, target: str, cookie: str | None = None):
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie else {}
    return await raw_exchange(server, request_bytes("GET", target, headers=headers))


SPELLINGS = [
    "/private/secret.txt",
    "//private/secret.txt",
    "///private///secret.txt",
    "/./private/secret.txt",
    "/private/./secret.txt",
    "/private//secret.txt",
    "/public/../private/secret.txt",
    "/public/%2e%2e/private/secret.txt",
    "/public/%2e%2e%2fprivate%2fsecret.txt",
    "/public/..%5cprivate%5csecret.txt",
    "/private/secret.txt/",
    "/private/secret.txt;x=1",
    "/private;x=1/secret.txt",
    "/private/secret.txt%3bx",
    "/%70rivate/secret.txt",
    "/%70%72%69%76%61%74%65/%73ecret.txt",
    "/private%2fsecret.txt",
    "/private%2Fsecret.txt",
    "/%2fprivate/secret.txt",
    "/private%252fsecret.txt",
    "/PRIVATE/secret.txt",
    "/Private/secret.txt",
    "/private/SECRET.TXT",
    "/private/secret.txt%20",
    "/private/secret.txt.",
    "/private/secret.txt%00",
    "/private/secret.txt%00.html",
    "/private/secret.txt?x=/public/",
    "/private/secret.txt#/public/",
    "/private\\secret.txt",
    "/private",
    "/private/",
    "//private/",
    "/private/index.html",
    "/private/sub/deep.txt",
    "/private/sub/./../sub/deep.txt",
    "/private/data.dspy",
    "/private/data.dspy/",
    "/members/m.txt",
    "//members//m.txt",
    "/other.txt",
    "/./other.txt",
    "/%6fther.txt",
    "/public/caller.dspy?p=/private/secret.txt",
    "/public/caller.dspy?p=/private/data.dspy",
    "/public/caller.dspy?p=../private/data.dspy",
    "/public/caller.dspy?p=//private/data.dspy",
    "/public/caller.dspy?p=/%70rivate/data.dspy",
    "http://127.0.0.1/private/secret.txt",
    "*",
]


@pytest.mark.parametrize("target", SPELLINGS)
async def test_anonymous_never_gets_protected_content(server, target):
    r = await get(server, target)
    assert r.status in (301, 400, 401, 403, 404), (target, r.status, r.raw[:200])
    for marker in PROTECTED_MARKERS:
        assert marker not in r.raw, (target, r.raw[:300])
    r.assert_clean()
    if r.status == 301:
        # A redirect may only lead to a URL that is protected in its turn.
        location = r.headers["location"]
        r2 = await get(server, location)
        assert r2.status in (401, 403, 404), (target, location, r2.status)


@pytest.mark.parametrize("target", [t for t in SPELLINGS if "members" not in t])
async def test_logged_in_non_boss_never_gets_private_content(server, target):
    cookie = await login(server, "ann")
    r = await get(server, target, cookie)
    assert r.status in (301, 400, 401, 403, 404), (target, r.status, r.raw[:200])
    assert b"PRIVATE-" not in r.raw and b"UNLISTED-CONTENT" not in r.raw
    r.assert_clean()


async def test_boss_gets_private_content_and_ann_gets_403(server):
    boss = await login(server, "boss")
    r = await get(server, "/private/secret.txt", boss)
    assert r.status == 200 and r.body == b"PRIVATE-CONTENT"
    r = await get(server, "//private/./secret.txt", boss)
    assert r.status == 200 and r.body == b"PRIVATE-CONTENT"
    ann = await login(server, "ann")
    r = await get(server, "/private/secret.txt", ann)
    assert r.status == 403
    r = await get(server, "/members/m.txt", ann)
    assert r.status == 200 and r.body == b"MEMBERS-CONTENT"


async def test_public_content_still_served(server):
    r = await get(server, "/public/hello.txt")
    assert r.status == 200 and r.body == b"public hello"


async def test_default_deny_gives_no_existence_oracle(server):
    """Anonymous: an unlisted existing file and a missing one answer alike (401)."""
    a = await get(server, "/other.txt")
    b = await get(server, "/does-not-exist.txt")
    assert a.status == b.status == 401


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_checked_too(server, method):
    r = await raw_exchange(
        server,
        request_bytes(
            method, "/private/data.dspy", b'{"a": 1}', {"Content-Type": "application/json"}
        ),
    )
    assert r.status == 401
    assert b"PRIVATE-" not in r.raw


async def test_forged_user_parameters_do_not_log_in(server):
    for target in (
        "/private/secret.txt?user=boss",
        "/private/secret.txt?userid=boss&username=boss",
    ):
        r = await get(server, target)
        assert r.status == 401
    r = await raw_exchange(
        server,
        request_bytes(
            "GET",
            "/private/secret.txt",
            headers={
                "X-User": "boss",
                "Authorization": "Basic Ym9zczpib3Nz",
                "X-Remote-User": "boss",
            },
        ),
    )
    assert r.status == 401


async def test_whoami_is_anonymous_without_cookie(server):
    r = await get(server, "/whoami.call?user=boss")
    assert json.loads(r.body)["user"] is None
