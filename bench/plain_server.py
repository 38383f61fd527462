"""Plain aiohttp doing by hand what the benchmark site asks of ahcore.

``python bench/plain_server.py SITE PORT`` serves, from SITE/wwwroot:

- ``/static.html``  web.FileResponse of the same file
- ``/data.dspy``    the same dict as JSON (web.json_response)
- ``/page.tmpl``    the same Jinja2 template, compiled once, rendered per request
- ``/page.md``      the same markdown rendered per request with mistune
- ``/book.xlsxds``  the same workbook parsed per request with openpyxl
- ``/items.sqlds``  the same SQLite query (20 rows) through one aiosqlite connection
- ``/sqlexe.dspy``  the same one-row query, ``id`` bound from the query string,
                    on that connection
- ``/secure/data.dspy``  the session cookie ahcore issued, decrypted with
                    aiohttp-session's EncryptedCookieStorage (same key, same
                    cookie), the login ticket's expiry checked, the user's
                    roles and the path's rule looked up in dicts (from
                    SITE/auth.json, written by the bench); 401/403 otherwise,
                    then the same JSON as ``/data.dspy``

uvloop is used when installed, as ahcore does. No access log; sessions only
on ``/secure/``.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))
from benchsite import COOKIE_SECRET, PAYLOAD, SQL, SQLEXE_SQL  # noqa: E402


def make_app(root: Path) -> web.Application:
    import jinja2
    import mistune
    import openpyxl

    www = root / "wwwroot"
    static = www / "static.html"
    env = jinja2.Environment(autoescape=True)
    template = env.from_string((www / "page.tmpl").read_text("utf-8"))
    md_source = (www / "page.md").read_text("utf-8")
    markdown = mistune.create_markdown(
        escape=True, plugins=["table", "strikethrough"]
    )
    book = www / ".data" / "book.xlsx"

    async def h_static(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(static)

    async def h_json(request: web.Request) -> web.StreamResponse:
        return web.json_response(PAYLOAD)

    async def h_tmpl(request: web.Request) -> web.StreamResponse:
        body = template.render(params_kw=dict(request.query))
        return web.Response(text=body, content_type="text/html")

    async def h_md(request: web.Request) -> web.StreamResponse:
        body = markdown(md_source)
        page = (
            '<!doctype html>\n<html><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>'
            + html.escape("Benchmark page")
            + "</title></head><body>\n"
            + str(body)
            + "</body></html>\n"
        )
        return web.Response(text=page, content_type="text/html")

    async def h_xlsx(request: web.Request) -> web.StreamResponse:
        wb = openpyxl.load_workbook(book, read_only=True, data_only=True)
        try:
            rows = wb["Sheet1"].iter_rows(values_only=True)
            names = next(rows)
            next(rows)  # the type row
            data = [dict(zip(names, row, strict=False)) for row in rows if any(v is not None for v in row)]
        finally:
            wb.close()
        return web.json_response(data)

    app = web.Application()
    app.router.add_get("/static.html", h_static)
    app.router.add_get("/data.dspy", h_json)
    app.router.add_get("/page.tmpl", h_tmpl)
    app.router.add_get("/page.md", h_md)
    app.router.add_get("/book.xlsxds", h_xlsx)

    db = root / "bench.db"
    if db.exists():
        import aiosqlite

        async def open_db(app: web.Application) -> None:
            app["db"] = await aiosqlite.connect(db)

        async def close_db(app: web.Application) -> None:
            await app["db"].close()

        async def h_sql(request: web.Request) -> web.StreamResponse:
            async with request.app["db"].execute(SQL) as cur:
                names = [d[0] for d in cur.description]
                rows = await cur.fetchall()
            return web.json_response([dict(zip(names, r, strict=True)) for r in rows])

        sql_one = SQLEXE_SQL.replace("${id}$", "?")

        async def h_sqlexe(request: web.Request) -> web.StreamResponse:
            try:
                ident = int(request.query["id"])
            except (KeyError, ValueError):
                raise web.HTTPBadRequest() from None
            async with request.app["db"].execute(sql_one, (ident,)) as cur:
                names = [d[0] for d in cur.description]
                rows = await cur.fetchall()
            return web.json_response([dict(zip(names, r, strict=True)) for r in rows])

        app.on_startup.append(open_db)
        app.on_cleanup.append(close_db)
        app.router.add_get("/items.sqlds", h_sql)
        app.router.add_get("/sqlexe.dspy", h_sqlexe)

    auth = root / "auth.json"
    if auth.exists():
        add_secure(app, json.loads(auth.read_text("utf-8")))
    return app


def add_secure(app: web.Application, auth: dict) -> None:
    """``/secure/data.dspy``: what a hand-written aiohttp app does for a logged-in, role-checked page."""
    from aiohttp_session.cookie_storage import EncryptedCookieStorage

    max_time = int(auth["session_max_time"])
    storage = EncryptedCookieStorage(
        hashlib.sha256(COOKIE_SECRET.encode("utf-8")).digest(),
        cookie_name=auth["cookie_name"], max_age=max_time, httponly=True, samesite="Lax",
    )
    user_roles = {user: frozenset(roles) for user, roles in auth["user_roles"].items()}
    # path prefix → roles that may pass, longest prefix first
    rules = sorted(((prefix, frozenset(roles)) for prefix, roles in auth["rules"].items()),
                   key=lambda r: -len(r[0]))

    async def h_secure(request: web.Request) -> web.StreamResponse:
        session = await storage.load_session(request)
        ticket = session.get(auth["ticket_key"])
        user = None
        if isinstance(ticket, dict) and time.time() - ticket.get("issued", 0) <= max_time:
            user = ticket.get("userid")
        path = request.path
        for prefix, allowed in rules:
            if path.startswith(prefix):
                if user is None:
                    raise web.HTTPUnauthorized()
                if not allowed & user_roles.get(user, frozenset()):
                    raise web.HTTPForbidden()
                break
        return web.json_response(PAYLOAD)

    app.router.add_get("/secure/data.dspy", h_secure)


def main() -> None:
    root, port = Path(sys.argv[1]), int(sys.argv[2])
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    web.run_app(make_app(root), host="127.0.0.1", port=port, access_log=None,
                print=lambda m: print(f"plain: {m}", flush=True))


if __name__ == "__main__":
    main()
