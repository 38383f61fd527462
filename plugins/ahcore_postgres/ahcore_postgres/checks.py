"""``ahcore check`` for the postgres driver: the ``kwargs`` of the databases it serves.

Kept apart from the driver code so that checking a site never imports the
database client library.
"""

from __future__ import annotations

from ahcore.api import Problem, SiteView, check_connection_kwargs, hookimpl

DRIVER_NAME = "postgres"
#: The connection settings the driver passes on (``connect_kwargs``).
CONNECT_KEYS = ("host", "port", "user", "password", "dbname", "sslmode", "options")
#: ahserver spellings of the database name, accepted beside the driver's own.
NAME_SPELLINGS = ("db", "database")


@hookimpl
def check_settings(site: SiteView) -> list[Problem]:
    """Each ``databases`` entry this driver serves: its ``kwargs`` keys and their types."""
    return check_connection_kwargs(site, DRIVER_NAME, (*CONNECT_KEYS, *NAME_SPELLINGS))
