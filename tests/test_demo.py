"""The demo site renders every page (needs every plugin: skipped in the kernel-only session)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from yarl import URL

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
    body = await r.text()
    assert "欢迎" in body and '<html lang="zh-CN">' in body
    assert "基于 SQLite 的产品目录" in body  # the cards too, not only the headings
    for english in ("A SQLite-backed catalogue", "Read from a spreadsheet", "Served by ahcore"):
        assert english not in body
    body = await (await demo.get("/")).text()
    assert '<html lang="en">' in body and "A SQLite-backed catalogue" in body


async def test_partials_are_not_pages(demo):
    # /_layout_md.tmpl is public (the markdown layout is path_call-ed, which
    # checks access): 404, a partial. /_layout.tmpl is only included, so no
    # rbac rule opens it: denied (401) before it could be found.
    for url, status in (("/_layout.tmpl", 401), ("/_layout_md.tmpl", 404)):
        r = await demo.get(url)
        assert r.status == status, url
        assert "<nav>" not in await r.text()
    # ...but every page is still built from them.
    assert '<nav>' in await (await demo.get("/about.md", headers={"Accept": "text/html"})).text()


async def test_a_browser_gets_the_data_sources_as_tables(demo):
    browser = {"Sec-Fetch-Dest": "document", "Accept": "text/html"}
    for url, text in (("/products/list.sqlds", "Cordless drill"), ("/prices.xlsxds", "P01")):
        r = await demo.get(url, headers=browser)
        body = await r.text()
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html"), url
        assert "<table>" in body and text in body and "_format=json" in body


async def test_contact_form_stores_and_redirects(demo):
    r = await demo.post("/api/contact.dspy", data={"name": "Ann", "message": "Hi"}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].endswith("/contact.tmpl?sent=1")
    assert (await demo.post("/api/contact.dspy", data={"name": ""})).status == 400


def account(body: str) -> str:
    """The header's account corner of a demo page."""
    return body.split('<div class="account">', 1)[1].split("</div>", 1)[0]


async def test_login_page_and_admin_only_page(demo):
    assert (await demo.get("/admin/", allow_redirects=False)).status == 401
    assert "Log in" in account(await (await demo.get("/")).text())
    r = await demo.post("/api/login.dspy", data={"username": "admin", "password": "wrong"}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].endswith("/login.tmpl?failed=wrong")
    body = await (await demo.get(URL(r.headers["Location"]).path_qs)).text()
    assert '<p class="notice error" role="alert">Wrong user name or password.</p>' in body
    assert (await demo.get("/admin/")).status == 401
    r = await demo.post("/api/login.dspy", data={"username": "admin", "password": "admin-demo"}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].endswith("/admin/")
    r = await demo.get("/admin/")
    body = await r.text()
    assert r.status == 200 and "demo.admin" in body and "admin" in body
    # Logged in, every page's header says who, and offers to log out (a POST).
    corner = account(await (await demo.get("/")).text())
    assert "admin" in corner and "Log out" in corner and "Log in" not in corner
    assert 'method="post" action="/api/logout.dspy"' in corner
    # A GET (a link, another site's page) cannot log the visitor out (SPEC §14: GET is safe).
    assert (await demo.get("/api/logout.dspy", allow_redirects=False)).status == 405
    assert (await demo.get("/admin/")).status == 200
    await demo.post("/api/logout.dspy", allow_redirects=False)
    assert (await demo.get("/admin/")).status == 401
    assert "Log in" in account(await (await demo.get("/")).text())


async def test_the_login_message_is_the_sites_own(demo):
    """A link cannot make the login page say what its author wants."""
    body = await (await demo.get("/login.tmpl", params={"failed": "Call +1 555 0100 now"})).text()
    assert "Call +1 555" not in body and "Wrong user name or password." in body
    body = await (await demo.get("/login.tmpl", params={"failed": "locked"})).text()
    assert "Too many failed logins" in body
    assert "notice error" not in await (await demo.get("/login.tmpl")).text()


async def test_a_logged_out_browser_goes_to_the_login_page_and_back(demo):
    nav = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "text/html"}
    r = await demo.get("/admin/?tab=users", headers=nav, allow_redirects=False)
    assert r.status == 303 and URL(r.headers["Location"]).path == "/login.tmpl"
    assert URL(r.headers["Location"]).query["next"] == "/admin/?tab=users"
    form = await (await demo.get(URL(r.headers["Location"]).path_qs, headers=nav)).text()
    assert '<input type="hidden" name="next" value="/admin/?tab=users">' in form
    # A wrong password keeps next on the way back to the form.
    r = await demo.post("/api/login.dspy", data={"username": "admin", "password": "x", "next": "/admin/?tab=users"},
                        allow_redirects=False)
    assert URL(r.headers["Location"]).query == {"failed": "wrong", "next": "/admin/?tab=users"}
    r = await demo.post("/api/login.dspy", data={"username": "admin", "password": "admin-demo", "next": "/admin/?tab=users"},
                        allow_redirects=False)
    assert r.status == 302 and URL(r.headers["Location"]).path_qs == "/admin/?tab=users"
    assert URL(r.headers["Location"]).host == "127.0.0.1"


@pytest.mark.parametrize("hostile", ["//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example"])
async def test_the_demo_login_never_sends_a_visitor_to_another_site(demo, hostile):
    form = await (await demo.get("/login.tmpl", params={"next": hostile})).text()
    assert 'name="next"' not in form and "evil" not in form
    r = await demo.post("/api/login.dspy", data={"username": "admin", "password": "admin-demo", "next": hostile},
                        allow_redirects=False)
    assert r.status == 302 and URL(r.headers["Location"]).path == "/admin/"
    assert URL(r.headers["Location"]).host == "127.0.0.1"
    r = await demo.post("/api/login.dspy", data={"username": "admin", "password": "x", "next": hostile},
                        allow_redirects=False)
    assert "evil" not in r.headers["Location"]
