"""``ahcore check`` for the postgres driver: the ``kwargs`` of the databases it serves.

Kept apart from the driver code so that checking a site never imports the
database client library.
"""

from __future__ import annotations

import difflib

from ahcore.api import Problem, SiteView, hookimpl

DRIVER_NAME = "postgres"
#: The connection settings the driver passes on (``connect_kwargs``).
CONNECT_KEYS = ("host", "port", "user", "password", "dbname", "sslmode", "options")
#: ahserver spellings of the database name, accepted beside the driver's own.
NAME_SPELLINGS = ("db", "database")


@hookimpl
def check_settings(site: SiteView) -> list[Problem]:
    """Each ``databases`` entry this driver serves: its ``kwargs`` keys and their types."""
    found = []
    known = (*CONNECT_KEYS, *NAME_SPELLINGS)
    for name, db in site.config.databases.items():
        spec = site.drivers.get(db.driver.lower())
        if spec is None or spec.name != DRIVER_NAME:
            continue
        where = f"databases.{name}.kwargs"
        for key, value in db.kwargs.items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
                hint = f'did you mean "{close[0]}"? ' if close else ""
                found.append(
                    Problem(
                        f"{where}.{key}: not a {DRIVER_NAME} connection setting, ignored; "
                        f"{hint}(known: {', '.join(known)})",
                        severity="warning",
                    )
                )
            elif key == "port":
                if isinstance(value, bool) or not (
                    isinstance(value, int) or (isinstance(value, str) and value.isdigit())
                ) or not 0 < int(value) < 65536:
                    found.append(
                        Problem(f"{where}.port: expected a TCP port (1 to 65535), got {value!r}")
                    )
            elif value is not None and not isinstance(value, str):
                found.append(
                    Problem(
                        f"{where}.{key}: expected a string, got {type(value).__name__} "
                        f"{value!r}; quote it"
                    )
                )
    return found
