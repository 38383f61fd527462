"""What a database driver plugin declares through ``register_db_driver``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DriverSpec:
    """A database driver.

    ``name`` is canonical (``sqlite``, ``mysql``, ``postgres``); ``aliases``
    are the ahserver/sqlor driver names it answers to; ``create_pool(name,
    dbconfig, site)`` opens a pool for one configured database.
    """

    name: str
    create_pool: Callable[..., Awaitable[Any]]
    aliases: tuple[str, ...] = ()
    plugin: str = field(default="", compare=False)
