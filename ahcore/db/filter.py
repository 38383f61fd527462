"""sqlor's ``DBFilter``: a JSON description of a WHERE clause, turned into SQL text.

A filter is a tree of ``{"AND": [...]}``, ``{"OR": [...]}``, ``{"NOT": {...}}``
and items ``{"field": "name", "op": "=", "var": "name"}`` (value from the
namespace) or ``{"field": …, "op": …, "const": value}`` (value in the
filter)::

    f = DBFilter({"AND": [{"field": "name", "op": "like", "var": "name"},
                          {"field": "del_flg", "op": "=", "const": "0"}]})
    where = f.gen(ns)           # "name LIKE ${name}$ AND del_flg = ${filter_const_0}$"
    rows = await sor.sqlExe("select * from t where " + where, ns)

Filters often come from the browser (list UIs send them), and sqlor copied
``field`` and ``var`` into the SQL text unchecked, so a filter could carry
any SQL. Here ``field`` must be a column name (``name`` or ``table.name``),
``var`` a placeholder name and ``op`` one of :attr:`DBFilter.operators`;
anything else is a 400 (:class:`~ahcore.db.errors.BadQuery`). Values are
never in the text: they are ``${name}$`` placeholders, bound by ``sqlExe``.
Every ``OR`` group is parenthesised (sqlor did so only for a lower-case
``or``, so ``a AND b OR c`` could come out of an upper-case one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ahcore.db.errors import BadQuery

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what ${name}$ accepts (ahcore.db.sqltext)


class DBFilter:
    """A filter tree (a dict, or its JSON text) that :meth:`gen` turns into SQL."""

    operators = (
        "=", "!=", "IN", "NOT IN", ">", ">=", "<", "<=",
        "IS NULL", "IS NOT NULL", "LIKE", "NOT LIKE",
    )  # fmt: skip
    logic = ("AND", "OR", "NOT")

    def __init__(self, filterjson: Mapping[str, Any] | str) -> None:
        if isinstance(filterjson, (str, bytes)):
            try:
                filterjson = json.loads(filterjson)
            except ValueError as exc:
                raise BadQuery(f"filter is not valid JSON: {exc}") from None
        if not isinstance(filterjson, Mapping):
            raise BadQuery("filter must be a JSON object")
        self.filterjson = filterjson
        self.consts: dict[str, Any] = {}

    def gen(self, ns: dict[str, Any] | None = None) -> str | None:
        """The WHERE text for ``ns``, or ``None`` when no item applies.

        An item whose ``var`` is not in ``ns`` is left out (sqlor's rule, so
        a search form's empty fields filter nothing). ``const`` values are
        added to ``ns`` as ``filter_const_0``, ``filter_const_1`` … .
        """
        ns = {} if ns is None else ns
        self.consts = {}
        sql = self._node(self.filterjson, ns)
        ns.update(self.consts)
        return sql

    def get_variables(self) -> dict[str, Any]:
        """``{var: field}`` for every item that takes its value from the namespace."""
        found: dict[str, Any] = {}
        self._variables(self.filterjson, found)
        return found

    def _variables(self, node: Any, found: dict[str, Any]) -> None:
        if not isinstance(node, Mapping):
            return
        if len(node) == 1:
            (value,) = node.values()
            for child in value if isinstance(value, list) else [value]:
                self._variables(child, found)
        elif isinstance(node.get("var"), str):
            found[node["var"]] = node.get("field")

    def _node(self, node: Any, ns: Mapping[str, Any]) -> str | None:
        if not isinstance(node, Mapping):
            raise BadQuery(f"filter: expected an object, got {json.dumps(node)[:80]}")
        if len(node) == 1:
            ((key, value),) = node.items()
            word = str(key).upper()
            if word in ("AND", "OR"):
                if not isinstance(value, list) or len(value) < 2:
                    raise BadQuery(f"filter: {key!r} needs a list of at least two conditions")
                parts = [s for s in (self._node(child, ns) for child in value) if s is not None]
                if not parts:
                    return None
                if len(parts) == 1:
                    return parts[0]
                joined = f" {word} ".join(parts)
                return f"({joined})" if word == "OR" else joined
            if word == "NOT":
                if not isinstance(value, Mapping):
                    raise BadQuery(f"filter: {key!r} needs one condition (an object)")
                inner = self._node(value, ns)
                return None if not inner else f"NOT ({inner})"
        return self._item(node, ns)

    def _item(self, item: Mapping[str, Any], ns: Mapping[str, Any]) -> str | None:
        field, op = item.get("field"), item.get("op")
        if not isinstance(field, str) or not _FIELD.fullmatch(field):
            raise BadQuery(f"filter: bad field {str(field)[:60]!r}: expected a column name")
        word = " ".join(op.split()).upper() if isinstance(op, str) else None
        if word not in self.operators:
            raise BadQuery(
                f"filter: bad op {str(op)[:20]!r} for {field!r}: expected one of "
                + ", ".join(self.operators)
            )
        if word in ("IS NULL", "IS NOT NULL"):
            return f"{field} {word}"
        var = item.get("var")
        if var is not None:
            if not isinstance(var, str) or not _VAR.fullmatch(var):
                raise BadQuery(f"filter: bad var {str(var)[:60]!r} for {field!r}")
            if var not in ns:
                return None
        if "const" in item:
            name = f"filter_const_{len(self.consts)}"
            self.consts[name] = item["const"]
            return f"{field} {word} ${{{name}}}$"
        if var is None:
            raise BadQuery(f"filter: {field!r} needs a 'const' value or a 'var' name")
        return f"{field} {word} ${{{var}}}$"


def default_filterjson(fields: Iterable[str], ns: Mapping[str, Any]) -> dict[str, Any] | None:
    """sqlor's default filter: ``field = ${field}$`` for each key of ``ns`` that is a field.

    One item alone, several under ``AND``, ``None`` when no key is a field.
    """
    known = set(fields)
    items = [{"field": k, "op": "=", "var": k} for k in ns if k in known]
    if not items:
        return None
    if len(items) == 1:
        return items[0]
    return {"AND": items}
