"""Table and result-column names, learnt from the database and cached per pool.

Every identifier the sqlor layer writes into SQL comes from here, so a name
in a request is only ever used after it was found in the schema. Found
tables are cached until :meth:`SchemaCache.clear` (hot reload); a miss is
not cached, so a table created later is seen at once.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field

from ahcore.db.driver import ColumnInfo, Connection
from ahcore.db.errors import BadQuery

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESULT_CACHE_SIZE = 512


@dataclass(frozen=True)
class TableInfo:
    """A table's real name and its columns in order."""

    name: str
    columns: tuple[ColumnInfo, ...]
    by_lower: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def make(cls, name: str, columns: list[ColumnInfo]) -> TableInfo:
        return cls(name, tuple(columns), {c.name.lower(): c.name for c in columns})

    def column(self, key: str) -> str | None:
        """The real name of column ``key`` (any case), or ``None``."""
        return self.by_lower.get(key.lower()) if isinstance(key, str) else None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def check_table_name(name: object) -> str:
    """``name`` if it can be a table name (letters, digits, ``_``), else 400."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadQuery(f"bad table name {str(name)[:60]!r}")
    return name


class SchemaCache:
    """Tables and query result columns of one database."""

    def __init__(self) -> None:
        self._tables: dict[str, TableInfo] = {}
        self._results: OrderedDict[str, list[str]] = OrderedDict()
        #: Statement text (and whether it was stripped) → the driver's text and
        #: its ``${name}$`` names (:func:`ahcore.db.sqltext.prepare`), for sqlor.
        self.statements: dict[tuple[str, bool], tuple[str, tuple[str, ...]]] = {}

    async def table(self, conn: Connection, name: str) -> TableInfo:
        """The table called ``name``, or 400 when there is none."""
        key = check_table_name(name).lower()
        info = self._tables.get(key)
        if info is None:
            found = await conn.table_columns(name)
            if not found or not found[1]:
                raise BadQuery(f"no such table {name!r}")
            info = TableInfo.make(found[0], found[1])
            self._tables[key] = info
        return info

    def result_columns(self, sql: str) -> list[str] | None:
        cols = self._results.get(sql)
        if cols is not None:
            self._results.move_to_end(sql)
        return cols

    def remember_result_columns(self, sql: str, columns: list[str]) -> None:
        self._results[sql] = columns
        if len(self._results) > _RESULT_CACHE_SIZE:
            self._results.popitem(last=False)

    def clear(self) -> None:
        self._tables.clear()
        self._results.clear()
        self.statements.clear()
