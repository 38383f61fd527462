"""ahcore.loginpage: which requests are navigations, and the redirect a 401 becomes."""

from __future__ import annotations

import pytest
from yarl import URL

from ahcore.loginpage import is_navigation, login_location, login_redirect


@pytest.mark.parametrize(
    "method, headers, expected",
    [
        ("GET", {"Sec-Fetch-Mode": "navigate"}, True),
        ("HEAD", {"Sec-Fetch-Mode": "Navigate "}, True),
        ("GET", {"Sec-Fetch-Mode": "cors", "Accept": "text/html"}, False),
        ("GET", {"Accept": "text/html,application/xhtml+xml"}, True),
        ("GET", {"Accept": "application/json, text/html"}, False),
        ("GET", {"Accept": "*/*"}, False),
        ("GET", {}, False),
        ("POST", {"Sec-Fetch-Mode": "navigate"}, False),
    ],
)
def test_is_navigation(make_request, method, headers, expected):
    assert is_navigation(make_request(method, "/x", headers)) is expected


def test_login_location_keeps_the_login_pages_own_query():
    assert login_location("/login", "/a?b=1") == "/login?next=%2Fa%3Fb%3D1"
    assert login_location("/login?lang=en", "/a") == "/login?lang=en&next=%2Fa"


def test_login_redirect(make_app, make_request):
    app = make_app({"website": {"login_page": "/sign-in?x=1"}})
    nav = {"Sec-Fetch-Mode": "navigate"}
    response = login_redirect(make_request("GET", "/admin/?tab=1", nav, app=app))
    assert response is not None and response.status == 303
    assert URL(response.headers["Location"]).query == {"x": "1", "next": "/admin/?tab=1"}
    assert login_redirect(make_request("GET", "/sign-in", nav, app=app)) is None
    assert login_redirect(make_request("GET", "/admin/", nav, app=app), {"WWW-Authenticate": "Basic"}) is None
    assert login_redirect(make_request("GET", "/admin/", {}, app=app)) is None
    assert login_redirect(make_request("GET", "/admin/", nav, app=make_app())) is None
