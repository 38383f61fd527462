"""ahcore-rbac under attack: its login endpoint's body, its default, its cookies.

The login endpoint is a plugin route (not a file), so it is where a plugin
reading bodies or setting cookies on its own would show: the body must come
through the kernel's one reader (size and read-time limits), the cookie
through the kernel's one cookie function (``Secure`` from the scheme the
client used, a trusted proxy's word included).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from advkit import raw_exchange, request_bytes, set_cookie_lines, set_cookie_value

from ahcore.api import PluginError
from ahcore.session import COOKIE_NAME

pytest.importorskip("ahcore_rbac")

from ahcore_rbac import get_rbac, store  # noqa: E402

FAST_KDF = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
LIMIT = 1.0  # the site's request_timeout
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}

FILES = {
    "wwwroot/index.html": "HOME",
    "wwwroot/open/page.txt": "OPEN",
    "wwwroot/admin/secret.txt": "ADMIN-SECRET",
    "wwwroot/unlisted.txt": "UNLISTED-CONTENT",
}


def rbac_config(rbac: dict | None = None, **website) -> dict:
    return {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "cookie_secret": "adversarial-rbac-secret-of-32-bytes!",
            "request_timeout": LIMIT,
            "client_max_size": 4096,
        }
        | website,
        "databases": {"rbac": {"driver": "sqlite", "kwargs": {"dbname": "$[workdir]$/rbac.db"}}},
        "plugins": {
            "sqlite": True,
            "rbac": {"db": "rbac", "argon2": FAST_KDF, "public": ["/index.html", "/open/**"]}
            | (rbac or {}),
        },
    }


async def seed(app) -> None:
    """``admin`` holds ``sys.admin``, which ``/admin/**`` needs; ``ann`` holds nothing."""
    state = get_rbac(app)
    async with state.sor() as sor:
        for name in ("admin", "ann"):
            await store.add_user(sor, name, await state.passwords.hash(f"{name}-pw"), "org", "sys")
        admin = await store.user_by_name(sor, "admin")
        await store.grant_role(sor, admin["id"], "sys.admin")
        await store.grant_permission(sor, "sys.admin", "/admin/**")


@pytest.fixture
def site(make_site) -> Path:
    return make_site(config=rbac_config(), files=FILES)


@pytest.fixture
async def server(site, serve):
    running = await serve(site)
    await seed(running.app)
    return running


async def failures(server, username: str) -> int:
    async with get_rbac(server.app).sor() as sor:
        row = await store.user_by_name(sor, username)
    return int(row["failed_logins"] or 0)


def login_bytes(body: bytes, headers: dict[str, str], **extra: str) -> bytes:
    return request_bytes("POST", "/rbac/login", body, headers | extra)


# ------------------------------------------------------------------ the login body


async def test_a_login_body_trickled_byte_by_byte_is_cut_off(server):
    """The body reader's deadline holds for the plugin's route: 408 and closed, no login."""
    body = b"username=admin&password=admin-pw&" + b"x=" + b"a" * 400
    head = request_bytes("POST", "/rbac/login", headers=FORM | {"Content-Length": str(len(body))})
    reader, writer = await asyncio.open_connection(server.host, server.port)
    answer = b""
    sent = 0
    try:
        writer.write(head)
        await writer.drain()
        # One byte every 0.1 s: the whole body would take 40 s; the server
        # must give up on it (request_timeout is 1 s) long before that.
        for sent in range(1, len(body) + 1):
            try:
                writer.write(body[sent - 1 : sent])
                await writer.drain()
            except ConnectionError:
                break
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.1)
            except asyncio.TimeoutError:
                continue
            except ConnectionResetError:
                break
            answer = chunk
            while chunk:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), 3)
                except (asyncio.TimeoutError, ConnectionResetError):
                    break
                answer += chunk
            break
    finally:
        writer.close()
    assert sent < len(body), "the server waited for the whole trickled body"
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b"request body not received within 1 s" in answer
    assert b"set-cookie" not in answer.lower()
    assert await failures(server, "admin") == 0


@pytest.mark.parametrize(
    "body, kind",
    [(b"[1, 2]", "an array"), (b"42", "a number"), (b'"admin"', "a string"), (b"null", "null")],
)
async def test_a_json_login_body_that_is_not_an_object_is_a_400(server, body, kind):
    r = await raw_exchange(server, login_bytes(body, JSON))
    assert r.status == 400, r.raw[:300]
    assert f"a JSON object is expected, got {kind}" in r.text
    assert set_cookie_value(r, COOKIE_NAME) is None
    r.assert_clean()


@pytest.mark.parametrize("body", [b'{"username": "admin", "password": ', b"\xff\xfe{}", b"[" * 100 + b"]" * 100])
async def test_a_malformed_json_login_body_is_a_400(server, body):
    r = await raw_exchange(server, login_bytes(body, JSON))
    assert r.status == 400, r.raw[:300]
    assert "malformed JSON body" in r.text
    assert set_cookie_value(r, COOKIE_NAME) is None
    r.assert_clean()


async def test_an_oversized_login_body_is_a_413(server):
    body = b"username=admin&password=" + b"p" * 8000
    r = await raw_exchange(server, login_bytes(body, FORM))
    assert r.status == 413, r.raw[:300]
    assert set_cookie_value(r, COOKIE_NAME) is None
    assert await failures(server, "admin") == 0


async def test_credentials_in_the_query_string_are_not_read(server):
    r = await raw_exchange(
        server,
        request_bytes("POST", "/rbac/login?username=admin&password=admin-pw", b"", FORM),
    )
    assert r.status == 400 and "username and password are required" in r.text
    assert set_cookie_value(r, COOKIE_NAME) is None


async def test_a_json_object_login_still_works(server):
    r = await raw_exchange(
        server, login_bytes(json.dumps({"username": "admin", "password": "admin-pw"}).encode(), JSON)
    )
    assert r.status == 200, r.raw[:300]
    assert json.loads(r.body)["user"]["username"] == "admin"
    (line,) = [x for x in set_cookie_lines(r) if COOKIE_NAME in x]
    assert "secure" not in line.lower()  # plain http, no proxy


# ------------------------------------------------------------------ the login cookie


def cookie_line(reply) -> str:
    (line,) = [x for x in set_cookie_lines(reply) if COOKIE_NAME in x]
    return line.lower()


PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"}
CREDENTIALS = b"username=admin&password=admin-pw"


async def test_the_login_cookie_is_secure_when_the_client_used_https_through_a_trusted_proxy(
    make_site, serve
):
    running = await serve(
        make_site(config=rbac_config(trusted_proxies=["127.0.0.1"]), files=FILES)
    )
    await seed(running.app)
    r = await raw_exchange(running, login_bytes(CREDENTIALS, FORM | PROXIED))
    assert r.status == 200, r.raw[:300]
    line = cookie_line(r)
    assert "secure" in line and "httponly" in line and "samesite=lax" in line and "path=/" in line
    # The same proxy, plain http: no Secure (the browser would drop the cookie).
    r = await raw_exchange(running, login_bytes(CREDENTIALS, FORM))
    assert "secure" not in cookie_line(r)
    # Logging out through the proxy: a cookie POST whose Origin is the https
    # origin the visitor sees is same-origin (not a CSRF refusal), and the
    # cleared cookie is Secure too.
    cookie = set_cookie_value(
        await raw_exchange(running, login_bytes(CREDENTIALS, FORM | PROXIED)), COOKIE_NAME
    )
    r = await raw_exchange(
        running,
        request_bytes(
            "POST",
            "/rbac/logout",
            headers=PROXIED
            | {"Origin": "https://shop.example", "Cookie": f"{COOKIE_NAME}={cookie}"},
        ),
    )
    assert r.status == 200, r.raw[:300]
    assert "secure" in cookie_line(r) and "max-age=0" in cookie_line(r)
    # A cross-origin logout through the same proxy is still refused.
    r = await raw_exchange(
        running,
        request_bytes(
            "POST",
            "/rbac/logout",
            headers=PROXIED
            | {"Origin": "https://evil.example", "Cookie": f"{COOKIE_NAME}={cookie}"},
        ),
    )
    assert r.status == 403


async def test_forwarded_https_from_an_untrusted_peer_does_not_make_the_cookie_secure(server):
    r = await raw_exchange(server, login_bytes(CREDENTIALS, FORM | PROXIED))
    assert r.status == 200, r.raw[:300]
    assert "secure" not in cookie_line(r)


# ------------------------------------------------------------------ password hashing


async def test_a_login_burst_hashes_in_the_sites_own_bounded_pool(make_site, serve):
    """Twenty concurrent logins: argon2 runs only in ``hash_workers`` threads of the
    rbac pool (never the loop's default executor), and static files keep answering."""
    import threading

    running = await serve(make_site(config=rbac_config({"hash_workers": 2}), files=FILES))
    await seed(running.app)
    passwords = get_rbac(running.app).passwords
    seen: set[str] = set()
    busy = 0
    most = 0
    lock = threading.Lock()
    original = passwords.verify_sync

    def watched_verify(stored, password):
        nonlocal busy, most
        with lock:
            busy += 1
            most = max(most, busy)
            seen.add(threading.current_thread().name)
        try:
            return original(stored, password)
        finally:
            with lock:
                busy -= 1

    passwords.verify_sync = watched_verify  # type: ignore[method-assign]
    logins = [
        raw_exchange(running, login_bytes(f"username={name}&password={name}-pw".encode(), FORM))
        for name in ("admin", "ann", "nobody", "admin") * 5
    ]
    static = [raw_exchange(running, request_bytes("GET", "/open/page.txt")) for _ in range(20)]
    replies = await asyncio.gather(*logins, *static)
    statuses = [r.status for r in replies[:20]]
    assert [s for i, s in enumerate(statuses) if i % 4 != 2] == [200] * 15
    # "nobody" has no account and is counted like one: its fifth failure locks it.
    assert sorted(statuses[2::4]) == [401, 401, 401, 401, 429]
    assert all(r.status == 200 and r.body == b"OPEN" for r in replies[20:])
    assert seen and all(name.startswith("ahcore-rbac-hash") for name in seen), seen
    assert most <= 2 and len(seen) <= 2, (most, seen)


async def test_the_hashing_pool_stops_with_the_site(make_site, serve):
    import threading

    running = await serve(make_site(config=rbac_config(), files=FILES))
    await seed(running.app)
    r = await raw_exchange(running, login_bytes(CREDENTIALS, FORM))
    assert r.status == 200
    assert any(t.name.startswith("ahcore-rbac-hash") for t in threading.enumerate())
    passwords = get_rbac(running.app).passwords
    await running.close()
    with pytest.raises(RuntimeError, match="has not started"):
        await passwords.hash("x")


@pytest.mark.parametrize("workers", [0, -1, True, "2", 1.5])
def test_hash_workers_must_be_a_positive_integer(workers):
    from ahcore_rbac.settings import RbacSettings

    with pytest.raises(ValueError, match="hash_workers"):
        RbacSettings.from_mapping({"hash_workers": workers})


# ------------------------------------------------------------------ default deny


async def login_cookie(server, name: str) -> dict[str, str]:
    r = await raw_exchange(server, login_bytes(f"username={name}&password={name}-pw".encode(), FORM))
    assert r.status == 200, r.raw[:300]
    return {"Cookie": f"{COOKIE_NAME}={set_cookie_value(r, COOKIE_NAME)}"}


async def get(server, target: str, headers: dict[str, str] | None = None):
    return await raw_exchange(server, request_bytes("GET", target, headers=headers or {}))


@pytest.mark.parametrize(
    "target",
    ["/unlisted.txt", "//unlisted.txt", "/./unlisted.txt", "/unlisted%2etxt", "/%75nlisted.txt",
     "/missing.txt", "/admin/secret.txt", "/admin/", "/open/../unlisted.txt"],
)
async def test_a_path_no_rule_covers_is_denied(server, target):
    r = await get(server, target)
    # 401 (denied), or the 400/404 a refused path gets before any access check
    assert r.status in (400, 401, 404), (target, r.raw[:300])
    assert b"UNLISTED-CONTENT" not in r.raw and b"ADMIN-SECRET" not in r.raw
    r.assert_clean()


async def test_default_deny_for_users_public_paths_for_everyone(server):
    ann = await login_cookie(server, "ann")
    admin = await login_cookie(server, "admin")
    r = await get(server, "/unlisted.txt", ann)
    assert r.status == 403 and b"UNLISTED-CONTENT" not in r.raw
    r = await get(server, "/unlisted.txt", admin)
    assert r.status == 403  # no rule grants it, to anyone
    r = await get(server, "/admin/secret.txt", admin)
    assert r.status == 200 and r.body == b"ADMIN-SECRET"
    r = await get(server, "/admin/secret.txt", ann)
    assert r.status == 403
    for target in ("/", "/index.html", "/open/page.txt"):
        for headers in (None, ann):
            r = await get(server, target, headers)
            assert r.status == 200, (target, r.raw[:200])


async def test_default_allow_is_the_migration_switch_and_warns(make_site, serve, caplog):
    running = await serve(make_site(config=rbac_config({"default": "allow"}), files=FILES))
    await seed(running.app)
    assert 'plugins.rbac.default is "allow"' in caplog.text
    r = await get(running, "/unlisted.txt")
    assert r.status == 200 and r.body == b"UNLISTED-CONTENT"
    r = await get(running, "/admin/secret.txt")  # a covered path is still governed by its rule
    assert r.status == 401


@pytest.mark.parametrize(
    "settings, message",
    [({"default": "open"}, "default"), ({"public": "/"}, "public"), ({"public": ["static/**"]}, "public")],
)
async def test_bad_default_or_public_settings_stop_start_up(make_site, serve, settings, message):
    with pytest.raises(PluginError, match=f"plugins.rbac.{message}"):
        await serve(make_site(config=rbac_config(settings), files=FILES))


async def test_the_starter_site_under_default_deny_needs_only_its_public_page(tmp_path, serve):
    """`ahcore init`'s site with ahcore-rbac added: closed by default, open with one rule."""
    import shutil

    import ahcore

    starter = Path(ahcore.__file__).parent / "starter"
    for public, expected in (([], 401), (["/index.html"], 200)):
        site = tmp_path / f"starter-{expected}"
        shutil.copytree(starter, site)
        config = json.loads((site / "conf" / "config.json").read_text())
        config["plugins"] = {"sqlite": True, "rbac": {"argon2": FAST_KDF, "public": public}}
        (site / "conf" / "config.json").write_text(json.dumps(config))
        running = await serve(site)
        r = await get(running, "/")
        assert r.status == expected, (public, r.raw[:200])
