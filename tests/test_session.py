"""Sessions and login tickets: whoami flow, tampering, expiry, fixation, reissue, CSRF, auth_check."""

from __future__ import annotations

import time

import pytest
from aiohttp import web

from ahcore import Processor, ProcessorSpec, hookimpl
from ahcore.session import COOKIE_NAME


class CallProcessor(Processor):
    """`.call` files name one namespace function to call: login, whoami, logout, stream."""

    async def load(self) -> None:
        self.action = self.path.read_text().strip()

    async def respond(self, context):
        ns = await context.namespace()
        if self.action == "login":
            await ns["remember_user"](ns["params_kw"].get("user", "ann"), "Ann", "org1")
            return web.json_response({"ok": True})
        if self.action == "logout":
            await ns["forget_user"]()
            return web.json_response({"ok": True})
        if self.action == "stream":
            return await ns["stream_response"](context.request, ["a", "b"])
        return web.json_response({"user": await ns["get_user"]()})


class SessionPlugin:
    @hookimpl
    def register_processor(self):
        return ProcessorSpec("call", (".call",), CallProcessor)

    @hookimpl
    def register_routes(self, app):
        async def health(request):
            return web.Response(text="healthy")

        app.router.add_get("/_health", health)

    @hookimpl
    async def auth_check(self, request, user, path):
        if path.startswith("/admin/"):
            return user == "root"
        if path.startswith("/members/"):
            return user is not None
        return None


class HeaderLogin:
    """A login method that does not use the session (like Basic or bearer keys)."""

    @hookimpl
    async def identify_user(self, request):
        return request.headers.get("X-Test-User")


class AbstainingPlugin:
    @hookimpl
    def auth_check(self, request, user, path):
        return True if path == "/admin/open.txt" else None


FILES = {
    "wwwroot/login.call": "login",
    "wwwroot/logout.call": "logout",
    "wwwroot/whoami.call": "whoami",
    "wwwroot/stream.call": "stream",
    "wwwroot/admin/index.html": "admin area",
    "wwwroot/admin/open.txt": "open?",
    "wwwroot/members/file.txt": "members only",
    "wwwroot/public.txt": "public",
}


@pytest.fixture
def site(make_site):
    return make_site(
        config={
            "website": {"cookie_secret": "test-secret-of-at-least-32-bytes", "session_max_time": 100, "session_reissue_time": 10},
            "plugins": {"sess": True, "other": True, "hdr": True},
        },
        files=FILES,
    )


@pytest.fixture
async def client(site, ahcore_client):
    return await ahcore_client(
        site, extra_plugins={"sess": SessionPlugin(), "other": AbstainingPlugin(), "hdr": HeaderLogin()}
    )


async def whoami(client):
    return (await (await client.get("/whoami.call")).json())["user"]


async def test_login_whoami_logout(client):
    assert await whoami(client) is None
    r = await client.post("/login.call", data={"user": "ann"})
    cookie = r.cookies[COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert await whoami(client) == "ann"
    await client.post("/logout.call")
    assert await whoami(client) is None


async def test_tampered_and_forged_cookies_are_anonymous(client):
    await client.post("/login.call", data={"user": "ann"})
    value = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE_NAME].value
    for forged in (value[:-4] + "AAAA", "garbage", "", value[::-1]):
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({COOKIE_NAME: forged})
        r = await client.get("/whoami.call")
        assert r.status == 200 and (await r.json())["user"] is None


async def test_expired_ticket_is_anonymous(client, monkeypatch):
    await client.post("/login.call", data={"user": "ann"})
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 101)
    assert await whoami(client) is None


async def test_login_rotates_the_session(client):
    await client.get("/whoami.call")
    await client.post("/login.call", data={"user": "ann"})
    first = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE_NAME].value
    # An attacker plants their own (valid, anonymous-then-logged-in) cookie: logging in
    # again gives a different session, so the planted one never becomes the victim's.
    await client.post("/login.call", data={"user": "bob"})
    second = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE_NAME].value
    assert first != second
    assert await whoami(client) == "bob"


@pytest.mark.parametrize("url", ["/public.txt", "/stream.call", "/whoami.call"])
async def test_ticket_reissued_on_file_stream_and_plain_responses(client, monkeypatch, url):
    await client.post("/login.call", data={"user": "ann"})
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 50)  # past reissue (10), inside max (100)
    r = await client.get(url)
    assert r.status == 200
    assert COOKIE_NAME in r.cookies, "ticket was not reissued"
    monkeypatch.setattr(time, "time", lambda: real() + 120)  # 70 s after the reissue: still valid
    assert await whoami(client) == "ann"


async def test_cross_site_state_change_refused_same_site_allowed(client):
    await client.post("/login.call", data={"user": "ann"})
    r = await client.post("/logout.call", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 403 and "cross-site" in await r.text()
    r = await client.post("/logout.call", headers={"Origin": "http://evil.example"})
    assert r.status == 403
    r = await client.post("/logout.call", headers={"Referer": "http://evil.example/x"})
    assert r.status == 403
    assert await whoami(client) == "ann"  # nothing changed
    r = await client.post("/logout.call", headers={"Authorization": "Bearer k", "Origin": "http://evil.example"})
    assert r.status == 200  # header-authenticated requests are exempt
    await client.post("/login.call", data={"user": "ann"})
    origin = f"http://{client.host}:{client.port}"
    r = await client.post("/logout.call", headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert r.status == 200
    assert await whoami(client) is None


async def test_auth_check_combines_and_uses_the_canonical_path(client):
    # anonymous → 401, logged in without the right → 403, with it → 200
    for url in ("/admin/", "/admin//index.html", "/./admin/index.html", "/admin/%69ndex.html", "/admin/./"):
        assert (await client.get(url)).status == 401, url
    assert (await client.get("/admin")).status == 401  # not even a redirect leaks
    assert (await client.get("/admin/nonexistent")).status == 401
    await client.post("/login.call", data={"user": "ann"})
    assert (await client.get("/members/file.txt")).status == 200
    assert (await client.get("/admin/index.html")).status == 403
    # any False denies even when another plugin says True
    assert (await client.get("/admin/open.txt")).status == 403
    await client.post("/login.call", data={"user": "root"})
    r = await client.get("/admin/")
    assert r.status == 200 and await r.text() == "admin area"
    # routes from register_routes win over files
    assert await (await client.get("/_health")).text() == "healthy"


async def test_generated_secret_is_kept_in_the_site(make_site, ahcore_client, caplog):
    site = make_site(files={"wwwroot/a.txt": "a"})
    await ahcore_client(site)
    secret = site / "conf" / ".session_secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    first = secret.read_bytes()
    await ahcore_client(site)
    assert secret.read_bytes() == first
    assert "cookie_secret is not set" in caplog.text


async def test_identify_user_gives_header_logins_a_user(client):
    r = await client.get("/whoami.call", headers={"X-Test-User": "carol"})
    assert (await r.json())["user"] == "carol"
    # a header-identified user without the right gets 403, not 401
    assert (await client.get("/admin/", headers={"X-Test-User": "carol"})).status == 403
    assert (await client.get("/admin/", headers={"X-Test-User": "root"})).status == 200
    assert (await client.get("/admin/")).status == 401


async def test_login_behind_a_trusted_proxy_sets_a_secure_cookie(make_site, ahcore_client):
    site = make_site(
        config={
            "website": {"cookie_secret": "s" * 32, "trusted_proxies": ["127.0.0.1/32"]},
            "plugins": {"sess": True},
        },
        files=FILES,
    )
    client = await ahcore_client(site, extra_plugins={"sess": SessionPlugin()})
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example", "Origin": "https://shop.example"}
    r = await client.post("/login.call", data={"user": "ann"}, headers=proxied)
    assert r.status == 200
    cookie = r.cookies[COOKIE_NAME]
    assert cookie["secure"], "the visitor used https through the proxy"
    r = await client.post("/login.call", data={"user": "ann"})
    assert not r.cookies[COOKIE_NAME]["secure"]


async def test_redis_sessions_are_shared_by_two_servers_and_logout_deletes(make_site, ahcore_client):
    import socket

    from .conftest import require_services

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError as exc:
        if require_services():
            pytest.fail(f"Redis is required (AHCORE_REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"Redis not reachable on 127.0.0.1:6379: {exc}")
    config = {
        "website": {"session_redis": {"url": "redis://127.0.0.1:6379/0"}},
        "plugins": {"sess": True},
    }
    # two servers of one site, each with its own folder (as on two machines)
    one = await ahcore_client(make_site(config=config, files=FILES), extra_plugins={"sess": SessionPlugin()})
    two = await ahcore_client(make_site(config=config, files=FILES), extra_plugins={"sess": SessionPlugin()})
    r = await one.post("/login.call", data={"user": "shared-ann"})
    session_id = r.cookies[COOKIE_NAME].value
    assert len(session_id) >= 32  # an opaque id; the data stays in Redis
    two.session.cookie_jar.update_cookies({COOKIE_NAME: session_id})
    assert await whoami(two) == "shared-ann"
    # logout on one server deletes the session server-side: the old id is dead everywhere
    await one.post("/logout.call")
    assert await whoami(two) is None
    other = await ahcore_client(make_site(config=config, files=FILES), extra_plugins={"sess": SessionPlugin()})
    other.session.cookie_jar.update_cookies({COOKIE_NAME: session_id})
    assert await whoami(other) is None
