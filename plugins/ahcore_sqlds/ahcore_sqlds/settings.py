"""``plugins.sqlds`` settings: the statement time limit and the row cap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ahcore.site import Site

PLUGIN_NAME = "sqlds"


@dataclass(frozen=True)
class SqldsSettings:
    """``time_limit_ms`` (default 1000) and ``row_cap`` (default 1000)."""

    time_limit_ms: int = 1000
    row_cap: int = 1000

    @classmethod
    def of(cls, site: Site) -> SqldsSettings:
        """The site's settings; a bad value is a ValueError naming it (start-up fails)."""
        raw = site.plugin_settings(PLUGIN_NAME)
        values = {}
        for key in ("time_limit_ms", "row_cap"):
            if key in raw:
                value = raw[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"plugins.sqlds.{key} must be a positive integer")
                values[key] = value
        return cls(**values)
