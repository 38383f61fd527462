"""SQL text handling: bound placeholders, sort clauses, statement kinds.

Nothing a visitor sends is ever spliced into SQL text: ``${name}$`` markers
become driver parameters, and the only identifiers written into SQL are
names that were first found in the schema (or in a query's result columns)
and are then quoted by the dialect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ahcore.db.driver import Dialect
from ahcore.db.errors import BadQuery

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}\$")
_SORT_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?\s*", re.IGNORECASE)
_LEADING_NOISE = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.DOTALL)
_QUERY_WORDS = frozenset({"select", "with", "values", "show", "explain", "pragma", "describe"})

MAX_PAGEROWS = 1000
DEFAULT_PAGEROWS = 80


def placeholder_names(sql: str) -> list[str]:
    """The ``${name}$`` names used in ``sql``, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER.findall(sql)))


def bind(sql: str, ns: Mapping[str, Any], dialect: Dialect) -> tuple[str, list[Any]]:
    """Turn ``${name}$`` markers into the dialect's parameters.

    Returns the SQL text for the driver and the parameter list. A name
    missing from ``ns`` binds ``None`` (as sqlor did). With the ``format``
    style a literal ``%`` in the text is doubled, because the driver
    interpolates the text with ``%``.
    """
    params: list[Any] = []
    out: list[str] = []
    pos = 0
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    escape = dialect.paramstyle == "format"
    for m in PLACEHOLDER.finditer(sql):
        chunk = sql[pos : m.start()]
        out.append(chunk.replace("%", "%%") if escape else chunk)
        out.append(mark)
        params.append(ns.get(m.group(1)))
        pos = m.end()
    tail = sql[pos:]
    out.append(tail.replace("%", "%%") if escape else tail)
    return "".join(out), params


def escape_percent(sql: str, dialect: Dialect) -> str:
    """Text generated with parameters for the ``format`` style needs ``%`` doubled."""
    return sql.replace("%", "%%") if dialect.paramstyle == "format" else sql


def is_query(sql: str) -> bool:
    """Whether ``sql`` reads (SELECT, WITH …) rather than writes, judged by its first word.

    Used to refuse writes in read-only data sources; the transaction itself
    is also opened read-only there, so a write hidden in a CTE still fails.
    """
    rest = _LEADING_NOISE.sub("", sql, count=1)
    word = re.match(r"[A-Za-z]+", rest)
    return word is not None and word.group(0).lower() in _QUERY_WORDS


def strip_statement(sql: str) -> str:
    """The statement without trailing ``;`` and blanks, ready to be used as a subquery."""
    return sql.strip().rstrip(";").rstrip()


def parse_sort(sort: Any, columns: Iterable[str], dialect: Dialect) -> str:
    """Build an ``ORDER BY`` list from request input, or raise 400.

    ``sort`` is a list of ``"column [asc|desc]"`` items or one comma-separated
    string of them. Every column must be one of ``columns`` (compared
    case-insensitively; the real name is used, quoted). Returns ``""`` for
    no sort.
    """
    if sort is None or sort == "" or sort == []:
        return ""
    if isinstance(sort, str):
        items: Sequence[Any] = sort.split(",")
    elif isinstance(sort, (list, tuple)):
        items = [
            part for item in sort for part in (item.split(",") if isinstance(item, str) else [item])
        ]
    else:
        raise BadQuery("sort must be a list or a comma-separated string of 'column [asc|desc]'")
    known = {c.lower(): c for c in columns}
    clauses = []
    for item in items:
        if not isinstance(item, str):
            raise BadQuery("sort items must be strings of the form 'column [asc|desc]'")
        m = _SORT_ITEM.fullmatch(item)
        if m is None:
            raise BadQuery(f"bad sort item {item.strip()[:60]!r}: expected 'column [asc|desc]'")
        column = known.get(m.group(1).lower())
        if column is None:
            raise BadQuery(f"cannot sort by {m.group(1)!r}: no such column")
        direction = (m.group(2) or "asc").upper()
        clauses.append(f"{dialect.ident(column)} {direction}")
    return ", ".join(clauses)


def parse_int(value: Any, name: str, default: int, *, minimum: int = 1) -> int:
    """An integer request parameter (``page``, ``pagerows``), or 400."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise BadQuery(f"{name} must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadQuery(f"{name} must be an integer, not {str(value)[:40]!r}") from None
    if number < minimum:
        raise BadQuery(f"{name} must be at least {minimum}")
    return number


def page_window(ns: Mapping[str, Any], *, max_rows: int = MAX_PAGEROWS) -> tuple[int, int]:
    """``(limit, offset)`` from ``page`` (default 1) and ``pagerows`` (default 80, clamped)."""
    page = parse_int(ns.get("page"), "page", 1)
    rows = min(parse_int(ns.get("pagerows"), "pagerows", DEFAULT_PAGEROWS), max_rows)
    return rows, (page - 1) * rows


def limit_clause(limit: int, offset: int = 0) -> str:
    """``LIMIT``/``OFFSET`` with literal integers (already validated, never request text)."""
    if offset:
        return f" LIMIT {int(limit)} OFFSET {int(offset)}"
    return f" LIMIT {int(limit)}"
