"""``/__hot_reload__`` under attack (SPEC §10): method, origin, credentials, rate limit.

Every refused request must leave the site as it was: no ``hot_reload`` event,
no signal file for the other workers, and the rate limit not spent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from advkit import (
    GUARD_FILES,
    GuardPlugin,
    guard_config,
    raw_exchange,
    request_bytes,
    set_cookie_value,
)

from ahcore import hookimpl
from ahcore.session import COOKIE_NAME

TOKEN = "adversarial-hot-reload-token-32-bytes!"
ENDPOINT = "/__hot_reload__"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @hookimpl
    def on_hot_reload(self, app: Any, data: Any) -> None:
        self.calls.append(dict(data))


class AdminGuard(GuardPlugin):
    """GuardPlugin, and ``/__hot_reload__`` explicitly allowed to the user ``boss``."""

    @hookimpl
    async def auth_check(self, request: Any, user: Any, path: str) -> bool:
        if path == ENDPOINT:
            return user == "boss"
        return await super().auth_check(request, user, path)


def hot_config(**hot: Any) -> dict[str, Any]:
    config = guard_config(trusted_proxies=["127.0.0.1"])
    config["hot_reload"] = {"enabled": True, "interval": 60, "rate_limit": 3600, "token": TOKEN} | hot
    config["plugins"]["rec"] = True
    return config


@pytest.fixture
def site(make_site):
    return make_site(config=hot_config(), files=GUARD_FILES)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def server(site, serve, recorder):
    """A site with an auth plugin: the endpoint is for ``boss`` or the token holder."""
    return await serve(site, extra_plugins={"guard": AdminGuard(), "rec": recorder})


def signal_file(site) -> Any:
    return site / "conf" / ".hot_reload_signal"


def post(headers: dict[str, str] | None = None, target: str = ENDPOINT) -> bytes:
    return request_bytes("POST", target, b"", headers or {})


def token(value: str = TOKEN) -> dict[str, str]:
    return {"X-Hot-Reload-Token": value}


async def assert_untouched(server, site, recorder) -> None:
    assert recorder.calls == []
    assert not signal_file(site).exists()


# ------------------------------------------------------------------ method


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"])
async def test_anything_but_post_is_405_with_allow_even_with_the_token(server, site, recorder, method):
    r = await raw_exchange(server, request_bytes(method, ENDPOINT, headers=token()))
    assert r.status == 405, r.raw[:300]
    assert r.headers.get("allow") == "POST"
    r.assert_clean()
    await assert_untouched(server, site, recorder)


async def test_a_get_through_an_image_tag_cannot_trigger_it(server, site, recorder):
    r = await raw_exchange(
        server,
        request_bytes(
            "GET",
            ENDPOINT,
            headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image", "Sec-Fetch-Mode": "no-cors"},
        ),
    )
    assert r.status == 405
    await assert_untouched(server, site, recorder)


# ------------------------------------------------------------------ who may


async def test_no_credentials_from_loopback_is_401(server, site, recorder):
    """The test client is on 127.0.0.1: loopback is no credential (a proxy is loopback too)."""
    r = await raw_exchange(server, post())
    assert r.status == 401, r.raw[:300]
    assert "X-Hot-Reload-Token" in r.text
    await assert_untouched(server, site, recorder)


async def test_no_credentials_without_an_auth_plugin_is_401_too(make_site, serve):
    recorder = Recorder()
    config = hot_config()
    del config["plugins"]["guard"]
    config["website"]["processors"] = [[".dspy", "dspy"]]
    site = make_site(config=config, files={"wwwroot/x.txt": "x"})
    running = await serve(site, extra_plugins={"rec": recorder})
    r = await raw_exchange(running, post())
    assert r.status == 401
    r = await raw_exchange(running, post(token()))
    assert r.status == 200
    assert recorder.calls == [{"source": "http_endpoint"}]


@pytest.mark.parametrize(
    "offered", ["wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "", TOKEN + " " + TOKEN]
)
async def test_a_wrong_token_is_403(server, site, recorder, offered):
    r = await raw_exchange(server, post(token(offered)))
    assert r.status == 403, (offered, r.raw[:300])
    assert "wrong hot-reload token" in r.text
    await assert_untouched(server, site, recorder)


async def test_a_token_is_no_use_when_none_is_configured(make_site, serve):
    recorder = Recorder()
    config = hot_config()
    del config["hot_reload"]["token"]
    running = await serve(
        make_site(config=config, files=GUARD_FILES),
        extra_plugins={"guard": AdminGuard(), "rec": recorder},
    )
    for offered in ("", "None", "null", TOKEN):
        r = await raw_exchange(running, post(token(offered)))
        assert r.status == 403, offered
    assert recorder.calls == []


async def test_the_bearer_header_is_not_the_token(server, site, recorder):
    r = await raw_exchange(server, post({"Authorization": f"Bearer {TOKEN}"}))
    assert r.status in (401, 403)
    await assert_untouched(server, site, recorder)


async def login(server, user: str) -> str:
    r = await raw_exchange(
        server,
        request_bytes(
            "POST", "/login.call", f"user={user}".encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
    )
    cookie = set_cookie_value(r, COOKIE_NAME)
    assert r.status == 200 and cookie
    return cookie


async def test_an_administrator_by_auth_check_may_and_other_users_may_not(server, site, recorder):
    ann = await login(server, "ann")
    r = await raw_exchange(server, post({"Cookie": f"{COOKIE_NAME}={ann}"}))
    assert r.status == 403 and "for administrators" in r.text
    await assert_untouched(server, site, recorder)
    boss = await login(server, "boss")
    r = await raw_exchange(
        server, post({"Cookie": f"{COOKIE_NAME}={boss}", "Origin": "http://127.0.0.1"})
    )
    assert r.status == 200, r.raw[:300]
    assert json.loads(r.body)["ok"] is True
    assert recorder.calls == [{"source": "http_endpoint"}]
    assert signal_file(site).exists()


# ------------------------------------------------------------------ cross-site


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": "https://127.0.0.1"},
    ],
)
async def test_a_cross_site_request_is_403_even_with_the_token(server, site, recorder, headers):
    r = await raw_exchange(server, post(token() | headers))
    assert r.status == 403, (headers, r.raw[:300])
    r.assert_clean()
    await assert_untouched(server, site, recorder)


async def test_a_cross_site_administrator_is_403(server, site, recorder):
    boss = await login(server, "boss")
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}):
        r = await raw_exchange(server, post({"Cookie": f"{COOKIE_NAME}={boss}"} | headers))
        assert r.status == 403
    await assert_untouched(server, site, recorder)


async def test_same_origin_behind_a_trusted_tls_proxy_is_allowed(server, recorder):
    proxied = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "shop.example",
        "Origin": "https://shop.example",
        "Sec-Fetch-Site": "same-origin",
    }
    r = await raw_exchange(server, post(token() | proxied))
    assert r.status == 200, r.raw[:300]
    assert recorder.calls == [{"source": "http_endpoint"}]


# ------------------------------------------------------------------ rate limit


async def test_the_rate_limit_counts_only_authorised_callers(server, site, recorder):
    # A stranger hammering the endpoint never gets 429, and spends nothing ...
    for headers in ({}, token("wrong"), token() | {"Origin": "http://evil.example"}):
        for _ in range(5):
            r = await raw_exchange(server, post(headers))
            assert r.status in (401, 403), r.raw[:200]
    await assert_untouched(server, site, recorder)
    # ... so the token holder still gets through, once per rate_limit,
    r = await raw_exchange(server, post(token()))
    assert r.status == 200
    r = await raw_exchange(server, post(token()))
    assert r.status == 429
    # and strangers still get 401/403 afterwards, not 429.
    r = await raw_exchange(server, post())
    assert r.status == 401
    r = await raw_exchange(server, post(token("wrong")))
    assert r.status == 403
    assert recorder.calls == [{"source": "http_endpoint"}]
