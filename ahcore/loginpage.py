"""A browser that must log in goes to the login page, and comes back after.

When a page answers 401 to a person's browser opening it (a ``GET`` or
``HEAD`` navigation), :func:`login_redirect` turns the answer into a
``303 See Other`` to the site's ``website.login_page`` with the page asked
for as ``?next=/the/page?and=query``. The login page's form carries
``next`` on, and after a successful login the handler sends the visitor to
:func:`safe_next` of it. API clients (``fetch``, ``Accept: application/json``,
no ``Accept`` at all) keep the 401 of SPEC §16: only a navigation is
redirected.

The kernel does this for *every* 401, whichever plugin denied access, so
a third-party auth plugin gets it by raising ``web.HTTPUnauthorized`` (or
letting ``auth_check`` deny); :func:`safe_next` and :func:`login_redirect`
are in :mod:`ahcore.api` for plugins with their own login endpoints.

``next`` is an open-redirect risk: a link
``/login?next=https://evil.example/`` must not send a visitor who logs in
to another site. :func:`is_safe_next` accepts only a same-site path —
printable ASCII starting with one ``/``: no scheme, no ``//host``, no
backslash (browsers read ``/\\evil`` as ``//evil``), no control characters
or spaces (browsers drop tabs and newlines, so ``/\\t/evil`` is ``//evil``);
anything else falls back to a default. The rule is in docs/security.md.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from aiohttp import web

from ahcore.appkeys import SITE_KEY
from ahcore.forwarded import client_view

#: The query parameter that carries the page to come back to.
NEXT_PARAM = "next"
#: Longer ``next`` values are refused (a URL a browser would not send anyway).
MAX_NEXT_LENGTH = 2048


def is_safe_next(value: object) -> bool:
    """Whether ``value`` is a same-site relative URL a redirect may go to.

    A path starting with exactly one ``/`` (an optional query and fragment
    after it), in printable ASCII without spaces or backslashes, with no
    scheme and no host: ``/admin/?tab=2`` yes; ``//evil``, ``/\\evil``,
    ``https://evil``, ``javascript:…``, ``admin`` (relative), ``/\\t/evil``
    no.
    """
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NEXT_LENGTH:
        return False
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return False
    if any(not 0x21 <= ord(ch) <= 0x7E or ch == "\\" for ch in value):
        return False
    parts = urllib.parse.urlsplit(value)
    return not parts.scheme and not parts.netloc and parts.path.startswith("/")


def safe_next(value: object, default: str = "/") -> str:
    """``value`` when :func:`is_safe_next` accepts it, else ``default``.

    For a login handler: ``redirect(safe_next(params_kw.next, "/"))``.
    """
    return value if is_safe_next(value) and isinstance(value, str) else default


def is_navigation(request: web.Request) -> bool:
    """Whether ``request`` is a browser opening a page (not a script's fetch).

    ``GET``/``HEAD`` only. ``Sec-Fetch-Mode`` decides when the browser sends
    it (``navigate``); else an ``Accept`` naming ``text/html`` before any
    JSON type (older browsers), so ``fetch()`` with its ``*/*`` and an API
    client asking for JSON are not navigations.
    """
    if request.method not in ("GET", "HEAD"):
        return False
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode.strip().lower() == "navigate"
    accept = request.headers.get("Accept", "")
    html_at = accept.find("text/html")
    if html_at < 0:
        return False
    json_at = accept.find("json")
    return json_at < 0 or html_at < json_at


def login_location(login_page: str, next_url: str) -> str:
    """``login_page`` with ``next=next_url`` added to its query."""
    joiner = "&" if "?" in login_page else "?"
    return login_page + joiner + urllib.parse.urlencode({NEXT_PARAM: next_url})


def login_redirect(
    request: web.Request, headers: Mapping[str, str] | None = None
) -> web.Response | None:
    """The ``303`` to the login page for a 401 on a navigation, or ``None``.

    ``None`` (answer the 401 as it is) when the site names no
    ``website.login_page``, the request is not a navigation
    (:func:`is_navigation`), the 401 asks for HTTP authentication
    (``headers`` has ``WWW-Authenticate``: the browser's own prompt), or the
    page asked for is the login page itself (no redirect loop). ``next`` is
    the path and query as the client sent them, and only when that is a safe
    relative URL. Behind a trusted proxy that mounts the site under a prefix
    (``X-Forwarded-Prepath``), the ``Location`` carries the prefix and
    ``next`` is the site's own path (a script's ``redirect(next)`` adds the
    prefix again).
    """
    site = request.app.get(SITE_KEY)
    if site is None:
        return None
    login_page = site.config.website.login_page
    if not login_page or not is_navigation(request):
        return None
    if headers and any(k.lower() == "www-authenticate" for k in headers):
        return None
    if request.path == urllib.parse.urlsplit(login_page).path:
        return None
    asked = request.raw_path
    location = login_location(login_page, asked) if is_safe_next(asked) else login_page
    location = client_view(request).prepath + location
    return web.Response(
        status=303,
        headers={"Location": location, "Cache-Control": "no-store", "Vary": "Sec-Fetch-Mode, Accept"},
    )
