"""ahcore.forwarded: X-Forwarded-* honoured only from trusted proxies, hostile values dropped."""

from __future__ import annotations

import ipaddress

import pytest
from aiohttp import web

from ahcore.forwarded import (
    PREPATH,
    apply_forwarded,
    client_scheme,
    client_view,
    forwarded_changes,
    is_trusted,
    parse_networks,
    request_origin,
)

PROXY = parse_networks(["10.0.0.0/8", "::1"])


def test_parse_networks_accepts_addresses_and_cidrs_with_host_bits() -> None:
    nets = parse_networks(["127.0.0.1", "10.1.2.3/8", "2001:db8::/32"])
    assert nets == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    with pytest.raises(ValueError):
        parse_networks(["not-a-network"])


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [
        ("10.9.9.9", True),
        ("::1", True),
        ("11.0.0.1", False),
        ("127.0.0.1", False),  # not even loopback unless listed
        (None, False),
        ("", False),
        ("garbage", False),
    ],
)
def test_is_trusted(peer, trusted) -> None:
    assert is_trusted(peer, PROXY) is trusted


def test_nothing_is_trusted_without_networks() -> None:
    assert is_trusted("127.0.0.1", ()) is False


def test_an_untrusted_peer_changes_nothing(make_request) -> None:
    request = make_request(
        headers={"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"}, remote="11.0.0.1"
    )
    assert forwarded_changes(request, PROXY) is None
    assert apply_forwarded(request, PROXY) is request


def test_a_trusted_proxy_sets_client_address_scheme_host_and_port(make_request) -> None:
    request = make_request(
        headers={
            "X-Forwarded-For": "203.0.113.7, 10.0.0.2",
            "X-Forwarded-Proto": "HTTPS",
            "X-Forwarded-Host": "shop.example",
            "X-Forwarded-Port": "8443",
        },
        remote="10.0.0.1",
    )
    assert forwarded_changes(request, PROXY) == {
        "remote": "203.0.113.7",  # the first address: the client's
        "scheme": "https",
        "host": "shop.example:8443",
    }
    cloned = apply_forwarded(request, PROXY)
    assert (cloned.remote, cloned.scheme, cloned.host) == ("203.0.113.7", "https", "shop.example:8443")
    assert (request.remote, request.scheme) == ("10.0.0.1", "http")  # the original is untouched


def test_x_forwarded_scheme_wins_over_proto(make_request) -> None:
    request = make_request(
        headers={"X-Forwarded-Scheme": "http", "X-Forwarded-Proto": "https"}, remote="10.0.0.1"
    )
    assert forwarded_changes(request, PROXY) == {"scheme": "http"}


def test_a_port_is_not_added_to_a_host_that_has_one(make_request) -> None:
    for host, expected in [
        ("shop.example:81", "shop.example:81"),
        ("[2001:db8::1]", "[2001:db8::1]:8443"),
        ("[2001:db8::1]:81", "[2001:db8::1]:81"),
    ]:
        request = make_request(
            headers={"X-Forwarded-Host": host, "X-Forwarded-Port": "8443"}, remote="10.0.0.1"
        )
        assert forwarded_changes(request, PROXY)["host"] == expected


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Forwarded-For", "not-an-ip"),
        ("X-Forwarded-For", "1.2.3.4<script>"),
        ("X-Forwarded-Proto", "javascript"),
        ("X-Forwarded-Proto", "ftp"),
        ("X-Forwarded-Host", "evil.example/path"),
        ("X-Forwarded-Host", "evil.example\\@x"),
        ("X-Forwarded-Host", "a b"),
        ("X-Forwarded-Host", "evil.example?x=1"),
        ("X-Forwarded-Host", "ex@mple"),
    ],
)
def test_hostile_values_from_a_trusted_proxy_are_a_400_naming_the_header(
    make_request, header, value
) -> None:
    """SPEC §16: a malformed forwarded header from a trusted proxy is refused, never applied."""
    request = make_request(headers={header: value}, remote="10.0.0.1")
    with pytest.raises(web.HTTPBadRequest) as info:
        apply_forwarded(request, PROXY)
    assert header.lower() in (info.value.text or "").lower()


def test_a_non_numeric_port_is_a_400(make_request) -> None:
    request = make_request(
        headers={"X-Forwarded-Host": "shop.example", "X-Forwarded-Port": "80; evil"},
        remote="10.0.0.1",
    )
    with pytest.raises(web.HTTPBadRequest):
        apply_forwarded(request, PROXY)


def test_a_malformed_forwarded_header_from_a_trusted_proxy_is_400(make_request) -> None:
    request = make_request(headers={"X-Forwarded-For": "not-an-ip"}, remote="10.0.0.1")
    with pytest.raises(web.HTTPBadRequest):
        apply_forwarded(request, PROXY)


@pytest.mark.parametrize(
    ("prepath", "expected"),
    [
        ("/shop", "/shop"),
        ("shop/", "/shop"),
        ("//shop//v2/", "/shop/v2"),
        ("/../../etc", "/etc"),
        ("/./a/../b", "/a/b"),
        ("/", ""),
    ],
)
def test_prepath_is_cleaned_of_dot_segments(make_request, prepath, expected) -> None:
    request = make_request(headers={"X-Forwarded-Prepath": prepath}, remote="10.0.0.1")
    assert forwarded_changes(request, PROXY) == {"prepath": expected}
    applied = apply_forwarded(request, PROXY)
    assert applied is request  # only the prepath: no clone, a request key
    assert applied[PREPATH] == expected


def test_client_view_and_origin_follow_the_sites_trusted_proxies(make_app, make_request) -> None:
    app = make_app({"website": {"trusted_proxies": ["10.0.0.0/8"]}})
    headers = {
        "X-Forwarded-For": "198.51.100.4",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "shop.example",
        "X-Forwarded-Prepath": "/store",
    }
    trusted = make_request(headers=headers, app=app, remote="10.0.0.1")
    assert client_view(trusted).remote == "198.51.100.4"
    assert client_scheme(trusted) == "https"
    assert request_origin(trusted) == "https://shop.example/store"
    untrusted = make_request(headers=headers, app=app, remote="198.51.100.9")
    assert request_origin(untrusted) == "http://example.org"
    assert client_view(untrusted).remote == "198.51.100.9"


def test_client_view_of_the_pipelines_clone_is_the_same(make_app, make_request) -> None:
    app = make_app({"website": {"trusted_proxies": ["10.0.0.0/8"]}})
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"}
    request = make_request(headers=headers, app=app, remote="10.0.0.1")
    networks = parse_networks(["10.0.0.0/8"])
    clone = apply_forwarded(request, networks)
    assert client_view(clone).scheme == client_view(request).scheme == "https"
    assert client_view(clone).host == client_view(request).host == "shop.example"


def test_client_view_outside_a_site_is_the_request_itself(make_request) -> None:
    request = make_request(headers={"X-Forwarded-Proto": "https"}, app=web.Application())
    view = client_view(request)
    assert (view.scheme, view.host, view.prepath) == ("http", "example.org", "")
