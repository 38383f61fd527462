"""``plugins.proxy`` settings: which upstreams may be reached, and how long they may take.

Checked once at start-up, so a bad entry stops the server with its name
instead of refusing requests one by one.

``allow_hosts`` is an exact list; nothing is allowed that it does not name
(not the site itself, not ``localhost``, no address range):

- ``"api.example.com"`` — that host on the default port of the URL's scheme
  (80 for http, 443 for https);
- ``"api.example.com:8443"`` — that host on that port;
- ``"api.example.com:*"`` — that host on any port;
- IP literals the same way: ``"127.0.0.1:8080"``, ``"[::1]:8080"``.

Host names are compared as written (case-insensitive, IDNA-encoded), never
resolved: a loopback or private service is reachable only when its
address or a name for it is listed, and a listed name is trusted as DNS
resolves it — list only names whose DNS you control.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yarl import URL

#: The entry-point name, which is also the key of this plugin's settings.
PLUGIN_NAME = "proxy"

#: Seconds an upstream may take to answer (status and headers), and may stay
#: silent between two chunks of its body.
DEFAULT_TIME_LIMIT = 30.0

#: Schemes an upstream URL may have.
SCHEMES = frozenset({"http", "https"})

#: "any port" in an allow_hosts entry.
ANY_PORT = -1


@dataclass(frozen=True)
class ProxySettings:
    """What every proxy file of one application shares."""

    #: ``(host, port)`` pairs; ``port`` is None for "the scheme's default
    #: port", :data:`ANY_PORT` for any.
    allow_hosts: frozenset[tuple[str, int | None]] = frozenset()
    time_limit: float = DEFAULT_TIME_LIMIT

    def allows(self, url: URL) -> bool:
        """Whether ``url``'s host and port are named by ``allow_hosts``."""
        host = normalise_host(url.raw_host or "")
        port = url.port
        if not host or port is None:
            return False
        rules = self.allow_hosts
        if (host, port) in rules or (host, ANY_PORT) in rules:
            return True
        return (host, None) in rules and port == _DEFAULT_PORTS.get(url.scheme)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_host(host: str) -> str:
    """The form hosts are compared in: lower case, no brackets, no trailing dot."""
    return host.strip("[]").rstrip(".").lower()


def parse_host_entry(entry: str) -> tuple[str, int | None]:
    """One ``allow_hosts`` entry as ``(host, port)``; ValueError when it is not one."""
    text = entry.strip()
    any_port = text.endswith(":*")
    if any_port:
        text = text[:-2]
    if not text or "/" in text or "@" in text:
        raise ValueError(entry)
    try:
        url = URL(f"http://{text}")
    except ValueError:
        raise ValueError(entry) from None
    host = normalise_host(url.raw_host or "")
    if not host or url.path not in ("", "/") or url.query_string or "*" in host:
        raise ValueError(entry)
    if any_port:
        if url.explicit_port is not None:
            raise ValueError(entry)
        return host, ANY_PORT
    return host, url.explicit_port


def parse_settings(raw: Mapping[str, Any]) -> ProxySettings:
    """``plugins.proxy`` as :class:`ProxySettings`; ValueError naming the bad key."""
    hosts = raw.get("allow_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ValueError(
            f'plugins.{PLUGIN_NAME}.allow_hosts: expected a list of "host", "host:port" '
            f'or "host:*" strings, got {hosts!r}'
        )
    rules = set()
    for entry in hosts:
        try:
            rules.add(parse_host_entry(entry))
        except ValueError:
            raise ValueError(
                f'plugins.{PLUGIN_NAME}.allow_hosts: {entry!r} is not "host", "host:port" '
                f'or "host:*" (no scheme, path or wildcard in the name)'
            ) from None
    limit = raw.get("time_limit", DEFAULT_TIME_LIMIT)
    # `not limit > 0` also rejects NaN; bool is an int but never a sensible limit.
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
        raise ValueError(
            f"plugins.{PLUGIN_NAME}.time_limit: expected a positive number of seconds, "
            f"got {limit!r}"
        )
    return ProxySettings(allow_hosts=frozenset(rules), time_limit=float(limit))
