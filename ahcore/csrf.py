"""Cross-site request refusal: CSRF and fetch-metadata resource isolation.

Its own small module because the error guard (``ahcore.errors``) runs it on
every request and must import it at module level: a function-level import
costs every request a trip through the import system.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from ahcore.forwarded import client_view

#: The session cookie's name (``ahcore.session`` re-exports it).
COOKIE_NAME = "AHCORE_SESSION"

#: Methods that change state; only these are checked.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_refusal(request: web.Request) -> str | None:
    """Why a state-changing, cookie-authenticated request is refused, or None.

    Requests without the session cookie, or authenticated by an
    ``Authorization`` header (which a browser cannot add cross-site without
    CORS), are not checked. ``Sec-Fetch-Site: cross-site`` or an ``Origin``
    that is not this host is refused; ``Referer`` is the fallback when neither
    header is present. A request with none of them (a non-browser client) is
    allowed.
    """
    if request.method not in STATE_CHANGING or COOKIE_NAME not in request.cookies:
        return None
    if request.headers.get("Authorization", "").split(" ", 1)[0].lower() in ("basic", "bearer"):
        return None
    return cross_origin_reason(request)


def cross_origin_reason(request: web.Request) -> str | None:
    """Why a browser's request comes from another site's page, or None.

    The origin checks of :func:`csrf_refusal` without its conditions: also
    used when a login issues a session (login CSRF), where the visitor has
    no session cookie yet.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site == "cross-site":
        return "cross-site request refused (Sec-Fetch-Site)"
    # The origin the browser sees: behind a trusted TLS proxy that is https
    # and the forwarded host, not the proxy's plain-http request.
    client = client_view(request)
    own = f"{client.scheme}://{client.host}".lower()
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin.lower() != own:
            return "cross-origin request refused (Origin does not match this host)"
        return None
    if fetch_site is None:
        referer = request.headers.get("Referer")
        if referer:
            parts = urlsplit(referer)
            if f"{parts.scheme}://{parts.netloc}".lower() != own:
                return "cross-origin request refused (Referer does not match this host)"
    return None


def cross_site_fetch(request: web.Request) -> bool:
    """Whether another site's page made the browser send this request as a subresource.

    ``Sec-Fetch-Site: cross-site`` on anything but a top-level navigation
    (``Sec-Fetch-Mode: navigate`` with ``Sec-Fetch-Dest: document``): an
    ``<img>``, a ``fetch()``, a frame or a form posted into a frame. A
    request without fetch metadata (a non-browser client, an old browser)
    is not one.
    """
    headers = request.headers
    if headers.get("Sec-Fetch-Site") != "cross-site":
        return False
    return not (
        headers.get("Sec-Fetch-Mode") == "navigate" and headers.get("Sec-Fetch-Dest") == "document"
    )
