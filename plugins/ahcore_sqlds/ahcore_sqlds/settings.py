"""``plugins.sqlds`` settings: the statement time limit, the row cap, the batch size, HTML."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ahcore.api import SiteView

PLUGIN_NAME = "sqlds"


@dataclass(frozen=True)
class SqldsSettings:
    """``time_limit_ms`` (default 1000), ``row_cap`` (default 1000), ``batch_rows`` (1000), ``html``.

    ``time_limit_ms`` bounds each statement, and a streamed answer from its
    query's start to its last row. ``row_cap`` is the most rows one answer
    gives. An answer longer than ``batch_rows`` rows is streamed, read from
    the database and written ``batch_rows`` at a time. ``html`` (default
    true): a browser opening a data source gets a browsable table
    (:mod:`ahcore.datatable`); ``false`` sends everyone JSON.
    """

    time_limit_ms: int = 1000
    row_cap: int = 1000
    batch_rows: int = 1000
    html: bool = True

    @classmethod
    def of(cls, site: SiteView) -> SqldsSettings:
        """The site's settings; a bad value is a ValueError naming it (start-up fails)."""
        raw = site.plugin_settings(PLUGIN_NAME)
        values: dict[str, Any] = {}
        if "html" in raw:
            if not isinstance(raw["html"], bool):
                raise ValueError("plugins.sqlds.html must be true or false")
            values["html"] = raw["html"]
        for key in ("time_limit_ms", "row_cap", "batch_rows"):
            if key in raw:
                value = raw[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"plugins.sqlds.{key} must be a positive integer")
                values[key] = value
        return cls(**values)
