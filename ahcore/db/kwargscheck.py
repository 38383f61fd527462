"""``ahcore check`` for a driver's connection settings (``databases.NAME.kwargs``).

Every network driver takes the same shape of settings — host, port, user,
password, a database name under one of several spellings — so the check is
written once here and each driver names only its own keys. It lives apart
from any driver code, so checking a site never imports a client library.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ahcore.config import json_type_name
from ahcore.problems import Problem

if TYPE_CHECKING:
    from ahcore.api import SiteView


def _is_port(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return isinstance(value, int) and 0 < value < 65536


def check_connection_kwargs(site: SiteView, driver: str, known: Sequence[str]) -> list[Problem]:
    """The ``kwargs`` of each database ``driver`` serves, against the keys it passes on.

    ``driver`` is the canonical driver name (a database naming one of its
    aliases counts too); ``known`` every key the driver reads. An unknown
    key is a warning with a "did you mean" (the driver ignores it); a
    ``port`` that is not a TCP port, and any other value that is not a
    string (or null), are errors.
    """
    found = []
    for name, db in site.config.databases.items():
        spec = site.drivers.get(db.driver.lower())
        if spec is None or spec.name != driver:
            continue
        where = f"databases.{name}.kwargs"
        for key, value in db.kwargs.items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
                hint = f'did you mean "{close[0]}"? ' if close else ""
                found.append(
                    Problem(
                        f"{where}.{key}: not a {driver} connection setting, ignored; "
                        f"{hint}(known: {', '.join(known)})",
                        severity="warning",
                    )
                )
            elif key == "port":
                if not _is_port(value):
                    found.append(
                        Problem(f"{where}.port: expected a TCP port (1 to 65535), got {value!r}")
                    )
            elif value is not None and not isinstance(value, str):
                found.append(
                    Problem(
                        f"{where}.{key}: expected a string, got {json_type_name(value)} "
                        f"{value!r}; quote it"
                    )
                )
    return found
