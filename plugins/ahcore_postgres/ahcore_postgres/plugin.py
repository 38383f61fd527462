"""The ``postgres`` driver's registration: cheap to load, psycopg loaded on use.

Every installed driver is always enabled (a config may name any of them),
so this module is imported by every site. psycopg, psycopg_pool and libpq
cost a worker about 8 MB of memory: they are imported (from
:mod:`ahcore_postgres.driver`) only when a PostgreSQL database is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ahcore.api import DriverSpec, hookimpl
from ahcore_postgres.checks import check_settings  # noqa: F401 (a hook implementation)

if TYPE_CHECKING:
    from ahcore.api import DatabaseConfig, Pool, SiteView


async def create_pool(name: str, config: DatabaseConfig, site: SiteView) -> Pool:
    """Open (without connecting) the pool of database ``name``."""
    from ahcore_postgres.driver import create_pool as open_pool

    return await open_pool(name, config, site)


@hookimpl
def register_db_driver() -> DriverSpec:
    return DriverSpec(
        name="postgres",
        aliases=("postgresql", "aiopg", "psycopg2", "psycopg"),
        create_pool=create_pool,
    )
