"""Headers every answer carries (SPEC §16): nosniff, a referrer and a frame policy, a bare Server.

The set is computed once per config (``website.security_headers`` adds,
replaces or — with ``null`` — removes one; ``website.server_header`` is the
``Server`` value, no version numbers) and applied in aiohttp's
``on_response_prepare`` signal, so streamed answers, errors and plugin
routes get them too. A header a handler set itself is left alone, except
``Server``, which aiohttp fills in with its versions before the signal.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

from aiohttp import hdrs, web
from multidict import istr

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
    # istr names: a case-insensitive header dict looks them up without
    # folding their case again (this runs for every response).
    return tuple((istr(name), value) for name, value in merged.items() if value is not None)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: set each configured header the response has not set."""
    apply_security_headers(request, response)


def apply_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """:func:`add_security_headers` without a coroutine, for the site of ``request.app``."""
    site = request.app.get(SITE_KEY)
    if site is None:
        return
    snapshot = site.snapshot
    set_site_headers(response, snapshot.response_headers, snapshot.server_header)


def set_site_headers(
    response: web.StreamResponse, configured: tuple[tuple[str, str], ...], server: str
) -> None:
    """Set each configured header ``response`` has not set, and the ``Server`` header.

    The kernel's ``on_response_prepare`` handler calls this with its site's
    snapshot (:func:`ahcore.app.response_preparer`).
    """
    headers = response.headers
    for name, value in configured:
        if name not in headers:
            headers[name] = value
    # aiohttp has put its own "Python/x aiohttp/y" there before this signal.
    headers[hdrs.SERVER] = server


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A ``Content-Disposition`` value naming ``filename`` safely (RFC 6266).

    ``filename="…"`` carries an ASCII fallback (quoted by :func:`email.utils.quote`,
    non-ASCII as ``_``) and ``filename*`` the exact name, percent-encoded by
    :func:`email.utils.encode_rfc2231` — ahserver's shape. Control characters
    (CR and LF among them) become ``_`` first, and any folder part is dropped,
    so no name can add a header or suggest a path.
    """
    name = "".join("_" if ord(c) < 32 or ord(c) == 127 else c for c in filename)
    name = name.replace("\\", "/").rsplit("/", 1)[-1] or "download"
    fallback = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return (
        f'{disposition}; filename="{email.utils.quote(fallback)}"; '
        f"filename*={email.utils.encode_rfc2231(name, 'utf-8')}"
    )


#: The policy sent with every file a visitor stored (an upload under
#: ``filesroot``) when it is sent back. Such a file may be HTML or SVG that
#: someone else wrote: ``sandbox`` gives the page an opaque origin with
#: scripts off, so it cannot read the site's cookies or call its scripts
#: as the visitor who opens it. Images, PDFs and downloads are unaffected.
STORED_FILE_POLICY = "sandbox"


def stored_file_headers(filename: str, download: bool) -> dict[str, str]:
    """The headers of a response sending a stored upload (see :data:`STORED_FILE_POLICY`)."""
    headers = {"Content-Security-Policy": STORED_FILE_POLICY}
    if download:
        headers["Content-Disposition"] = content_disposition(filename)
    return headers

