"""Which headers cross the proxy, in each direction.

Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the
message: the visitor's connection to us and ours to the upstream are
different connections, so they never cross — ``Connection``,
``Keep-Alive``, ``Proxy-*``, ``TE``, ``Trailer``, ``Transfer-Encoding``,
``Upgrade``, and every header that a ``Connection`` header names.

Credentials stay where they were sent unless the description says
otherwise: the visitor's ``Cookie`` and ``Authorization`` are for this
site, the upstream's ``Set-Cookie`` would set cookies on this site (this
site's session cookie included).
"""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "trailers",  # the old spelling, still seen
        "transfer-encoding",
        "upgrade",
    }
)

#: Visitor headers that describe the visitor's request to *us*; the upstream
#: request gets its own (aiohttp sets Host and Content-Length from the URL and
#: body; the X-Forwarded-* are set afresh by the processor).
NOT_FORWARDED = frozenset(
    {
        "host",
        "content-length",
        "expect",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-scheme",
        "x-forwarded-port",
        "x-forwarded-prepath",
        "x-forwarded-url",
        "x-real-ip",
    }
)


def connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    """Header names listed in every ``Connection`` header (lower case)."""
    names: set[str] = set()
    for value in headers.getall("Connection", ()):
        names.update(token.strip().lower() for token in value.split(",") if token.strip())
    return names


def is_hop_by_hop(name: str, listed: set[str]) -> bool:
    lower = name.lower()
    return lower in HOP_BY_HOP or lower.startswith("proxy-") or lower in listed


def filter_headers(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], drop: Iterable[str] = ()
) -> CIMultiDict[str]:
    """``headers`` without hop-by-hop ones and without the names in ``drop`` (lower case).

    Repeated headers (``Set-Cookie``, ``Vary``) keep every value, in order.
    """
    listed = connection_tokens(headers)
    dropped = set(drop)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if is_hop_by_hop(name, listed) or name.lower() in dropped:
            continue
        out.add(name, value)
    return out
