"""ahcore.cookies: one place decides every cookie's attributes (SPEC §8)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

import pytest
from aiohttp import hdrs, web

from ahcore.cookies import delete_cookie, set_cookie


def sent(response: web.StreamResponse) -> list[str]:
    """The Set-Cookie lines as they go out (before or after prepare)."""
    if not response.prepared:
        return [m.OutputString() for m in response.cookies.values()]
    return response.headers.getall(hdrs.SET_COOKIE, [])


def attributes(line: str) -> dict[str, str]:
    out = {}
    for i, part in enumerate(p.strip() for p in line.split(";")):
        name, _, value = part.partition("=")
        out["_name" if i == 0 else name.lower()] = name if i == 0 else value
        if i == 0:
            out["_value"] = value
    return out


def test_defaults_httponly_lax_path_and_no_secure_over_http(make_request) -> None:
    response = web.Response()
    set_cookie(make_request(), response, "pref", "dark")
    [line] = sent(response)
    attrs = attributes(line)
    assert attrs["_name"] == "pref" and attrs["_value"] == "dark"
    assert "httponly" in attrs
    assert attrs["samesite"] == "Lax"
    assert attrs["path"] == "/"
    assert "secure" not in attrs
    assert "max-age" not in attrs and "expires" not in attrs  # a browser-session cookie


def test_secure_exactly_when_the_client_used_https(make_request) -> None:
    response = web.Response()
    set_cookie(make_request(scheme="https"), response, "pref", "dark")
    assert "secure" in attributes(sent(response)[0])


def test_secure_behind_a_trusted_tls_proxy(make_app, make_request) -> None:
    app = make_app({"website": {"trusted_proxies": ["127.0.0.1"]}})
    request = make_request(headers={"X-Forwarded-Proto": "https"}, app=app, remote="127.0.0.1")
    response = web.Response()
    set_cookie(request, response, "pref", "dark")
    assert "secure" in attributes(sent(response)[0])
    # The same header from anyone else is ignored.
    request = make_request(headers={"X-Forwarded-Proto": "https"}, app=app, remote="192.0.2.1")
    response = web.Response()
    set_cookie(request, response, "pref", "dark")
    assert "secure" not in attributes(sent(response)[0])


def test_max_age_sets_expires_too(make_request) -> None:
    response = web.Response()
    before = time.time()
    set_cookie(make_request(), response, "t", "1", max_age=3600)
    attrs = attributes(sent(response)[0])
    assert attrs["max-age"] == "3600"
    expires = parsedate_to_datetime(attrs["expires"].replace("-", " ")).timestamp()
    assert before + 3600 - 5 <= expires <= before + 3600 + 5


def test_scripts_cookie_strict_domain_and_path(make_request) -> None:
    response = web.Response()
    set_cookie(
        make_request(), response, "ui", "1", httponly=False, samesite="Strict",
        domain="example.org", path="/app",
    )
    attrs = attributes(sent(response)[0])
    assert "httponly" not in attrs
    assert attrs["samesite"] == "Strict"
    assert attrs["domain"] == "example.org"
    assert attrs["path"] == "/app"


@pytest.mark.parametrize("samesite", ["None", "lax", "", "Lax; Secure"])
def test_other_samesite_values_are_refused(make_request, samesite) -> None:
    with pytest.raises(ValueError, match="samesite must be 'Lax' or 'Strict'"):
        set_cookie(make_request(), web.Response(), "c", "v", samesite=samesite)  # type: ignore[arg-type]


def test_a_value_with_separators_is_quoted_not_split(make_request) -> None:
    response = web.Response()
    set_cookie(make_request(), response, "c", "a; Domain=evil.example")
    [line] = sent(response)
    jar: SimpleCookie = SimpleCookie()
    jar.load(line)
    assert jar["c"].value == "a; Domain=evil.example"
    assert jar["c"]["domain"] == ""  # no attribute was smuggled in


def test_delete_cookie_expires_it_now(make_request) -> None:
    response = web.Response()
    delete_cookie(make_request(scheme="https"), response, "sess", path="/")
    attrs = attributes(sent(response)[0])
    assert attrs["_value"] in ("", '""')
    assert attrs["max-age"] == "0"
    assert "1970" in attrs["expires"]
    assert "secure" in attrs and "httponly" in attrs


async def test_while_preparing_the_cookie_replaces_its_own_header_line(aiohttp_client) -> None:
    """In ``on_response_prepare`` (where the session is saved) cookies are headers already."""

    async def handler(request: web.Request) -> web.Response:
        response = web.Response(text="ok")
        response.set_cookie("other", "1")
        response.set_cookie("sess", "old")
        return response

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        assert response.prepared or hdrs.SET_COOKIE in response.headers
        set_cookie(request, response, "sess", "new")
        delete_cookie(request, response, "gone")

    app = web.Application()
    app.router.add_get("/", handler)
    app.on_response_prepare.append(on_prepare)
    client = await aiohttp_client(app)
    response = await client.get("/")
    lines = response.headers.getall(hdrs.SET_COOKIE)
    by_name = {line.split("=", 1)[0]: line for line in lines}
    assert len(lines) == len(by_name) == 3, lines  # sess once: replaced, not added
    assert by_name["sess"].startswith("sess=new") and "HttpOnly" in by_name["sess"]
    assert by_name["other"].startswith("other=1")
    assert "Max-Age=0" in by_name["gone"]
