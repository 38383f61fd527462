"""``plugins.rbac`` settings, checked once at start so a typo stops the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ahcore.api import SiteView

PLUGIN_NAME = "rbac"
FALLBACK_SQLITE_FILE = "data/rbac.db"


@dataclass(frozen=True)
class RbacSettings:
    """What a site can set under ``plugins.rbac``.

    ``db`` names an entry of ``databases`` (default ``"rbac"``; when the site
    has no database of that name, a SQLite file ``data/rbac.db`` in the site
    folder is used). ``cache_ttl`` bounds how stale cached roles and
    permissions may be (seconds, 0 disables caching). ``max_failures`` wrong
    passwords in a row lock an account for ``lockout_seconds``. ``routes``
    switches the built-in ``/rbac/login|logout|whoami`` endpoints off (so a
    site can serve its own pages there) and ``prefix`` moves them.
    ``argon2`` is passed to ``argon2.PasswordHasher`` (``time_cost``,
    ``memory_cost``, ``parallelism``) for sites that must tune the KDF.
    ``hash_workers`` threads (its own pool, SPEC §16) hash and verify
    passwords, so a burst of logins queues there instead of taking every CPU
    from the event loop.

    ``default`` is what a path no permission rule covers gets: ``"deny"``
    (401/403), or ``"allow"`` for sites migrating from an allow-by-default
    setup (a warning at every start). ``public`` lists path rules (same
    syntax as ``permission.path``) open to everyone — the role ``any`` —
    without a database row: the pages a site shows before login.
    """

    db: str = "rbac"
    cache_ttl: float = 60.0
    max_failures: int = 5
    lockout_seconds: int = 300
    routes: bool = True
    prefix: str = "/rbac"
    argon2: dict[str, int] = field(default_factory=dict)
    hash_workers: int = 2
    default: str = "deny"
    public: tuple[str, ...] = ()

    @classmethod
    def of(cls, site: SiteView) -> RbacSettings:
        """The site's settings; a bad value is a ValueError naming it."""
        return cls.from_mapping(site.plugin_settings(PLUGIN_NAME))

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> RbacSettings:
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"plugins.rbac: unknown setting(s) {sorted(unknown)}")
        values: dict[str, Any] = {}
        if "db" in raw:
            if not isinstance(raw["db"], str) or not raw["db"]:
                raise ValueError("plugins.rbac.db must name a database of 'databases'")
            values["db"] = raw["db"]
        if "cache_ttl" in raw:
            ttl = raw["cache_ttl"]
            if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0:
                raise ValueError("plugins.rbac.cache_ttl must be a number of seconds >= 0")
            values["cache_ttl"] = float(ttl)
        for key in ("max_failures", "lockout_seconds", "hash_workers"):
            if key in raw:
                value = raw[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"plugins.rbac.{key} must be a positive integer")
                values[key] = value
        if "routes" in raw:
            if not isinstance(raw["routes"], bool):
                raise ValueError("plugins.rbac.routes must be true or false")
            values["routes"] = raw["routes"]
        if "prefix" in raw:
            prefix = raw["prefix"]
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                raise ValueError("plugins.rbac.prefix must be a URL path starting with '/'")
            values["prefix"] = prefix.rstrip("/") or ""
        if "argon2" in raw:
            kdf = raw["argon2"]
            allowed = {"time_cost", "memory_cost", "parallelism"}
            if not isinstance(kdf, dict) or set(kdf) - allowed or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in kdf.values()
            ):
                raise ValueError(f"plugins.rbac.argon2 takes positive integers for {sorted(allowed)}")
            values["argon2"] = dict(kdf)
        if "default" in raw:
            if raw["default"] not in ("deny", "allow"):
                raise ValueError('plugins.rbac.default must be "deny" or "allow"')
            values["default"] = raw["default"]
        if "public" in raw:
            public = raw["public"]
            if not isinstance(public, list) or not all(
                isinstance(rule, str) and rule.startswith("/") for rule in public
            ):
                raise ValueError(
                    "plugins.rbac.public must be a list of path rules starting with '/' "
                    '(e.g. ["/", "/static/**"])'
                )
            values["public"] = tuple(public)
        return cls(**values)
