"""The embedded SQLite driver (aiosqlite), registered like any driver plugin."""

from __future__ import annotations

from ahcore.db.driver import DriverSpec
from ahcore.plugins import hookimpl


async def _not_yet(*args: object, **kw: object) -> None:
    raise NotImplementedError("the SQLite pool lands with the data-layer issue")


@hookimpl
def register_db_driver() -> DriverSpec:
    return DriverSpec(name="sqlite", aliases=("sqlite3", "aiosqlite"), create_pool=_not_yet)
