"""X-Forwarded-* headers, honoured only from configured trusted proxies.

From a trusted proxy a malformed value (a host that is not one, a port out
of range, an address that is not an IP, a scheme other than http/https) is
a 400 naming the header (SPEC §16) rather than dropped in silence: the
site would otherwise build its links and cookies from the proxy's own
address. From any other peer the headers are ignored, whatever they hold.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
    if _host(view.host) is None:
        # A Host header aiohttp passed on but that is no host[:port] (say
        # "evil.example/x?") must not become part of a Location or a link.
        raise web.HTTPBadRequest(text="400: Bad Request: the Host header is not a host name\n")
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
    ``scheme``, ``host``, ``prepath``), or None when the peer is not trusted.

    A malformed value changes nothing here; :func:`forwarded_refusal` is what
    refuses the request for it (400), before anything runs.
    """
    if not is_trusted(request.remote, networks):
        return None
    return _read_forwarded(request.headers)[0]


def forwarded_refusal(request: web.Request) -> str | None:
    """Why a trusted proxy's forwarded headers are refused (a 400 names the header), or None.

    None for a peer that is not a trusted proxy: its headers mean nothing
    and are ignored, whatever they hold.
    """
    site = request.app.get(SITE_KEY)
    networks = site.trusted_proxies if site is not None else ()
    return forwarded_refusal_from(request, networks)


def forwarded_refusal_from(request: web.Request, networks: tuple[Network, ...]) -> str | None:
    """:func:`forwarded_refusal` with the site's trusted proxies already at hand."""
    if not networks or not is_trusted(request.remote, networks):
        return None
    return _read_forwarded(request.headers)[1]


# A host name as a proxy forwards it: ASCII letters, digits, "-", "_", dots.
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?")
_PORT = re.compile(r"[0-9]{1,5}")


def _port(text: str) -> bool:
    return _PORT.fullmatch(text) is not None and 0 < int(text) < 65536


def _split_port(value: str) -> tuple[str, str | None] | None:
    """``(host, port)`` of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; None if neither."""
    if value.startswith("["):
        inner, sep, rest = value[1:].partition("]")
        if not sep:
            return None
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            return None
        host = f"[{inner}]"
    else:
        host, sep, port = value.partition(":")
        rest = sep + port
    if not rest:
        return host, None
    if rest[0] != ":" or not _port(rest[1:]):
        return None
    return host, rest[1:]


def _host(value: str) -> tuple[str, str | None] | None:
    """``(host, port)`` of an ``X-Forwarded-Host`` element, or None when malformed."""
    parts = _split_port(value)
    if parts is None or not (parts[0].startswith("[") or _HOSTNAME.fullmatch(parts[0])):
        return None
    return parts


def _address(value: str) -> str | None:
    """The IP address in an ``X-Forwarded-For`` element (a port or brackets allowed)."""
    if value.count(":") == 1 or value.startswith("["):  # 1.2.3.4:5678, [v6], [v6]:port
        parts = _split_port(value)
        if parts is None:
            return None
        value = parts[0].strip("[]")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _malformed(header: str, expected: str) -> str:
    return f"malformed {header} header from a trusted proxy: expected {expected}"


def _read_forwarded(h: Any) -> tuple[dict[str, str], str | None]:
    """``(changes, problem)``: what the headers say, and the first malformed one.

    A header may hold a comma-separated list (proxies in a chain append to
    it); every element must be well-formed, and the first — the one the
    client-facing proxy wrote — is used.
    """
    changes: dict[str, str] = {}
    problem: str | None = None
    fwd_for = h.get("X-Forwarded-For")
    if fwd_for:
        addresses = [_address(p.strip()) for p in fwd_for.split(",")]
        client = addresses[0]
        if client is None or None in addresses:
            problem = problem or _malformed("X-Forwarded-For", "a list of IP addresses")
        else:
            changes["remote"] = client
    for name in ("X-Forwarded-Scheme", "X-Forwarded-Proto"):
        value = h.get(name)
        if not value:
            continue
        schemes = [p.strip().lower() for p in value.split(",")]
        if any(s not in ("http", "https") for s in schemes):
            problem = problem or _malformed(name, "http or https")
        else:
            changes.setdefault("scheme", schemes[0])
    raw_host = h.get("X-Forwarded-Host")
    host_has_port = False
    if raw_host:
        hosts = [_host(p.strip()) for p in raw_host.split(",")]
        first = hosts[0]
        if first is None or None in hosts:
            problem = problem or _malformed("X-Forwarded-Host", "a host name and an optional port")
        else:
            changes["host"] = first[0] if first[1] is None else f"{first[0]}:{first[1]}"
            host_has_port = first[1] is not None
    port = h.get("X-Forwarded-Port")
    if port:
        ports = [p.strip() for p in port.split(",")]
        if not all(_port(p) for p in ports):
            problem = problem or _malformed("X-Forwarded-Port", "a port number from 1 to 65535")
        elif "host" in changes and not host_has_port:
            changes["host"] = f"{changes['host']}:{ports[0]}"
    prepath = h.get("X-Forwarded-Prepath")
    if prepath:
        cleaned = "/" + "/".join(p for p in prepath.split("/") if p and p not in (".", ".."))
        changes["prepath"] = cleaned.rstrip("/")
    return changes, problem


def apply_forwarded(request: web.Request, networks: tuple[Network, ...]) -> web.Request:
    """A clone of ``request`` seen as the client saw it, when the peer is a trusted proxy.

    Honours ``X-Forwarded-For`` (first address), ``-Scheme``/``-Proto``,
    ``-Host`` and ``-Port``; ``-Prepath`` is kept for URL building in
    ``request[PREPATH]``. A malformed value from a trusted proxy is a 400
    naming the header. From any other peer the headers are ignored.
    """
    if not is_trusted(request.remote, networks):
        return request
    changes, problem = _read_forwarded(request.headers)
    if problem is not None:
        raise web.HTTPBadRequest(text=problem + "\n")  # errors imports this module
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
