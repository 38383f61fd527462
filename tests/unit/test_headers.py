"""ahcore.headers: the headers every answer carries (SPEC §16)."""

from __future__ import annotations

import pytest
from aiohttp import web

from ahcore.appkeys import get_site
from ahcore.headers import DEFAULT_HEADERS, add_security_headers, content_disposition, header_set


def test_defaults_without_overrides() -> None:
    assert dict(header_set({})) == dict(DEFAULT_HEADERS)
    assert dict(DEFAULT_HEADERS)["X-Content-Type-Options"] == "nosniff"


def test_an_override_replaces_a_default_whatever_its_case() -> None:
    headers = dict(header_set({"x-frame-options": "DENY"}))
    assert headers["x-frame-options"] == "DENY"
    assert "X-Frame-Options" not in headers  # not sent twice under two spellings


def test_null_removes_a_default_and_new_headers_are_added() -> None:
    headers = dict(
        header_set({"Referrer-Policy": None, "Content-Security-Policy": "default-src 'self'"})
    )
    assert "Referrer-Policy" not in headers
    assert headers["Content-Security-Policy"] == "default-src 'self'"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_removing_a_header_that_is_not_a_default_is_harmless() -> None:
    assert dict(header_set({"X-Unknown": None})) == dict(DEFAULT_HEADERS)


async def test_prepare_sets_missing_headers_keeps_the_handlers_and_replaces_server(
    make_app, make_request
) -> None:
    app = make_app(
        {"website": {"security_headers": {"X-Frame-Options": "DENY"}, "server_header": "shop"}}
    )
    response = web.Response(headers={"Referrer-Policy": "no-referrer"})
    response.headers["Server"] = "Python/3 aiohttp/3"
    await add_security_headers(make_request(app=app), response)
    assert response.headers["Referrer-Policy"] == "no-referrer"  # the handler's own
    assert response.headers["X-Frame-Options"] == "DENY"  # the site's override
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Server"] == "shop"  # never aiohttp's versions
    assert get_site(app).server_header == "shop"


async def test_prepare_on_an_app_that_is_not_a_site_does_nothing(make_request) -> None:
    response = web.Response()
    await add_security_headers(make_request(app=web.Application()), response)
    assert "X-Content-Type-Options" not in response.headers


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.txt", "attachment; filename=\"a.txt\"; filename*=utf-8''a.txt"),
        ('q"uote.txt', "attachment; filename=\"q\\\"uote.txt\"; filename*=utf-8''q%22uote.txt"),
        ("C:\\Users\\me\\a.txt", "attachment; filename=\"a.txt\"; filename*=utf-8''a.txt"),
        ("../../etc/passwd", "attachment; filename=\"passwd\"; filename*=utf-8''passwd"),
        ("\u4e2d\u6587.pdf", "attachment; filename=\"__.pdf\"; filename*=utf-8''%E4%B8%AD%E6%96%87.pdf"),
        ("a\r\nSet-Cookie: x", "attachment; filename=\"a__Set-Cookie: x\"; filename*=utf-8''a__Set-Cookie%3A%20x"),
        ("", "attachment; filename=\"download\"; filename*=utf-8''download"),
    ],
)  # fmt: skip
def test_content_disposition_quotes_and_never_breaks_the_header(name, expected) -> None:
    assert content_disposition(name) == expected
