"""Headers every answer carries (SPEC §16): nosniff, a referrer and a frame policy, a bare Server.

The set is computed once per config (``website.security_headers`` adds,
replaces or — with ``null`` — removes one; ``website.server_header`` is the
``Server`` value, no version numbers) and applied in aiohttp's
``on_response_prepare`` signal, so streamed answers, errors and plugin
routes get them too. A header a handler set itself is left alone, except
``Server``, which aiohttp fills in with its versions before the signal.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from ahcore.appkeys import SITE_KEY

DEFAULT_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "SAMEORIGIN",
}


def header_set(overrides: Mapping[str, str | None]) -> tuple[tuple[str, str], ...]:
    """The headers to send: the defaults with the site's overrides."""
    merged: dict[str, str | None] = dict(DEFAULT_HEADERS)
    lowered = {name.lower(): name for name in merged}
    for name, value in overrides.items():
        merged.pop(lowered.get(name.lower(), name), None)
        merged[name] = value
    return tuple((name, value) for name, value in merged.items() if value is not None)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: set each configured header the response has not set."""
    apply_security_headers(request, response)


def apply_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """:func:`add_security_headers` without a coroutine (the kernel's own signal calls this)."""
    site = request.app.get(SITE_KEY)
    if site is None:
        return
    headers = response.headers
    for name, value in site.response_headers:
        if name not in headers:
            headers[name] = value
    # aiohttp has put its own "Python/x aiohttp/y" there before this signal.
    headers["Server"] = site.server_header
