"""The benchmark site: the same content for ahcore and for the plain server.

``build_site(root, with_sqlds)`` writes ``root/conf/config.json``,
``root/wwwroot/...`` and ``root/bench.db``; both servers read the files from
there, so they serve byte-for-byte the same inputs. That site is configured
as real ahserver sites are, ``"logger": {"levelname": "info", "logfile": ...}``,
so ahcore writes an access line per request (to ``root/logs/site.log``).

``build_quiet_site`` is the same site at ``warning`` (no access log), for
the cost of the log. ``build_rbac_site`` adds an ahcore site folder over
the same ``wwwroot`` with every plugin enabled, ahcore-rbac among them, and
``/secure/**`` protected. ``build_ahserver_site``, ``build_datasette_site``
and ``build_starlette_site`` prepare the same content for the optional
``--compare`` servers.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

# The dict a .dspy script returns and the plain handler serialises.
PAYLOAD = {
    "hello": "world",
    "numbers": list(range(20)),
    "nested": {"a": 1, "b": [True, False, None], "c": "text " * 4},
}

DSPY = "return " + repr(PAYLOAD) + "\n"

# A page-sized template: a loop, a filter, escaping, one request parameter.
TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body>
<h1>Hello {{ params_kw.name or "visitor" }}</h1>
<table>
{% for i in range(40) %}<tr class="{{ loop.cycle('odd', 'even') }}"><td>{{ i }}</td>\
<td>{{ ("item %d" % i) | upper }}</td><td>{{ "<b>%d</b>" % (i * i) }}</td></tr>
{% endfor %}</table>
</body></html>
"""
TEMPLATE_TITLE = "Benchmark page"

MARKDOWN = "# Benchmark page\n\n" + "\n\n".join(
    f"## Section {i}\n\nSome *emphasis*, **strong** text, `code`, a [link](page{i}.html) "
    f"and an [absolute one](https://example.org/{i}).\n\n"
    f"- item one\n- item two\n- item three\n\n"
    f"| a | b |\n|---|---|\n| {i} | {i * 2} |\n\n"
    f"```python\nprint({i})\n```"
    for i in range(12)
) + "\n"

XLSX_ROWS = 200
SQL_ROWS = 1000
SQL_PAGE = 20
SQL = "select id, name, price, qty from items order by id limit 20"

# One sqlExe with a bound parameter, in ahserver's idiom (get_sor_context on the
# request's run namespace). ahserver's README spells it the same way.
SQLEXE_SQL = "select id, name, price, qty from items where id = ${id}$"
SQLEXE_ID = 7
DSPY_SQLEXE = (
    "async with get_sor_context(request._run_ns, 'db1') as sor:\n"
    f"    rows = await sor.sqlExe({SQLEXE_SQL!r}, {{'id': int(params_kw.id)}})\n"
    "return rows\n"
)

# The logged-in path: /secure/** is granted to one role, held by one user.
AUTH_USER = "bench"
AUTH_PASSWORD = "bench-password-1"
AUTH_ORGTYPE = "bench"
AUTH_ROLE = "bench.user"
AUTH_RULE = "/secure/**"
COOKIE_SECRET = "b" * 32
# Long enough that no ticket is reissued (one Set-Cookie per request) during a run.
SESSION_MAX_TIME = 7 * 24 * 3600
SESSION_REISSUE_TIME = 24 * 3600


def write_workbook(path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["id", "name", "price", "qty", "note"])
    ws.append(["int", "str", "float", "int", "str"])
    for i in range(XLSX_ROWS):
        ws.append([i, f"name {i}", i * 1.25, i % 17, f"note for row {i}"])
    wb.save(path)


def write_database(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("create table items (id integer primary key, name text, price real, qty integer)")
    con.executemany(
        "insert into items values (?, ?, ?, ?)",
        [(i, f"name {i}", i * 0.5, i % 13) for i in range(SQL_ROWS)],
    )
    con.commit()
    con.close()


def build_site(root: Path, with_sqlds: bool) -> Path:
    www = root / "wwwroot"
    (root / "conf").mkdir(parents=True, exist_ok=True)
    www.mkdir(parents=True, exist_ok=True)
    (www / "static.html").write_bytes(
        b"<!doctype html><title>static</title>\n" + b"<p>static benchmark body</p>\n" * 150
    )
    (www / "data.dspy").write_text(DSPY, encoding="utf-8")
    (www / "sqlexe.dspy").write_text(DSPY_SQLEXE, encoding="utf-8")
    (www / "secure").mkdir(exist_ok=True)
    (www / "secure" / "data.dspy").write_text(DSPY, encoding="utf-8")
    (www / "page.tmpl").write_text(TEMPLATE.replace("{{ title }}", TEMPLATE_TITLE), "utf-8")
    (www / "page.md").write_text(MARKDOWN, encoding="utf-8")
    (www / ".data").mkdir(exist_ok=True)
    write_workbook(www / ".data" / "book.xlsx")
    (www / "book.xlsxds").write_text(
        json.dumps(
            {"xlsxfile": "./.data/book.xlsx", "data_sheet": "Sheet1", "name_at": 1,
             "datatype_at": 2, "data_from": 3}
        ),
        encoding="utf-8",
    )
    db = root / "bench.db"
    write_database(db)
    if with_sqlds:
        (www / "items.sqlds").write_text(
            json.dumps({"sqldesc": {"sql_string": SQL, "db": "db1"}}), encoding="utf-8"
        )
    config = site_config(www, db, with_sqlds, logfile=root / "logs" / "site.log")
    (root / "conf" / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return root


def site_config(www: Path, db: Path, with_sqlds: bool, level: str = "info",
                logfile: Path | None = None) -> dict[str, object]:
    """The site's config; ``level`` ``info`` (as real sites) logs every request."""
    processors = [[".dspy", "dspy"], [".tmpl", "tmpl"], [".md", "md"], [".xlsxds", "xlsxds"]]
    plugins: dict[str, object] = {
        "dspy": True, "tmpl": True, "md": True, "xlsxds": True, "sqlite": True,
    }
    if with_sqlds:
        plugins["sqlds"] = True
        processors.append([".sqlds", "sqlds"])
    return {
        "website": {
            "paths": [[str(www), ""]],
            "host": "127.0.0.1",
            "cookie_secret": COOKIE_SECRET,
            "processors": processors,
        },
        # The headline: an access line per request, as on a real ahserver
        # site, while the plain server writes none (SPEC §12).
        "logger": {"levelname": level, **({"logfile": str(logfile)} if logfile else {})},
        "plugins": plugins,
        "databases": {
            "db1": {"driver": "aiosqlite", "kwargs": {"dbname": str(db)}, "maxconn": 4}
        },
    }


def build_quiet_site(root: Path, site: Path, with_sqlds: bool) -> Path:
    """``site`` again (same wwwroot and database) at ``warning``: no access log."""
    (root / "conf").mkdir(parents=True, exist_ok=True)
    config = site_config(site / "wwwroot", site / "bench.db", with_sqlds, level="warning")
    (root / "conf" / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return root


def build_rbac_site(root: Path, site: Path, with_sqlds: bool) -> Path:
    """A second ahcore site over ``site``'s wwwroot: all plugins, rbac guarding /secure/**.

    The user, role and rule are added with ahcore-rbac's CLI by the caller
    (``python -m ahcore_rbac -w ROOT ...``), as an operator would.
    """
    (root / "conf").mkdir(parents=True, exist_ok=True)
    config = site_config(site / "wwwroot", site / "bench.db", with_sqlds,
                         logfile=root / "logs" / "site.log")
    plugins = config["plugins"]
    assert isinstance(plugins, dict)
    # ahcore-rbac denies what no rule covers: /secure/** is granted by the
    # caller, and /static.html (the readiness probe) is public.
    plugins["rbac"] = {"db": "rbac", "cache_ttl": 60, "public": ["/static.html"]}
    databases = config["databases"]
    assert isinstance(databases, dict)
    databases["rbac"] = {"driver": "sqlite", "kwargs": {"dbname": str(root / "rbac.db")}}
    website = config["website"]
    assert isinstance(website, dict)
    website["session_max_time"] = SESSION_MAX_TIME
    website["session_reissue_time"] = SESSION_REISSUE_TIME
    (root / "conf" / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return root


# ahserver 1.2.0 is started by a script calling ahserver.webapp.webapp(init).
# Two adaptations, both outside ahserver's own code:
# - sqlor 2.x (the only line on the package index that ahserver 1.2.0 runs
#   with) imports ``sqlor.ddl_template_sqlite``, a module its wheel does not
#   ship, from its SQLite driver; the shim provides it (the DDL template is
#   never used by the bench) and the import registers the ``sqlite`` driver;
# - get_sor_context(env, name) maps a module name to a database through
#   env.get_module_dbname, which a site's init() defines.
AHSERVER_LAUNCHER = """\
import sys
import types

import sqlor.ddl_template_sqlite3 as _ddl

_shim = types.ModuleType("sqlor.ddl_template_sqlite")
_shim.sqlite_ddl_tmpl = _ddl.sqlite3_ddl_tmpl
sys.modules["sqlor.ddl_template_sqlite"] = _shim
import sqlor.sqliteor  # noqa: E402,F401  registers the "sqlite" driver

from ahserver.serverenv import ServerEnv  # noqa: E402
from ahserver.webapp import webapp  # noqa: E402


def init():
    ServerEnv().get_module_dbname = lambda name: name


if __name__ == "__main__":
    webapp(init)
"""


def build_ahserver_site(root: Path, site: Path, with_sqlds: bool) -> Path:
    """An ahserver 1.2.0 workdir over ``site``'s wwwroot and database (``python ah.py -w ROOT``)."""
    (root / "conf").mkdir(parents=True, exist_ok=True)
    # At warning, as its column has always been measured (no per-request log).
    config = site_config(site / "wwwroot", site / "bench.db", with_sqlds, level="warning")
    config.pop("plugins")
    config["databases"] = {"db1": {"driver": "sqlite", "kwargs": {"path": str(site / "bench.db")}}}
    website = config["website"]
    assert isinstance(website, dict)
    website["coding"] = "utf-8"
    (root / "conf" / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (root / "ah.py").write_text(AHSERVER_LAUNCHER, encoding="utf-8")
    return root


# Datasette serves bench.db (as database "bench") with the same two queries
# as canned queries: /bench/page20.json?_shape=array and /bench/one.json?id=7&_shape=array.
DATASETTE_PAGE = "/bench/page20.json?_shape=array"
DATASETTE_ONE = f"/bench/one.json?id={SQLEXE_ID}&_shape=array"
DATASETTE_LAUNCHER = """\
import asyncio
import json
import sys

import uvicorn
from datasette.app import Datasette

db, metadata, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(metadata, encoding="utf-8") as fh:
    ds = Datasette([db], metadata=json.load(fh))
asyncio.run(ds.invoke_startup())
# No access log, like the other servers.
uvicorn.run(ds.app(), host="127.0.0.1", port=port, log_level="warning", access_log=False,
            lifespan="on", workers=1)
"""


def build_datasette_site(root: Path, site: Path) -> tuple[Path, Path, Path]:
    """(launcher, database, metadata) for Datasette serving ``site``'s database."""
    root.mkdir(parents=True, exist_ok=True)
    db = root / "bench.db"
    db.write_bytes((site / "bench.db").read_bytes())
    metadata = root / "metadata.json"
    metadata.write_text(json.dumps({"databases": {"bench": {"queries": {
        "page20": SQL,
        "one": SQLEXE_SQL.replace("${id}$", ":id"),
    }}}}), encoding="utf-8")
    launcher = root / "ds_serve.py"
    launcher.write_text(DATASETTE_LAUNCHER, encoding="utf-8")
    return launcher, db, metadata


# A Starlette app on uvicorn (uvloop and httptools), what a user might write
# for the same two things: the .dspy payload from a route (JSONResponse) and
# the static file from StaticFiles over the same wwwroot. No access log, like
# the plain server and Datasette.
STARLETTE_LAUNCHER = """\
import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

www, payload, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(payload, encoding="utf-8") as fh:
    PAYLOAD = json.load(fh)


async def data(request):
    return JSONResponse(PAYLOAD)


app = Starlette(routes=[Route("/data.dspy", data), Mount("/", StaticFiles(directory=www))])
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
            lifespan="off", workers=1)
"""


def build_starlette_site(root: Path, site: Path) -> tuple[Path, Path, Path]:
    """(launcher, wwwroot, payload file) for the Starlette app over ``site``'s wwwroot."""
    root.mkdir(parents=True, exist_ok=True)
    payload = root / "payload.json"
    payload.write_text(json.dumps(PAYLOAD), encoding="utf-8")
    launcher = root / "starlette_serve.py"
    launcher.write_text(STARLETTE_LAUNCHER, encoding="utf-8")
    return launcher, site / "wwwroot", payload
