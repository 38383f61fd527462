"""A 401 on a browser's navigation goes to ``website.login_page`` with a safe ``next``.

The denial comes from a third-party auth plugin written here (only
``auth_check``): the redirect is the kernel's, whoever said no. API clients
keep the JSON 401 of SPEC §16.
"""

from __future__ import annotations

import pytest
from yarl import URL

from ahcore import hookimpl
from ahcore.api import is_safe_next, safe_next
from ahcore.config import ConfigError, validate

NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "text/html,*/*;q=0.8"}
OLD_BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


class Gate:
    """A third party's auth plugin: everything under /private/ needs a user."""

    @hookimpl
    def auth_check(self, request, user, path):
        if path.startswith("/private") or path == "/login.html":
            return user is not None if path.startswith("/private") else False
        return None


@pytest.fixture
async def client(make_site, ahcore_client):
    site = make_site(
        {"website": {"login_page": "/login.html"}, "plugins": {"gate": True}},
        {
            "wwwroot/login.html": "<form>log in</form>",
            "wwwroot/private/report.txt": "secret",
            "wwwroot/public.txt": "hello",
        },
    )
    return await ahcore_client(site, extra_plugins={"gate": Gate()})


async def test_a_navigation_is_sent_to_the_login_page_with_next(client):
    r = await client.get("/private/report.txt?year=2026&q=a%20b", headers=NAVIGATE, allow_redirects=False)
    assert r.status == 303
    location = URL(r.headers["Location"])
    assert location.path == "/login.html"
    assert location.query["next"] == "/private/report.txt?year=2026&q=a%20b"
    assert r.headers["Cache-Control"] == "no-store"
    # Browsers without fetch metadata: Accept naming HTML first.
    r = await client.get("/private/report.txt", headers=OLD_BROWSER, allow_redirects=False)
    assert r.status == 303 and URL(r.headers["Location"]).query["next"] == "/private/report.txt"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # a script or curl: Accept */*
        {"Accept": "application/json"},
        {"Accept": "application/json, text/html"},
        {"Sec-Fetch-Mode": "cors", "Accept": "text/html"},  # fetch() asking for HTML is still fetch()
        {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"},
    ],
)
async def test_api_clients_keep_the_401(client, headers):
    r = await client.get("/private/report.txt", headers=headers, allow_redirects=False)
    assert r.status == 401
    if "json" in headers.get("Accept", ""):
        assert await r.json() == {"error": {"status": 401, "message": "Unauthorized: please log in"}}


async def test_only_get_and_head_navigations_are_redirected(client):
    r = await client.post("/private/report.txt", headers={**NAVIGATE, "Origin": str(client.make_url(""))[:-1]},
                          allow_redirects=False)
    assert r.status in (401, 405)
    r = await client.head("/private/report.txt", headers=NAVIGATE, allow_redirects=False)
    assert r.status == 303


async def test_the_login_page_itself_is_never_redirected_to_itself(client):
    r = await client.get("/login.html", headers=NAVIGATE, allow_redirects=False)
    assert r.status == 401 and "text/html" in r.headers["Content-Type"]
    assert "Location" not in r.headers


async def test_without_a_login_page_a_browser_gets_the_401_page(make_site, ahcore_client):
    site = make_site({"plugins": {"gate": True}}, {"wwwroot/private/a.txt": "x"})
    client = await ahcore_client(site, extra_plugins={"gate": Gate()})
    r = await client.get("/private/a.txt", headers=NAVIGATE, allow_redirects=False)
    assert r.status == 401 and "<h1>401 Unauthorized</h1>" in await r.text()


async def test_a_path_that_is_not_a_safe_next_is_left_out(client):
    # Too long to be a next= (a URL no page links to): the login page without it.
    r = await client.get("/private/report.txt?x=" + "a" * 3000, headers=NAVIGATE, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/login.html"


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example/",
        "///evil.example/",
        "https://evil.example/",
        "http:/evil.example",
        "javascript:alert(1)",
        "/\\evil.example",
        "\\\\evil.example",
        "/a\\b",
        "/\t/evil.example",
        "/\n/evil.example",
        " /admin/",
        "/ad min/",
        "/\x00x",
        "/\x7f",
        "/caf\u00e9",
        "/\uff0f\uff0fevil.example",
        "admin/",
        "",
        None,
        ["/admin/"],
        "/" + "a" * 3000,
    ],
)
def test_unsafe_next_values_are_refused(value):
    assert not is_safe_next(value)
    assert safe_next(value, "/home") == "/home"


@pytest.mark.parametrize("value", ["/", "/admin/", "/admin/?tab=2&x=%2F%2Fevil", "/a/b.dspy#top", "/%5Cx"])
def test_same_site_paths_are_accepted(value):
    assert is_safe_next(value) and safe_next(value) == value


@pytest.mark.parametrize("value", ["https://login.example/", "login.html", "//x", "/a b"])
def test_a_login_page_that_is_not_a_site_path_is_a_config_error(value):
    with pytest.raises(ConfigError) as info:
        validate({"website": {"paths": [["/tmp", ""]], "login_page": value}})
    assert "website.login_page" in str(info.value)


async def test_behind_a_proxy_mount_prefix_the_login_page_keeps_it(make_site, ahcore_client):
    site = make_site(
        {"website": {"login_page": "/login.html", "trusted_proxies": ["127.0.0.1"]}, "plugins": {"gate": True}},
        {"wwwroot/private/report.txt": "secret"},
    )
    client = await ahcore_client(site, extra_plugins={"gate": Gate()})
    r = await client.get("/private/report.txt", headers={**NAVIGATE, "X-Forwarded-Prepath": "/shop"},
                         allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == "/shop/login.html?next=%2Fprivate%2Freport.txt"
