"""The demo site renders every page (needs every plugin: skipped in the kernel-only session)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"
NEEDED = ("ahcore_dspy", "ahcore_tmpl", "ahcore_md", "ahcore_xlsxds", "ahcore_sqlds", "ahcore_rbac")
missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"demo needs plugins: {missing}")


@pytest.fixture
async def demo(tmp_path, ahcore_client):
    site = tmp_path / "demo"
    shutil.copytree(DEMO, site, ignore=shutil.ignore_patterns("*.db", ".data", "files", ".session_secret"))
    subprocess.run([sys.executable, str(site / "seed.py")], check=True, capture_output=True)
    return await ahcore_client(site)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("/", "Welcome to Acme Parts"),
        ("/about.md", "<table>"),
        ("/contact.tmpl", "<form"),
        ("/products/", "list.sqlds"),
        ("/prices.tmpl", "Cordless drill"),
        ("/static/site.css", "--accent"),
        ("/products/products.tmpl.js", '"EUR"'),
    ],
)
async def test_every_page_renders(demo, url, expected):
    # As a browser opens them (markdown is served as source to fetch() clients).
    r = await demo.get(url, headers={"Accept": "text/html,*/*;q=0.8", "Sec-Fetch-Dest": "document"})
    assert r.status == 200, (url, await r.text())
    assert expected in await r.text()


async def test_api_and_data_sources(demo):
    data = await (await demo.get("/api/products.dspy", params={"sort": "price desc", "pagerows": "3"})).json()
    assert data["total"] == 14 and [p["name"] for p in data["rows"]][0] == "Cordless drill"
    page = await (await demo.get("/products/list.sqlds", params={"action": "pagingdata", "rows": "5", "sort": "price"})).json()
    assert page["total"] == 14 and len(page["rows"]) == 5
    prices = await (await demo.get("/prices.xlsxds")).json()
    assert prices[0]["sku"] == "P01"
    assert (await demo.post("/api/products.dspy", data={"name": "x"})).status == 401


async def test_language_follows_accept_language(demo):
    r = await demo.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "欢迎" in await r.text()


async def test_contact_form_stores_and_redirects(demo):
    r = await demo.post("/api/contact.dspy", data={"name": "Ann", "message": "Hi"}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].endswith("/contact.tmpl?sent=1")
    assert (await demo.post("/api/contact.dspy", data={"name": ""})).status == 400


async def test_login_page_and_admin_only_page(demo):
    assert (await demo.get("/admin/", allow_redirects=False)).status == 401
    r = await demo.post("/api/login.dspy", data={"username": "admin", "password": "wrong"}, allow_redirects=False)
    assert r.status == 302 and "failed=" in r.headers["Location"]
    assert (await demo.get("/admin/")).status == 401
    r = await demo.post("/api/login.dspy", data={"username": "admin", "password": "admin-demo"}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].endswith("/admin/")
    r = await demo.get("/admin/")
    body = await r.text()
    assert r.status == 200 and "demo.admin" in body and "admin" in body
    await demo.post("/api/logout.dspy", allow_redirects=False)
    assert (await demo.get("/admin/")).status == 401
