"""The benchmark site: the same content for ahcore and for the plain server.

``build_site(root, with_sqlds)`` writes ``root/conf/config.json`` and
``root/wwwroot/...``; both servers read the files from there, so they serve
byte-for-byte the same inputs.
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
    processors = [[".dspy", "dspy"], [".tmpl", "tmpl"], [".md", "md"], [".xlsxds", "xlsxds"]]
    plugins: dict[str, object] = {"dspy": True, "tmpl": True, "md": True, "xlsxds": True}
    config: dict[str, object] = {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "host": "127.0.0.1",
            "cookie_secret": "b" * 32,
            "processors": processors,
        },
        # The plain server has no access log (aiohttp's logger is not
        # configured there); ahcore's is switched off the same way.
        "logger": {"levelname": "warning"},
        "plugins": plugins,
    }
    if with_sqlds:
        db = root / "bench.db"
        write_database(db)
        config["databases"] = {
            "db1": {"driver": "aiosqlite", "kwargs": {"dbname": str(db)}, "maxconn": 4}
        }
        plugins["sqlite"] = True
        plugins["sqlds"] = True
        processors.append([".sqlds", "sqlds"])
        (www / "items.sqlds").write_text(
            json.dumps({"sqldesc": {"sql_string": SQL, "db": "db1"}}), encoding="utf-8"
        )
    (root / "conf" / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return root
