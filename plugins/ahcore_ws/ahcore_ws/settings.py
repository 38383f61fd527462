"""``plugins.ws`` settings, checked once at start-up.

A bad value stops the server with the setting's name instead of failing
every handshake; plugin settings need a restart to change, like every
plugin's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yarl import URL

#: The entry-point name, which is also the key of this plugin's settings.
PLUGIN_NAME = "ws"

#: Bytes one received message may have (after decompression) by default.
#: aiohttp (and so ahserver) allowed 4 MiB; 1 MiB is plenty for the JSON
#: messages ws scripts exchange and bounds what one client can make a
#: worker hold per message.
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024

#: Seconds between pings by default; a client that does not answer a ping
#: within half of it is disconnected, so dead connections do not linger.
DEFAULT_HEARTBEAT = 30.0


@dataclass(frozen=True)
class WsSettings:
    """What every ``.ws`` file of one application shares."""

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    heartbeat: float | None = DEFAULT_HEARTBEAT
    #: Other origins whose pages may open a connection (``scheme://host[:port]``,
    #: normalised by :func:`origin_key`); the site's own origin always may.
    allowed_origins: frozenset[tuple[str, str, int]] = frozenset()


def origin_key(text: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin, default port filled in; None if it is not one.

    ``http://Example.com`` and ``http://example.com:80`` are the same origin;
    ``null`` (sandboxed frames, ``file:``) and anything without a host is none.
    """
    try:
        url = URL(text.strip())
    except ValueError:
        return None
    if not url.scheme or not url.host or url.port is None:
        return None
    return url.scheme.lower(), url.host.lower(), url.port


def parse_settings(raw: Mapping[str, Any]) -> WsSettings:
    """``plugins.ws`` as :class:`WsSettings`; ValueError naming the bad key."""
    size = raw.get("max_message_size", DEFAULT_MAX_MESSAGE_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(
            f"plugins.{PLUGIN_NAME}.max_message_size: expected a positive number of bytes, "
            f"got {size!r}"
        )
    heartbeat = raw.get("heartbeat", DEFAULT_HEARTBEAT)
    if heartbeat is not None and (
        isinstance(heartbeat, bool)
        or not isinstance(heartbeat, (int, float))
        or not heartbeat >= 0  # also rejects NaN
    ):
        raise ValueError(
            f"plugins.{PLUGIN_NAME}.heartbeat: expected seconds (0 or null: no pings), "
            f"got {heartbeat!r}"
        )
    origins = raw.get("allowed_origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ValueError(
            f"plugins.{PLUGIN_NAME}.allowed_origins: expected a list of origins "
            f'such as "https://app.example.com", got {origins!r}'
        )
    keys = set()
    for origin in origins:
        key = origin_key(origin)
        if (
            key is None
            or key[0] not in ("http", "https")
            or URL(origin.strip()).path
            not in (
                "",
                "/",
            )
        ):
            raise ValueError(
                f"plugins.{PLUGIN_NAME}.allowed_origins: {origin!r} is not an origin "
                f"(expected scheme://host[:port], scheme http or https)"
            )
        keys.add(key)
    return WsSettings(
        max_message_size=size,
        heartbeat=float(heartbeat) if heartbeat else None,
        allowed_origins=frozenset(keys),
    )
