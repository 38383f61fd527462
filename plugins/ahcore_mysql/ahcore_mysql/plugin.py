"""The ``mysql`` driver's registration: cheap to load, aiomysql loaded on use.

Every installed driver is always enabled (a config may name any of them),
so this module is imported by every site; aiomysql and PyMySQL are
imported (from :mod:`ahcore_mysql.driver`) only when a MySQL/MariaDB
database is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ahcore.api import DriverSpec, hookimpl
from ahcore_mysql.checks import check_settings  # noqa: F401 (a hook implementation)

if TYPE_CHECKING:
    from ahcore.api import DatabaseConfig, Pool, SiteView


async def create_pool(name: str, config: DatabaseConfig, site: SiteView) -> Pool:
    """Create (without connecting) the pool of database ``name``."""
    from ahcore_mysql.driver import create_pool as open_pool

    return await open_pool(name, config, site)


@hookimpl
def register_db_driver() -> DriverSpec:
    return DriverSpec(
        name="mysql",
        aliases=("aiomysql", "mysql.connector", "pymysql", "mariadb"),
        create_pool=create_pool,
    )
