"""Every cookie ahcore or a plugin sets goes out through :func:`set_cookie`.

One place decides the attributes a cookie gets, so no code path can forget
one (SPEC §8): ``HttpOnly`` (unless a cookie is meant for scripts),
``SameSite=Lax`` (or ``Strict``), ``Path=/`` and ``Secure`` whenever the
client used https — ahcore's own TLS, or a trusted proxy's
``X-Forwarded-Proto``/``-Scheme`` (``website.trusted_proxies``), which is
why the scheme is taken from :func:`ahcore.forwarded.client_scheme` and not
from ``request.secure``: a plugin's own route never sees the pipeline's
forwarded clone of the request.

The functions work before a response is prepared (a route handler) and
while it is being prepared (an ``on_response_prepare`` handler, where the
session is saved): aiohttp has turned ``response.cookies`` into headers by
then, so the cookie goes in as a header.
"""

from __future__ import annotations

import time
from http.cookies import Morsel, SimpleCookie
from typing import Literal

from aiohttp import hdrs, web

from ahcore.forwarded import client_scheme

SameSite = Literal["Lax", "Strict"]


def set_cookie(
    request: web.Request,
    response: web.StreamResponse,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    path: str = "/",
    domain: str | None = None,
    httponly: bool = True,
    samesite: SameSite = "Lax",
) -> None:
    """Set cookie ``name`` on ``response``: HttpOnly, SameSite, Secure under https.

    ``max_age`` (seconds) also sets ``Expires`` for old clients; ``None``
    makes a browser-session cookie. ``httponly=False`` only for a cookie a
    page's scripts must read. ``Secure`` is not a choice: it is set exactly
    when the client's scheme is https.
    """
    if samesite not in ("Lax", "Strict"):
        raise ValueError(f"samesite must be 'Lax' or 'Strict', not {samesite!r}")
    expires = None
    if max_age is not None:
        expires = time.strftime("%a, %d-%b-%Y %H:%M:%S GMT", time.gmtime(time.time() + max_age))
    morsel = _morsel(request, name, value, max_age, expires, path, domain, httponly, samesite)
    _emit(response, name, morsel)


def delete_cookie(
    request: web.Request,
    response: web.StreamResponse,
    name: str,
    *,
    path: str = "/",
    domain: str | None = None,
) -> None:
    """Tell the browser to drop cookie ``name``: an empty value, ``Max-Age=0``, ``Expires`` past."""
    morsel = _morsel(request, name, "", 0, _EPOCH, path, domain, True, "Lax")
    _emit(response, name, morsel)


_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def _morsel(
    request: web.Request,
    name: str,
    value: str,
    max_age: int | None,
    expires: str | None,
    path: str,
    domain: str | None,
    httponly: bool,
    samesite: str,
) -> Morsel[str]:
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = path
    if domain is not None:
        morsel["domain"] = domain
    if max_age is not None:
        morsel["max-age"] = str(max_age)
    if expires is not None:
        morsel["expires"] = expires
    if httponly:
        morsel["httponly"] = True
    morsel["samesite"] = samesite
    if client_scheme(request) == "https":
        morsel["secure"] = True
    return morsel


def _emit(response: web.StreamResponse, name: str, morsel: Morsel[str]) -> None:
    if not response.prepared:
        # Before prepare: aiohttp writes response.cookies into the headers.
        response.cookies[name] = morsel
        return
    # In on_response_prepare the cookies have already become headers: replace
    # this cookie's header line (if any) with the new one.
    prefix = f"{name}="
    lines = response.headers.getall(hdrs.SET_COOKIE, [])
    if any(line.startswith(prefix) for line in lines):
        del response.headers[hdrs.SET_COOKIE]
        for line in lines:
            if not line.startswith(prefix):
                response.headers.add(hdrs.SET_COOKIE, line)
    response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())
