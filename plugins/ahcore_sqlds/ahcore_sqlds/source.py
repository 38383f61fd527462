"""The ``.sqlds`` file format (SPEC §7), parsed and checked once per file change.

::

    {"sqldesc": {"sql_string": "select … where a = ${a}$", "db": "mydb",
                 "sortfield": "id", "writable": false},
     "arguments": [{"name": "a", "type": "str", "iotype": "text", "default": "x"}],
     "datadesc": [{"name": "a", "type": "str", "label": "A"}, …]}

Every ``${name}$`` in the SQL must be a declared argument: a value can only
come from the request through its declared, type-checked argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ahcore.api import is_query, placeholder_names
from ahcore_sqlds.arguments import Argument


class SourceError(ValueError):
    """The file itself is wrong (a 500 for visitors, a clear message in the log)."""


@dataclass(frozen=True)
class SqlDataSource:
    """A parsed ``.sqlds`` file."""

    sql: str
    db: str
    sortfield: Any
    writable: bool
    is_query: bool
    arguments: list[Argument]
    arguments_raw: list[Any]
    datadesc: list[Any] | None

    @classmethod
    def from_json(cls, data: Any, origin: str = "") -> SqlDataSource:
        where = f"{origin}: " if origin else ""
        if not isinstance(data, dict) or not isinstance(data.get("sqldesc"), dict):
            raise SourceError(f"{where}a .sqlds file is a JSON object with a 'sqldesc' object")
        desc = data["sqldesc"]
        sql = desc.get("sql_string")
        db = desc.get("db")
        if not isinstance(sql, str) or not sql.strip():
            raise SourceError(f"{where}sqldesc.sql_string must be a non-empty string")
        if not isinstance(db, str) or not db:
            raise SourceError(f"{where}sqldesc.db must name a configured database")
        raw_args = data.get("arguments") or []
        if not isinstance(raw_args, list):
            raise SourceError(f"{where}'arguments' must be a list")
        try:
            arguments = [Argument.parse(a) for a in raw_args]
        except ValueError as exc:
            raise SourceError(f"{where}{exc}") from None
        declared = {a.name for a in arguments}
        undeclared = [n for n in placeholder_names(sql) if n not in declared]
        if undeclared:
            raise SourceError(
                f"{where}placeholders not declared in 'arguments': {', '.join(undeclared)}"
            )
        datadesc = data.get("datadesc")
        if datadesc is not None and not isinstance(datadesc, list):
            raise SourceError(f"{where}'datadesc' must be a list")
        return cls(
            sql=sql,
            db=db,
            sortfield=desc.get("sortfield") or None,
            writable=desc.get("writable") is True,
            is_query=is_query(sql),
            arguments=arguments,
            arguments_raw=raw_args,
            datadesc=datadesc or None,
        )
