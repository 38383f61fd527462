"""X-Forwarded-* headers, honoured only from configured trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The URL prefix a proxy mounts the site under (X-Forwarded-Prepath), "" if none.
PREPATH: web.RequestKey[str] = web.RequestKey("ahcore.prepath", str)


def request_origin(request: web.Request) -> str:
    """``scheme://host[:port][/prepath]`` as the client used it.

    Behind a trusted proxy the pipeline has already applied the forwarded
    scheme and host; the mount prefix comes from ``X-Forwarded-Prepath``.
    """
    return f"{request.scheme}://{request.host}{request.get(PREPATH, '')}"


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(i, strict=False) for i in items)


def is_trusted(peer: str | None, networks: tuple[Network, ...]) -> bool:
    if not networks or not peer:
        return False
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(addr in n for n in networks)


def apply_forwarded(request: web.Request, networks: tuple[Network, ...]) -> web.Request:
    """A clone of ``request`` seen as the client saw it, when the peer is a trusted proxy.

    Honours ``X-Forwarded-For`` (first address), ``-Scheme``/``-Proto``,
    ``-Host`` and ``-Port``; ``-Prepath`` is kept for URL building in
    ``request[PREPATH]``. From any other peer the headers are ignored.
    """
    if not is_trusted(request.remote, networks):
        return request
    h = request.headers
    changes: dict[str, str] = {}
    fwd_for = h.get("X-Forwarded-For")
    if fwd_for:
        client = fwd_for.split(",")[0].strip()
        try:
            ipaddress.ip_address(client)
            changes["remote"] = client
        except ValueError:
            pass
    scheme = (h.get("X-Forwarded-Scheme") or h.get("X-Forwarded-Proto") or "").lower()
    if scheme in ("http", "https"):
        changes["scheme"] = scheme
    host = h.get("X-Forwarded-Host")
    port = h.get("X-Forwarded-Port")
    if host and all(c.isalnum() or c in "-.:[]" for c in host):
        if port and port.isdigit() and ":" not in host.rsplit("]", 1)[-1]:
            host = f"{host}:{port}"
        changes["host"] = host
    cloned = (
        request.clone(
            remote=changes.get("remote", request.remote or ""),
            scheme=changes.get("scheme", request.scheme),
            host=changes.get("host", request.host),
        )
        if changes
        else request
    )
    prepath = h.get("X-Forwarded-Prepath")
    if prepath:
        cleaned = "/" + "/".join(p for p in prepath.split("/") if p and p not in (".", ".."))
        cloned[PREPATH] = cleaned.rstrip("/")
    return cloned
