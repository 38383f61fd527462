"""ahcore.csrf: refusing cross-site state changes and cross-site subresource fetches."""

from __future__ import annotations

import pytest

from ahcore.csrf import COOKIE_NAME, STATE_CHANGING, cross_site_fetch, csrf_refusal

COOKIE = {"Cookie": f"{COOKIE_NAME}=abc"}


@pytest.mark.parametrize("method", sorted(STATE_CHANGING))
def test_a_cross_site_state_change_with_the_session_cookie_is_refused(make_request, method) -> None:
    request = make_request(method, "/x", {**COOKIE, "Sec-Fetch-Site": "cross-site"})
    assert csrf_refusal(request) == "cross-site request refused (Sec-Fetch-Site)"


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_are_never_checked(make_request, method) -> None:
    headers = {**COOKIE, "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    assert csrf_refusal(make_request(method, "/x", headers)) is None


def test_without_the_session_cookie_nothing_is_checked(make_request) -> None:
    headers = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    assert csrf_refusal(make_request("POST", "/x", headers)) is None
    other_cookie = {**headers, "Cookie": "OTHER=1"}
    assert csrf_refusal(make_request("POST", "/x", other_cookie)) is None


@pytest.mark.parametrize("auth", ["Basic dTpw", "Bearer tok", "bearer tok"])
def test_a_request_authenticated_by_a_header_is_not_checked(make_request, auth) -> None:
    headers = {**COOKIE, "Authorization": auth, "Origin": "https://evil.example"}
    assert csrf_refusal(make_request("POST", "/x", headers)) is None


def test_another_authorization_scheme_does_not_exempt(make_request) -> None:
    headers = {**COOKIE, "Authorization": "Digest x", "Origin": "https://evil.example"}
    assert csrf_refusal(make_request("POST", "/x", headers)) is not None


def test_an_origin_of_another_host_is_refused(make_request) -> None:
    for origin in ("https://evil.example", "http://example.org.evil.example", "null"):
        request = make_request("POST", "/x", {**COOKIE, "Origin": origin})
        assert csrf_refusal(request) == (
            "cross-origin request refused (Origin does not match this host)"
        ), origin


def test_the_own_origin_is_allowed_in_any_case(make_request) -> None:
    request = make_request("POST", "/x", {**COOKIE, "Origin": "HTTP://Example.ORG"})
    assert csrf_refusal(request) is None


def test_the_origin_must_have_the_scheme_the_client_used(make_request) -> None:
    plain = make_request("POST", "/x", {**COOKIE, "Origin": "https://example.org"})
    assert csrf_refusal(plain) is not None  # the page was https, this request is http
    tls = make_request("POST", "/x", {**COOKIE, "Origin": "https://example.org"}, scheme="https")
    assert csrf_refusal(tls) is None


def test_same_origin_fetch_metadata_with_matching_origin_passes(make_request) -> None:
    headers = {**COOKIE, "Sec-Fetch-Site": "same-origin", "Origin": "http://example.org"}
    assert csrf_refusal(make_request("DELETE", "/x", headers)) is None


def test_referer_is_the_fallback_without_fetch_metadata_or_origin(make_request) -> None:
    bad = make_request("POST", "/x", {**COOKIE, "Referer": "https://evil.example/page"})
    assert csrf_refusal(bad) == "cross-origin request refused (Referer does not match this host)"
    good = make_request("POST", "/x", {**COOKIE, "Referer": "http://example.org/form"})
    assert csrf_refusal(good) is None
    # A Referer is not consulted when Sec-Fetch-Site vouches for the request.
    vouched = make_request(
        "POST", "/x", {**COOKIE, "Sec-Fetch-Site": "same-origin", "Referer": "https://evil.example/"}
    )
    assert csrf_refusal(vouched) is None


def test_a_request_with_no_browser_headers_is_allowed(make_request) -> None:
    assert csrf_refusal(make_request("POST", "/x", COOKIE)) is None


def test_behind_a_trusted_proxy_the_forwarded_origin_counts(make_app, make_request) -> None:
    app = make_app({"website": {"trusted_proxies": ["10.0.0.0/8"]}})
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"}
    ok = make_request(
        "POST", "/x", {**COOKIE, **forwarded, "Origin": "https://shop.example"}, app=app,
        remote="10.1.2.3",
    )
    assert csrf_refusal(ok) is None
    # The same headers from an untrusted peer do not change what "this host" is.
    untrusted = make_request(
        "POST", "/x", {**COOKIE, **forwarded, "Origin": "https://shop.example"}, app=app,
        remote="203.0.113.5",
    )
    assert csrf_refusal(untrusted) is not None


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),
        ({"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}, False),
        ({"Sec-Fetch-Site": "same-site", "Sec-Fetch-Dest": "image"}, False),
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image", "Sec-Fetch-Mode": "no-cors"}, True),
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, True),
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, True),
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, True),
    ],
)
def test_cross_site_fetch(make_request, headers, refused) -> None:
    assert cross_site_fetch(make_request("GET", "/x", headers)) is refused
