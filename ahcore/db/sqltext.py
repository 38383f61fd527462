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


def prepare(sql: str, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """``bind``'s work that depends on the text only: the driver's SQL and the names in order.

    ``bind(sql, ns, dialect)`` equals ``(text, [ns.get(n) for n in names])``;
    the result can be kept per statement text (:class:`ahcore.db.schema.SchemaCache`).
    """
    text, _ = bind(sql, {}, dialect)
    return text, tuple(m.group(1) for m in PLACEHOLDER.finditer(sql))


def escape_percent(sql: str, dialect: Dialect) -> str:
    """Text generated with parameters for the ``format`` style needs ``%`` doubled."""
    return sql.replace("%", "%%") if dialect.paramstyle == "format" else sql


def is_query(sql: str) -> bool:
    """Whether ``sql`` is one statement that only reads.

    Judged on the statement's tokens (comments, string literals and quoted
    names skipped), not on its first word alone:

    - a common table expression is judged by what it leads to and by each of
      its bodies: ``WITH x AS (SELECT 1) DELETE FROM t`` and PostgreSQL's
      ``WITH d AS (DELETE … RETURNING …) SELECT …`` write;
    - ``EXPLAIN`` is judged by what it explains (``EXPLAIN ANALYZE DELETE``
      runs the delete);
    - ``SELECT … INTO`` writes (a new table, or MySQL's ``INTO OUTFILE``);
    - a second statement after a ``;`` makes it a script, not a query;
    - a SQLite ``PRAGMA`` that assigns (``PRAGMA query_only = 0``) writes.

    Used to refuse writes in read-only data sources (403) before anything
    runs. It cannot see what a function does (``SELECT nextval(…)``): the
    read-only transaction those sources run in is the guarantee, and the
    database's refusal there is a 403 too (:func:`ahcore.db.errors.read_only_refusal`).
    """
    tokens = _tokens(sql)
    while tokens and tokens[-1] == ";":
        tokens.pop()
    if ";" in tokens:
        return False
    return _reads(tokens)


# A token is a lower-cased word, a punctuation character, or "" for a
# literal or a quoted name (never a keyword).
_TOKEN = re.compile(
    r"""
      (?P<skip>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<literal>'(?:[^']|'')*'?|"(?:[^"]|"")*"?|`(?:[^`]|``)*`?
                 |\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*|)\$.*?(?:\$(?P=tag)\$|\Z)
                 |\$\{[A-Za-z_][A-Za-z0-9_]*\}\$|[0-9][0-9A-Za-z_.]*)
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<other>.)
    """,
    re.DOTALL | re.VERBOSE,
)
_READ_WORDS = frozenset({"select", "values", "table", "show", "describe", "pragma"})
#: Words after EXPLAIN that are options, not the explained statement.
_EXPLAIN_OPTIONS = frozenset(
    {"analyze", "analyse", "verbose", "query", "plan", "extended", "partitions", "format"}
)


def _tokens(sql: str) -> list[str]:
    out: list[str] = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup if m.lastgroup != "tag" else "literal"
        if kind == "skip":
            continue
        if kind == "word":
            out.append(m.group().lower())
        elif kind == "other":
            out.append(m.group())
        else:
            out.append("")
    return out


def _close(tokens: list[str], i: int) -> int:
    """The index just past the ``)`` matching the ``(`` at ``tokens[i]``."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j] == "(":
            depth += 1
        elif tokens[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(tokens)


def _reads(tokens: list[str]) -> bool:
    """Whether the statement in ``tokens`` (no ``;``) only reads."""
    i = 0
    while i < len(tokens) and tokens[i] == "(":
        i += 1
    if i == len(tokens):
        return False
    word = tokens[i]
    if word == "with":
        return _cte_reads(tokens, i + 1)
    if word == "explain":
        j = i + 1
        while j < len(tokens) and tokens[j] in _EXPLAIN_OPTIONS:
            if tokens[j] == "format":  # MySQL's FORMAT=JSON, PostgreSQL's FORMAT JSON
                j += 2 if j + 1 < len(tokens) and tokens[j + 1] == "=" else 1
            j += 1
        if j < len(tokens) and tokens[j] == "(":  # PostgreSQL's (ANALYZE, …) options
            j = _close(tokens, j)
        rest = tokens[j:]
        # EXPLAIN tbl: MySQL's DESCRIBE.
        return len(rest) <= 1 or _reads(rest)
    if word not in _READ_WORDS:
        return False
    if word == "select":
        depth = 0
        for token in tokens[i:]:
            depth += (token == "(") - (token == ")")
            if depth <= 0 and token == "into":
                return False
    if word == "pragma":
        return "=" not in tokens
    return True


def _cte_reads(tokens: list[str], i: int) -> bool:
    """After ``WITH``: whether every body and the main statement only read."""
    if i < len(tokens) and tokens[i] == "recursive":
        i += 1
    while i < len(tokens):
        i += 1  # the name
        if i < len(tokens) and tokens[i] == "(":  # its column list
            i = _close(tokens, i)
        if i < len(tokens) and tokens[i] == "as":
            i += 1
        while i < len(tokens) and tokens[i] in ("not", "materialized"):
            i += 1
        if i >= len(tokens) or tokens[i] != "(":
            return False  # not a CTE this function understands: not a query
        end = _close(tokens, i)
        if not _reads(tokens[i + 1 : end - 1]):
            return False
        i = end
        # PostgreSQL's SEARCH … / CYCLE … clauses end at the next "," or statement.
        while i < len(tokens) and tokens[i] != "," and tokens[i] not in _STATEMENT_WORDS:
            i = _close(tokens, i) if tokens[i] == "(" else i + 1
        if i < len(tokens) and tokens[i] == ",":
            i += 1
            continue
        return _reads(tokens[i:])
    return False


#: Words that start the statement a ``WITH`` leads to.
_STATEMENT_WORDS = frozenset({"select", "values", "table", "insert", "update", "delete", "merge"})


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


#: The largest integer a request parameter such as ``page`` may be: a bigger
#: one would overflow the databases' 64-bit ``OFFSET`` (a 500) for a page
#: that cannot exist anyway.
MAX_INT_PARAM = 2**31 - 1


def parse_int(
    value: Any, name: str, default: int, *, minimum: int = 1, maximum: int | None = None
) -> int:
    """An integer request parameter (``page``, ``pagerows``) within its bounds, or 400.

    A page size is clamped by its caller; a page number gets ``maximum``
    (:data:`MAX_INT_PARAM`).
    """
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
    if maximum is not None and number > maximum:
        raise BadQuery(f"{name} must be at most {maximum}")
    return number


def page_window(ns: Mapping[str, Any], *, max_rows: int = MAX_PAGEROWS) -> tuple[int, int]:
    """``(limit, offset)`` from ``page`` (default 1) and ``pagerows`` (default 80, clamped)."""
    page = parse_int(ns.get("page"), "page", 1, maximum=MAX_INT_PARAM)
    rows = min(parse_int(ns.get("pagerows"), "pagerows", DEFAULT_PAGEROWS), max_rows)
    return rows, (page - 1) * rows


def limit_clause(limit: int, offset: int = 0) -> str:
    """``LIMIT``/``OFFSET`` with literal integers (already validated, never request text)."""
    if offset:
        return f" LIMIT {int(limit)} OFFSET {int(offset)}"
    return f" LIMIT {int(limit)}"
