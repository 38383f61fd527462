"""Create the demo's SQLite database and spreadsheet (idempotent; run by `nox -s demo`)."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

HERE = Path(__file__).resolve().parent

PRODUCTS = [
    ("p01", "Claw hammer", "tools", 14.9, 40),
    ("p02", "Cordless drill", "power tools", 89.0, 12),
    ("p03", "Wood screws 4x40 (200)", "fasteners", 6.5, 300),
    ("p04", "Spirit level 60 cm", "tools", 19.9, 25),
    ("p05", "Angle grinder", "power tools", 64.0, 8),
    ("p06", "Wall plugs 8 mm (100)", "fasteners", 4.2, 500),
    ("p07", "Tape measure 5 m", "tools", 7.9, 60),
    ("p08", "Jigsaw", "power tools", 72.5, 10),
    ("p09", "Hex bolts M8 (50)", "fasteners", 8.8, 150),
    ("p10", "Utility knife", "tools", 5.5, 80),
    ("p11", "Random orbit sander", "power tools", 58.0, 9),
    ("p12", "Safety glasses", "safety", 9.9, 45),
    ("p13", "Work gloves", "safety", 6.9, 70),
    ("p14", "Ear defenders", "safety", 15.5, 20),
]


def seed_database(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "create table if not exists products (id text primary key, name text not null, "
            "category text not null, price real not null, stock integer not null default 0)"
        )
        con.execute(
            "create table if not exists messages (id text primary key, name text, "
            "message text, created text)"
        )
        con.executemany("insert or ignore into products values (?, ?, ?, ?, ?)", PRODUCTS)
    con.close()


def seed_workbook(path: Path) -> None:
    if path.exists():
        return
    from openpyxl import Workbook

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "Prices"
    ws.append(["SKU", "Item", "Unit price", "Valid from"])
    ws.append(["sku", "item", "price", "valid_from"])
    ws.append(["str", "str", "float", "date"])
    for sku, name, _, price, _ in PRODUCTS:
        ws.append([sku.upper(), name, price, datetime.date(2026, 1, 1)])
    wb.save(path)


def accounts_seeded(db: Path) -> bool:
    """Whether the demo's administrator exists and may reach /admin/ (a previous run made them)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = con.execute(
            "select count(*) from users u join userrole ur on ur.userid = u.id "
            "join rolepermission rp on rp.roleid = ur.roleid "
            "join permission p on p.id = rp.permid "
            "where u.username = 'admin' and p.path = '/admin/**'"
        ).fetchone()
    except sqlite3.Error:  # no rbac tables yet
        return False
    finally:
        con.close()
    return bool(row and row[0])


def seed_accounts(db: Path) -> None:
    """An administrator for the demo, through the rbac plugin's own CLI.

    Skipped when a previous run made it: each command starts the whole
    site, and the quick start's re-run should be quick.
    """
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("ahcore_rbac") is None or accounts_seeded(db):
        return
    for args in (
        ["addrole", "demo", "admin"],
        ["adduser", "admin", "--password", "admin-demo", "--orgtype", "demo"],
        ["grant-role", "admin", "demo.admin"],
        ["grant-perm", "demo.admin", "/admin/**"],
    ):
        subprocess.run(
            [sys.executable, "-m", "ahcore_rbac", "-w", str(HERE), *args],
            check=True,
            capture_output=True,
        )


if __name__ == "__main__":
    seed_database(HERE / "data" / "demo.db")
    seed_workbook(HERE / "wwwroot" / ".data" / "prices.xlsx")
    seed_accounts(HERE / "data" / "demo.db")
    print(f"demo data ready in {HERE}")
