"""Script names of ahserver 0.x (2019–2022) that old sites still call.

Behaviour read from ahserver 0.0.2 (2019), 0.2.11 and 0.3.4 (2022) and the
sqlor of those years; rebuilt on ahcore's data layer
(``site.pools.sqlorContext(name)``, ``sor.sqlExe``, ``sor.sqlPaging``,
``sor.C/R/U/D``), so every ``${name}$`` value is a bound parameter and every
table or column name comes from the schema. What the old code spliced into
SQL text (``$[name]$`` markers, ``sort``/``order`` text) is refused or
checked here.

- ``absurl(request, url)`` / ``absurl(url)``: ``url`` relative to the
  requested page, as a site path (``http(s)://`` URLs unchanged).
- ``runSQL``: ahserver 0.2+ ``await runSQL(dbname, sql, ns={}, sor=None)``;
  ahserver 0.0.x ``@runSQL`` on a function ``(dbname, NS, ...)`` returning a
  description ``{"sql_string": ..., "dataname": ...}``, then ``await
  f(dbname, NS, [callback=...], [sor=...])``. Records of a query are
  returned (and stored in ``NS[dataname]``, default ``"dummy"``, as sqlor
  did); another statement returns its row count. With ``callback=`` each
  record goes to the callback (read in batches, not all held) and the call
  returns ``[]``.
- ``runSQLIterator``: the decorator form of ``runSQL``, meant for ``callback=``.
- ``runSQLPaging``: the same two forms; ``{total, rows}`` by ``page``,
  ``rows`` (page size, default 10 as sqlor had it; ``pagerows`` wins), and
  ``sort`` (+ ``order``) or the description's ``sortfield``, checked
  against the query's columns.
- ``runSQLResultFields``: the same two forms; the query's result fields
  ``[{name, type}]``.
- ``CRUD(dbname, tablename, rows=10)``: sqlor's table object with ``await
  I()``, ``C(rec)``, ``R(filters=None, NS={})``, ``U(rec)``, ``D(rec)``; the
  primary key is ``id`` (ahserver's README rule for CRUD).
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from ahcore.api import (
    BadQuery,
    DictObject,
    SiteView,
    SQLor,
    current_context,
    is_query,
    parse_int,
)

Func = Callable[..., Any]

# sqlor's page size when a namespace names none.
SQLOR_ROWS = 10
_TEXT_MARKER = re.compile(r"\$\[[^\]]*\]\$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ------------------------------------------------------------------ absurl


def absurl(*args: Any) -> str:
    """``absurl(request, url)`` or ``absurl(url)``: ``url`` resolved against the requested page."""
    if len(args) == 2:
        request, url = args
    elif len(args) == 1:
        request, url = current_context().request, args[0]
    else:
        raise TypeError("absurl() takes (request, url) or (url)")
    return resolve_url(request.path, str(url))


def resolve_url(page: str, url: str) -> str:
    """``url`` relative to the site path ``page`` (``..`` never climbs above ``/``)."""
    if url.startswith(("http://", "https://")):
        return url
    path, sep, query = url.partition("?")
    if path.startswith("/"):
        joined = path
    else:
        folder = page if page.endswith("/") else page.rsplit("/", 1)[0] + "/"
        joined = folder + path
    parts: list[str] = []
    for part in joined.split("/")[1:]:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/" + "/".join(parts) + sep + query


# ------------------------------------------------------------------ SQL helpers


def sql_text(desc: Any, workdir: Path) -> str:
    """The SQL of a sqlor description (``sql_string`` or ``sql_file``) or of a plain string."""
    if isinstance(desc, str):
        sql = desc
    elif isinstance(desc, Mapping) and desc.get("sql_string"):
        sql = str(desc["sql_string"])
    elif isinstance(desc, Mapping) and desc.get("sql_file"):
        sql = (workdir / str(desc["sql_file"])).read_text(encoding="utf-8")
    else:
        raise TypeError("a SQL description needs 'sql_string' (or 'sql_file')")
    if _TEXT_MARKER.search(sql):
        raise ValueError(
            "$[name]$ markers spliced text into SQL in old sqlor and are not supported: "
            "use ${name}$, which binds the value as a parameter"
        )
    return sql


@contextlib.asynccontextmanager
async def _sor(site: SiteView, dbname: str, sor: SQLor | None) -> AsyncIterator[SQLor]:
    """The caller's ``sor`` if it gave one (its transaction), else a new one on ``dbname``."""
    if sor is not None:
        yield sor
        return
    async with site.pools.sqlorContext(dbname) as new:
        yield new


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _paging_ns(ns: Mapping[str, Any], desc: Any) -> dict[str, Any]:
    """sqlor's paging keys (``rows``, ``sort`` + ``order``, ``sortfield``) in ahcore's terms."""
    out = dict(ns)
    if out.get("pagerows") is None:
        out["pagerows"] = parse_int(ns.get("rows"), "rows", SQLOR_ROWS)
    sort = desc.get("sortfield") if isinstance(desc, Mapping) and desc.get("sortfield") else ns.get("sort")
    if isinstance(sort, str) and sort and " " not in sort.strip():
        order = str(ns.get("order") or "asc").lower()
        if order not in ("asc", "desc"):
            raise BadQuery("order must be 'asc' or 'desc'")
        sort = f"{sort.strip()} {order}"
    out["sort"] = sort or None
    return out


def _keywords_of(func: Func) -> set[str] | None:
    """The keyword names ``func`` accepts, or ``None`` when it takes ``**kw``."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


class OldSQL:
    """``runSQL`` & co. for one site: the direct (0.2+) and decorator (0.0.x) forms."""

    def __init__(self, site: SiteView) -> None:
        self.site = site

    # -- the work

    async def rows(
        self, dbname: str, desc: Any, ns: Any, sor: SQLor | None, callback: Func | None
    ) -> Any:
        sql = sql_text(desc, self.site.workdir)
        ns = {} if ns is None else ns
        async with _sor(self.site, dbname, sor) as s:
            if callback is not None and is_query(sql):
                sel = await s.select(sql, ns)
                async with s.stream(sel) as stream:
                    columns = stream.columns
                    async for batch in stream:
                        for row in batch:
                            await _maybe(callback(DictObject(zip(columns, row, strict=False))))
                return []
            result = await s.sqlExe(sql, ns)
        if isinstance(result, list):
            if isinstance(ns, MutableMapping):
                name = desc.get("dataname", "dummy") if isinstance(desc, Mapping) else "dummy"
                if name:
                    ns[name] = result
            if callback is not None:
                for rec in result:
                    await _maybe(callback(rec))
                return []
        return result

    async def paging(self, dbname: str, desc: Any, ns: Any, sor: SQLor | None) -> DictObject:
        sql = sql_text(desc, self.site.workdir)
        async with _sor(self.site, dbname, sor) as s:
            return await s.sqlPaging(sql, _paging_ns(ns or {}, desc))

    async def fields(self, dbname: str, desc: Any, ns: Any, sor: SQLor | None) -> list[DictObject]:
        sql = sql_text(desc, self.site.workdir)
        async with _sor(self.site, dbname, sor) as s:
            return [DictObject(name=c.name, type=c.type) for c in await s.describe(sql, ns or {})]

    # -- the two calling forms

    def _decorate(self, func: Func, run: Callable[..., Any]) -> Func:
        accepts = _keywords_of(func)

        async def wrapper(dbname: str, NS: Any = None, *args: Any, **kw: Any) -> Any:  # noqa: N803
            # sqlor handed ``sor``/``callback`` on to the description function
            # (declared ``**kw``); one that declares no such parameter gets none.
            given = kw if accepts is None else {k: v for k, v in kw.items() if k in accepts}
            desc = await _maybe(func(dbname, NS, *args, **given))
            return await run(dbname, desc, NS, kw.get("sor"), kw.get("callback"))

        wrapper.__name__ = getattr(func, "__name__", "sql")
        wrapper.__doc__ = getattr(func, "__doc__", None)
        return wrapper

    def runSQL(self, *args: Any, **kw: Any) -> Any:  # noqa: N802 - ahserver's name
        """``await runSQL(dbname, sql, ns={}, sor=None)``, or ``@runSQL`` (see the module)."""
        if len(args) == 1 and callable(args[0]) and not kw:
            return self._decorate(args[0], self.rows)
        return self._direct(self.rows, *args, **kw)

    def runSQLIterator(self, func: Func) -> Func:  # noqa: N802
        """``@runSQLIterator`` on a description function; call it with ``callback=``."""
        return self._decorate(func, self.rows)

    def runSQLPaging(self, *args: Any, **kw: Any) -> Any:  # noqa: N802
        """``await runSQLPaging(dbname, sql, ns={}, sor=None)``, or ``@runSQLPaging``."""
        if len(args) == 1 and callable(args[0]) and not kw:
            return self._decorate(args[0], lambda d, s, n, sor, _cb: self.paging(d, s, n, sor))
        return self._direct(lambda d, s, n, sor, _cb: self.paging(d, s, n, sor), *args, **kw)

    def runSQLResultFields(self, *args: Any, **kw: Any) -> Any:  # noqa: N802
        """``await runSQLResultFields(dbname, sql, ns={})``, or ``@runSQLResultFields``."""
        if len(args) == 1 and callable(args[0]) and not kw:
            return self._decorate(args[0], lambda d, s, n, sor, _cb: self.fields(d, s, n, sor))
        return self._direct(lambda d, s, n, sor, _cb: self.fields(d, s, n, sor), *args, **kw)

    @staticmethod
    def _direct(
        run: Callable[..., Any],
        dbname: str,
        sql: Any,
        ns: Any = None,
        sor: SQLor | None = None,
        callback: Func | None = None,
    ) -> Any:
        return run(dbname, sql, ns, sor, callback)


# ------------------------------------------------------------------ CRUD


class DatabaseNotfound(LookupError):
    """sqlor's error for a database the config does not name."""


class CRUD:
    """sqlor's ``CRUD(dbname, tablename, rows=10)`` over one site's databases.

    Each method opens its own transaction unless given ``sor=`` (an open
    ``sqlorContext``). Row filters are equality on known columns; sqlor's
    ``filters`` (DBFilter JSON) are not supported and raise ``BadQuery``.
    """

    def __init__(self, site: SiteView, dbname: str, tablename: str, rows: int = SQLOR_ROWS) -> None:
        if dbname not in site.pools:
            raise DatabaseNotfound(f"{dbname} not found")
        if not isinstance(tablename, str) or not _NAME.fullmatch(tablename):
            raise BadQuery(f"bad table name {str(tablename)[:60]!r}")
        self.site = site
        self.dbname = dbname
        self.tablename = tablename
        self.rows = rows

    async def I(self, **kw: Any) -> list[DictObject]:  # noqa: E743 - sqlor's name
        """The table's fields: ``[{name, type, primarykey?}]`` (``id`` is the primary key)."""
        async with _sor(self.site, self.dbname, kw.get("sor")) as s:
            probe = f"SELECT * FROM {s.dialect.ident(self.tablename)}"
            try:
                columns = await s.describe(probe, {})
            except Exception as exc:
                raise BadQuery(f"no such table {self.tablename!r}") from exc
        fields = []
        for c in columns:
            field = DictObject(name=c.name.lower(), type=c.type)
            if c.name.lower() == "id":
                field.primarykey = True
            fields.append(field)
        return fields

    async def C(self, rec: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
        """Insert ``rec``; a missing ``id`` gets a new one. Returns ``{"id": ...}``."""
        data = {str(k).lower(): v for k, v in rec.items()}
        if not data.get("id"):
            import uuid

            data["id"] = uuid.uuid4().hex
        async with _sor(self.site, self.dbname, kw.get("sor")) as s:
            await s.C(self.tablename, data)
        return {"id": data["id"]}

    async def R(
        self, filters: Any = None, NS: Mapping[str, Any] | None = None, **kw: Any  # noqa: N803
    ) -> Any:
        """Rows equal to ``NS``'s known columns; with ``page`` in ``NS``: ``{total, rows}``."""
        if filters is not None:
            raise BadQuery("CRUD.R(filters=...) (DBFilter) is not supported; pass NS values")
        ns = dict(NS or {})
        if ns.get("__id") is not None:
            ns["id"] = ns.pop("__id")
            ns.pop("page", None)
        async with _sor(self.site, self.dbname, kw.get("sor")) as s:
            if ns.get("page"):
                paging = _paging_ns(ns, {})
                if ns.get("rows") is None and ns.get("pagerows") is None:
                    paging["pagerows"] = self.rows
                paging["sort"] = paging["sort"] or "id"
                paging.pop("rows", None)
                return await s.RP(self.tablename, paging)
            ns.pop("rows", None)
            return await s.R(self.tablename, ns)

    async def U(self, rec: Mapping[str, Any], **kw: Any) -> Mapping[str, Any]:
        """Update the row whose ``id`` is ``rec["id"]`` from the other known keys."""
        async with _sor(self.site, self.dbname, kw.get("sor")) as s:
            await s.U(self.tablename, rec)
        return rec

    async def D(self, rec: Mapping[str, Any], **kw: Any) -> Mapping[str, Any]:
        """Delete the row whose ``id`` is ``rec["id"]``."""
        async with _sor(self.site, self.dbname, kw.get("sor")) as s:
            await s.D(self.tablename, rec)
        return rec


def _may_return_awaitable(name: str, call: Func, impl: Func) -> Func:
    """``call`` as a function named ``name`` that says it may give an awaitable.

    ``runSQL(dbname, sql)`` gives a coroutine, ``runSQL(func)`` a function:
    a plain function either way, which template analysis (ahcore-tmpl
    renders a template synchronously when it provably meets no awaitable)
    would take for one that never gives an awaitable. ``__wrapped__``
    pointing at the async implementation is what it follows (as for any
    ``functools.wraps`` wrapper), so templates calling these render async.
    """

    def function(*args: Any, **kw: Any) -> Any:
        return call(*args, **kw)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = call.__doc__
    function.__wrapped__ = impl  # type: ignore[attr-defined]
    return function


def old_names(site: SiteView) -> dict[str, Any]:
    """The names for a site's script namespace (the compat plugin's ``env_globals``)."""
    sql = OldSQL(site)

    def crud(dbname: str, tablename: str, rows: int = SQLOR_ROWS) -> CRUD:
        return CRUD(site, dbname, tablename, rows)

    return {
        "absurl": absurl,
        "runSQL": _may_return_awaitable("runSQL", sql.runSQL, sql.rows),
        "runSQLIterator": sql.runSQLIterator,
        "runSQLPaging": _may_return_awaitable("runSQLPaging", sql.runSQLPaging, sql.paging),
        "runSQLResultFields": _may_return_awaitable(
            "runSQLResultFields", sql.runSQLResultFields, sql.fields
        ),
        "CRUD": crud,
    }
