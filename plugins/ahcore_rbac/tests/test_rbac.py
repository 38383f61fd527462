"""ahcore-rbac end to end: login, path rules, roles, lock-out, header auth, caches, CLI."""

from __future__ import annotations

import asyncio
import base64
import sys
import time

import pytest
from ahcore_rbac import get_rbac, store
from ahcore_rbac.passwords import api_key_hash
from ahcore_rbac.rules import PermissionTable, user_roles
from ahcore_rbac.settings import RbacSettings

from ahcore.api import get_site

FAST_KDF = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}

FILES = {
    "wwwroot/admin/x": "admin x",
    "wwwroot/admin/index.html": "admin area",
    "wwwroot/admin/open.txt": "open corner",
    "wwwroot/administration.txt": "administration",
    "wwwroot/public.txt": "public",
    "wwwroot/shop/a.txt": "shop",
    "wwwroot/shopping.txt": "shopping",
    "wwwroot/clerks/a.txt": "clerks",
    "wwwroot/members.txt": "members",
    "wwwroot/closed.txt": "closed",
}


def config(**rbac):
    return {
        "databases": {"rbac": {"driver": "sqlite", "kwargs": {"dbname": "$[workdir]$/rbac.db"}}},
        "plugins": {
            "rbac": {"db": "rbac", "max_failures": 3, "lockout_seconds": 60, "argon2": FAST_KDF, **rbac},
            "sqlite": True,
        },
        "website": {"cookie_secret": "t" * 32, "paths": [["$[workdir]$/wwwroot", ""]]},
    }


async def seed(app):
    """admin (sys.admin), bob (org type shop, no grants), carol (other org type, shop.clerk)."""
    state = get_rbac(app)
    async with state.sor() as sor:
        for name, orgtype in (("admin", "sys"), ("bob", "shop"), ("carol", "other")):
            await store.add_user(sor, name, await state.passwords.hash(f"{name}-pw"), "org1", orgtype)
        admin = await store.user_by_name(sor, "admin")
        carol = await store.user_by_name(sor, "carol")
        await store.grant_role(sor, admin["id"], "sys.admin")
        await store.grant_role(sor, carol["id"], "shop.clerk")
        await store.grant_permission(sor, "sys.admin", "/admin/**")
        await store.grant_permission(sor, "any", "/admin/open.txt")
        await store.grant_permission(sor, "shop.*", "/shop/%")
        await store.grant_permission(sor, "*.clerk", "/clerks/**")
        await store.grant_permission(sor, "logined", "/members.txt")
        await store.ensure_permission(sor, "/closed.txt")


@pytest.fixture
def site(make_site):
    return make_site(config=config(), files=FILES)


@pytest.fixture
async def client(site, ahcore_client):
    client = await ahcore_client(site)
    await seed(client.app)
    return client


async def login(client, username, password=None, **kw):
    return await client.post(
        "/rbac/login", data={"username": username, "password": password or f"{username}-pw"}, **kw
    )


async def whoami(client, **kw):
    return await (await client.get("/rbac/whoami", **kw)).json()


async def raw_status(client, target: str) -> int:
    """Send ``target`` byte for byte (no client-side URL normalisation)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


# ------------------------------------------------------------------ pure rules


def test_permission_table_rules():
    table = PermissionTable.build(
        [("/admin/**", "sys.admin"), ("/admin/open", "any"), ("/a%", "x"), ("/closed", None)]
    )
    assert table.required("/admin/deep/x") == {"sys.admin"}
    assert table.required("/admin") == {"sys.admin"}
    assert table.required("/admin/open/") == {"any"}  # exact beats prefix; slash ignored
    assert table.required("/abc") == {"x"}
    assert table.required("/closed") == set()
    assert table.required("/zzz") is None
    assert table.allows("/zzz", frozenset()) is None


def test_user_roles_derivations():
    roles = user_roles([("shop", "clerk")], "other")
    assert roles == {"any", "logined", "shop.clerk", "shop.*", "*.clerk", "other.*"}


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_failures"):
        RbacSettings.from_mapping({"max_failures": 0})
    with pytest.raises(ValueError, match="unknown"):
        RbacSettings.from_mapping({"dbb": "x"})


# ------------------------------------------------------------------ endpoints


async def test_login_whoami_logout(client):
    assert (await whoami(client))["user"] is None
    assert (await whoami(client))["roles"] == ["anonymous", "any"]
    r = await login(client, "admin")
    body = await r.json()
    assert r.status == 200 and body["ok"] and body["user"]["username"] == "admin"
    me = await whoami(client)
    assert me["user"]["username"] == "admin" and me["via"] == "session"
    assert {"sys.admin", "sys.*", "*.admin", "logined", "any"} <= set(me["roles"])
    assert (await client.post("/rbac/logout")).status == 200
    assert (await whoami(client))["user"] is None


async def test_login_json_and_wrong_password(client):
    r = await client.post("/rbac/login", json={"username": "bob", "password": "bob-pw"})
    assert r.status == 200 and (await r.json())["user"]["username"] == "bob"
    r = await login(client, "bob", "nope")
    assert r.status == 401 and (await r.json())["error"] == "wrong username or password"
    r = await login(client, "nobody", "x")
    assert r.status == 401
    assert (await client.post("/rbac/login", data={"username": "bob"})).status == 400


async def test_admin_only_path(client):
    assert (await client.get("/admin/x")).status == 401
    await login(client, "bob")
    assert (await client.get("/admin/x")).status == 403
    await login(client, "admin")
    r = await client.get("/admin/x")
    assert r.status == 200 and await r.text() == "admin x"


async def test_bypass_attempts_are_refused(client):
    for target in ("/admin/x", "//admin/x", "/./admin/x", "/admin/%78", "/admin/x/", "/admin",
                   "/admin/", "/admin//x", "/admin/nothing"):
        assert await raw_status(client, target) == 401, target
        if not target.startswith("//"):  # the test client refuses '//…' (scheme-relative)
            assert (await client.get(target)).status == 401, target


async def test_prefix_and_exact_rules(client):
    # an exact rule opens one corner of a protected tree
    assert (await client.get("/admin/open.txt")).status == 200
    # "/admin/**" covers /admin/ only, not /administration.txt (which no rule
    # covers: denied by default, as /public.txt)
    assert (await client.get("/administration.txt")).status == 401
    # "%" is a plain prefix: /shop/% covers /shop/…, not /shopping.txt
    assert (await client.get("/shop/a.txt")).status == 401
    assert (await client.get("/shopping.txt")).status == 401
    # exact rule for logged-in users; a rule granted to nobody denies everyone
    assert (await client.get("/members.txt")).status == 401
    assert (await client.get("/closed.txt")).status == 401
    # paths no rule covers: denied (401 anonymous, 403 logged in)
    assert (await client.get("/public.txt")).status == 401
    await login(client, "admin")
    assert (await client.get("/members.txt")).status == 200
    assert (await client.get("/closed.txt")).status == 403
    assert (await client.get("/public.txt")).status == 403


async def test_paths_no_rule_covers_with_default_allow_and_public(make_site, ahcore_client):
    # default "allow": the plugin abstains where no rule covers, as before
    client = await ahcore_client(make_site(config=config(default="allow"), files=FILES))
    await seed(client.app)
    assert (await client.get("/administration.txt")).status == 200
    assert (await client.get("/shopping.txt")).status == 200
    assert (await client.get("/public.txt")).status == 200
    assert (await client.get("/shop/a.txt")).status == 401
    # public rules open paths under default deny; a longer database rule still governs
    client = await ahcore_client(
        make_site(config=config(public=["/public.txt", "/admin/**"]), files=FILES)
    )
    await seed(client.app)
    assert (await client.get("/public.txt")).status == 200
    assert (await client.get("/admin/x")).status == 200  # public /admin/** joins sys.admin's rule
    assert (await client.get("/administration.txt")).status == 401


async def test_derived_roles(client):
    await login(client, "bob")  # org type shop → shop.*
    assert (await client.get("/shop/a.txt")).status == 200
    assert (await client.get("/clerks/a.txt")).status == 403
    await login(client, "carol")  # granted shop.clerk → shop.* and *.clerk
    assert (await client.get("/shop/a.txt")).status == 200
    assert (await client.get("/clerks/a.txt")).status == 200
    await login(client, "admin")
    assert (await client.get("/shop/a.txt")).status == 403


async def test_lockout(client, monkeypatch):
    for _ in range(2):
        assert (await login(client, "bob", "wrong")).status == 401
    r = await login(client, "bob", "wrong")
    assert r.status == 429 and "locked" in (await r.json())["error"]
    r = await login(client, "bob")  # the right password is refused while locked
    assert r.status == 429 and int(r.headers["Retry-After"]) > 0
    assert (await whoami(client))["user"] is None
    basic = base64.b64encode(b"bob:bob-pw").decode()
    assert (await whoami(client, headers={"Authorization": f"Basic {basic}"}))["user"] is None
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)
    assert (await login(client, "bob")).status == 200
    # a success resets the count: two failures do not lock again
    for _ in range(2):
        assert (await login(client, "bob", "wrong")).status == 401
    assert (await login(client, "bob")).status == 200


async def test_lockout_does_not_tell_which_names_exist(client, monkeypatch):
    # bob has an account, nobody-here has none: the same attempts give the
    # same answers, so a guesser cannot learn from a 429 that a name exists.
    def answers(name):
        return [login(client, name, "wrong") for _ in range(4)]

    seen = {}
    for name in ("bob", "nobody-here"):
        statuses = []
        for attempt in answers(name):
            r = await attempt
            statuses.append((r.status, (await r.json())["error"], "Retry-After" in r.headers))
        seen[name] = statuses
    assert seen["bob"] == seen["nobody-here"]
    assert [s for s, _, _ in seen["bob"]] == [401, 401, 429, 429]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)  # both lock-outs end together
    assert (await login(client, "bob", "wrong")).status == 401
    assert (await login(client, "nobody-here", "wrong")).status == 401


def test_unknown_name_failures_are_bounded_and_counted_per_name(monkeypatch):
    from ahcore_rbac import state as rbac_state

    monkeypatch.setattr(rbac_state, "_UNKNOWN_NAMES_LIMIT", 3)
    failures = rbac_state._UnknownNameFailures()
    assert not failures.failed("a", 100, 2, 60)
    assert failures.failed("a", 100, 2, 60)  # the second failure locks "a" ...
    assert failures.locked_for("a", 130) == 30 and failures.locked_for("b", 130) == 0  # ... alone
    for name in ("b", "c", "d"):  # more names than the bound: the oldest, "a", goes
        failures.failed(name, 131, 2, 60)
    assert failures.locked_for("a", 131) == 0
    assert len(failures._names) == 3
    assert failures.failed("b", 200, 2, 60)  # b's second failure locks it
    assert failures.locked_for("b", 200) == 60
    huge = "x" * 1_000_000  # kept as a digest, not as the megabyte
    failures.failed(huge, 200, 2, 60)
    assert all(len(key) == 32 for key in failures._names)


async def test_lockout_holds_against_guesses_sent_in_parallel(client, monkeypatch):
    # Each attempt is counted before its (slow) password check: of many guesses
    # sent at once, at most max_failures (3 here) are checked, and the right
    # password among the later ones is refused like the rest.
    passwords = get_rbac(client.server.app).passwords
    checked = []
    real_verify = passwords.verify

    async def slow_verify(stored, password):
        checked.append(password)
        await asyncio.sleep(0.05)  # all attempts are in flight together
        return await real_verify(stored, password)

    monkeypatch.setattr(passwords, "verify", slow_verify)
    guesses = [f"wrong-{i}" for i in range(12)] + ["bob-pw"]
    answers = await asyncio.gather(*(login(client, "bob", guess) for guess in guesses))
    statuses = [r.status for r in answers]
    assert len(checked) <= 3 and "bob-pw" not in checked
    assert statuses[-1] == 429 and 200 not in statuses
    assert statuses.count(429) >= len(guesses) - 3
    assert (await login(client, "bob")).status == 429  # and it stays locked


async def test_basic_auth(client):
    good = base64.b64encode(b"admin:admin-pw").decode()
    r = await client.get("/admin/x", headers={"Authorization": f"Basic {good}"})
    assert r.status == 200
    me = await whoami(client, headers={"Authorization": f"Basic {good}"})
    assert me["user"]["username"] == "admin" and me["via"] == "header"
    bad = base64.b64encode(b"admin:nope").decode()
    assert (await client.get("/admin/x", headers={"Authorization": f"Basic {bad}"})).status == 401
    assert (await client.get("/admin/x", headers={"Authorization": "Basic !!!"})).status == 401
    bob = base64.b64encode(b"bob:bob-pw").decode()
    # identified (through the identify_user hook) but not allowed: 403, not 401
    assert (await client.get("/admin/x", headers={"Authorization": f"Basic {bob}"})).status == 403
    assert (await client.get("/shop/a.txt", headers={"Authorization": f"Basic {bob}"})).status == 200


async def test_bearer_api_key(client):
    state = get_rbac(client.app)
    async with state.sor() as sor:
        admin = await store.user_by_name(sor, "admin")
        await store.set_api_key_hash(sor, admin["id"], api_key_hash("secret-key"))
    r = await client.get("/admin/x", headers={"Authorization": "Bearer secret-key"})
    assert r.status == 200
    me = await whoami(client, headers={"Authorization": "Bearer secret-key"})
    assert me["user"]["username"] == "admin"
    assert (await client.get("/admin/x", headers={"Authorization": "Bearer other"})).status == 401


async def test_extra_authenticator(client):
    state = get_rbac(client.app)
    async with state.sor() as sor:
        admin = await store.user_by_name(sor, "admin")

    async def by_header(request):
        return admin["id"] if request.headers.get("X-Test-User") == "admin" else None

    state.authenticators.append(by_header)
    assert (await client.get("/admin/x", headers={"X-Test-User": "admin"})).status == 200
    assert (await client.get("/admin/x", headers={"X-Test-User": "bob"})).status == 401


async def test_hot_reload_clears_the_caches(client):
    await login(client, "bob")
    assert (await client.get("/admin/x")).status == 403
    state = get_rbac(client.app)
    async with state.sor() as sor:
        bob = await store.user_by_name(sor, "bob")
        await store.grant_role(sor, bob["id"], "sys.admin")
        await store.grant_permission(sor, "sys.admin", "/public.txt")
    assert (await client.get("/admin/x")).status == 403  # still cached
    await get_site(client.app).hot_reload({"source": "test"})
    assert (await client.get("/admin/x")).status == 200
    await client.post("/rbac/logout")
    assert (await client.get("/public.txt")).status == 401  # new rule seen too


async def test_cache_ttl_zero_sees_changes_at_once(make_site, ahcore_client):
    client = await ahcore_client(make_site(config=config(cache_ttl=0), files=FILES))
    await seed(client.app)
    await login(client, "bob")
    async with get_rbac(client.app).sor() as sor:
        bob = await store.user_by_name(sor, "bob")
        await store.grant_role(sor, bob["id"], "sys.admin")
    assert (await client.get("/admin/x")).status == 200


async def test_routes_can_be_switched_off(make_site, ahcore_client):
    files = dict(FILES, **{"wwwroot/rbac/whoami": "site page"})
    client = await ahcore_client(
        make_site(config=config(routes=False, public=["/rbac/**"]), files=files)
    )
    assert await (await client.get("/rbac/whoami")).text() == "site page"


async def test_fallback_sqlite_database(make_site, ahcore_client):
    cfg = config()
    del cfg["databases"]
    site = make_site(config=cfg, files=FILES)
    client = await ahcore_client(site)
    await seed(client.app)
    assert (site / "data" / "rbac.db").exists()
    assert (await login(client, "admin")).status == 200


async def test_cli_adds_a_user_that_can_log_in(site, ahcore_client):
    async def cli(*args):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ahcore", "rbac", "-w", str(site), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return out.decode().strip()

    assert "added" in await cli("adduser", "dave", "--password", "pw1", "--org", "o", "--orgtype", "ops")
    await cli("addrole", "ops", "boss")
    await cli("grant-role", "dave", "ops.boss")
    await cli("addperm", "/admin/**")
    await cli("grant-perm", "ops.boss", "/admin/**")
    key = await cli("apikey", "dave")
    client = await ahcore_client(site)
    r = await login(client, "dave", "pw1")
    assert r.status == 200 and (await r.json())["user"]["orgid"] == "o"
    assert (await client.get("/admin/x")).status == 200
    await client.post("/rbac/logout")
    assert (await client.get("/admin/x", headers={"Authorization": f"Bearer {key}"})).status == 200
