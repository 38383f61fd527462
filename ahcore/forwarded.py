"""X-Forwarded-* headers, honoured only from configured trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from ahcore.appkeys import SITE_KEY

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The URL prefix a proxy mounts the site under (X-Forwarded-Prepath), "" if none.
PREPATH: web.RequestKey[str] = web.RequestKey("ahcore.prepath", str)


def request_origin(request: web.Request) -> str:
    """``scheme://host[:port][/prepath]`` as the client used it.

    The forwarded scheme and host of a trusted proxy apply (also in a
    plugin's own route, which never sees the pipeline's forwarded clone);
    the mount prefix comes from ``X-Forwarded-Prepath``.
    """
    view = client_view(request)
    return f"{view.scheme}://{view.host}{view.prepath}"


@dataclass(frozen=True)
class ClientView:
    """How the client made a request: address, scheme, host, mount prefix."""

    remote: str | None
    scheme: str
    host: str
    prepath: str


def client_view(request: web.Request) -> ClientView:
    """``request`` as the client made it: a trusted proxy's forwarded headers applied.

    The pipeline applies them to the files it serves (a clone of the
    request); a plugin route, the CSRF check and ``on_response_prepare`` get
    the request as the proxy sent it, and ask here. Nothing is cloned (a
    request whose body has been read cannot be), and the pipeline's clone
    gives the same answer as the original.
    """
    site = request.app.get(SITE_KEY)
    networks = site.trusted_proxies if site is not None else ()
    changes = forwarded_changes(request, networks) if networks else None
    if not changes:
        return ClientView(request.remote, request.scheme, request.host, request.get(PREPATH, ""))
    return ClientView(
        changes.get("remote", request.remote),
        changes.get("scheme", request.scheme),
        changes.get("host", request.host),
        changes.get("prepath", request.get(PREPATH, "")),
    )


def client_scheme(request: web.Request) -> str:
    """``http`` or ``https`` as the client used it (what ``Secure`` cookies follow)."""
    return client_view(request).scheme


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


def forwarded_changes(request: web.Request, networks: tuple[Network, ...]) -> dict[str, str] | None:
    """What a trusted proxy's ``X-Forwarded-*`` headers change (``remote``,
    ``scheme``, ``host``, ``prepath``), or None when the peer is not trusted."""
    if not is_trusted(request.remote, networks):
        return None
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
    prepath = h.get("X-Forwarded-Prepath")
    if prepath:
        cleaned = "/" + "/".join(p for p in prepath.split("/") if p and p not in (".", ".."))
        changes["prepath"] = cleaned.rstrip("/")
    return changes


def apply_forwarded(request: web.Request, networks: tuple[Network, ...]) -> web.Request:
    """A clone of ``request`` seen as the client saw it, when the peer is a trusted proxy.

    Honours ``X-Forwarded-For`` (first address), ``-Scheme``/``-Proto``,
    ``-Host`` and ``-Port``; ``-Prepath`` is kept for URL building in
    ``request[PREPATH]``. From any other peer the headers are ignored.
    """
    changes = forwarded_changes(request, networks)
    if not changes:
        return request
    cloned = request
    if changes.keys() - {"prepath"}:
        cloned = request.clone(
            remote=changes.get("remote", request.remote or ""),
            scheme=changes.get("scheme", request.scheme),
            host=changes.get("host", request.host),
        )
    if "prepath" in changes:
        cloned[PREPATH] = changes["prepath"]
    return cloned
