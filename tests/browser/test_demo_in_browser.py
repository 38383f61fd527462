"""The demo site in a real headless Chromium (Debian's package) driven by Playwright.

The browser comes from the system packages, never from Playwright's own
download: the setup installs Debian's ``chromium`` when it is missing (as
root with apt-get), and Playwright is pointed at it with
``executable_path``. Screenshots are saved under ``test-artifacts/``; with
``AHCORE_DOC_IMAGES=1`` the ones the documentation shows are also written
to ``docs/img/`` (``AHCORE_DOC_IMAGES=1 nox -s tests -- tests/browser``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from yarl import URL

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
ARTIFACTS = ROOT / "test-artifacts"
DOC_IMAGES = ROOT / "docs" / "img"
NEEDED = ("playwright", "ahcore_dspy", "ahcore_tmpl", "ahcore_md", "ahcore_xlsxds", "ahcore_sqlds")
missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(missing), reason=f"needs {missing}")]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env, capture_output=True)
        found = shutil.which("chromium")
        if found:
            return found
    pytest.skip("Debian's chromium is not installed and cannot be installed here")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_demo(site: Path, *args: str, files: dict[str, str] | None = None):
    """Copy the demo to ``site`` (plus ``files``), seed it, serve it with ``ahcore serve ARGS``; yield its URL."""
    shutil.copytree(DEMO, site, ignore=shutil.ignore_patterns("*.db", ".data", "files", ".session_secret"))
    for rel, text in (files or {}).items():
        (site / rel).write_text(text)
    subprocess.run([sys.executable, str(site / "seed.py")], check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ahcore", "serve", "-w", str(site), "-p", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(proc.communicate()[0].decode(errors="replace")) from None
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    yield from serve_demo(tmp_path_factory.mktemp("browser") / "demo")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


def open_page(browser, url: str, locale: str = "en-US"):
    context = browser.new_context(locale=locale, extra_http_headers={"Accept-Language": locale})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return page, errors


def shot(page, name: str, doc: str | None = None) -> None:
    """A full-page screenshot in test-artifacts/; ``doc``: also docs/img/DOC.png when asked."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if doc and os.environ.get("AHCORE_DOC_IMAGES") == "1":
        DOC_IMAGES.mkdir(exist_ok=True)
        page.screenshot(path=str(DOC_IMAGES / f"{doc}.png"), full_page=True)


@pytest.mark.parametrize(
    "path, text, name",
    [
        ("/", "Welcome to Acme Parts", "demo-home"),
        ("/about.md", "every page here is a", "about"),
        ("/prices.tmpl", "Cordless drill", "prices"),
        ("/contact.tmpl", "Your name", "contact"),
    ],
)
def test_pages_render_without_console_errors(browser, demo_url, path, text, name):
    page, errors = open_page(browser, demo_url + path)
    assert text in page.content()
    shot(page, name, doc=name if name.startswith("demo-") else None)
    assert errors == []
    page.context.close()


def test_product_list_loads_pages_and_sorts(browser, demo_url):
    page, errors = open_page(browser, demo_url + "/products/")
    rows = page.locator("#products tbody tr")
    rows.first.wait_for()
    assert rows.count() == 8
    first = rows.first.inner_text()
    page.click("th[data-sort=price]")
    page.wait_for_function("document.querySelector('#products tbody tr td') && true")
    page.wait_for_timeout(300)
    assert rows.first.inner_text() != first or "Wall plugs" in rows.first.inner_text()
    page.click("#next")
    page.wait_for_timeout(300)
    assert "2 /" in page.inner_text("#page")
    shot(page, "products")
    assert errors == []
    page.context.close()


def test_contact_form_posts_and_thanks(browser, demo_url):
    page, errors = open_page(browser, demo_url + "/contact.tmpl")
    page.fill("input[name=name]", "Ann <b>")
    page.fill("textarea[name=message]", "Hello")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "Thank you" in page.content()
    shot(page, "contact-sent")
    assert errors == []
    page.context.close()


def test_language_changes_with_the_browser_locale(browser, demo_url):
    page, errors = open_page(browser, demo_url + "/", locale="zh-CN")
    assert "欢迎" in page.content()
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert "基于 SQLite 的产品目录" in page.inner_text(".cards")
    assert "SQLite-backed" not in page.inner_text("body")
    shot(page, "home-zh", doc="demo-home-zh")
    assert errors == []
    page.context.close()


@pytest.mark.parametrize(
    "path, first, name",
    [("/products/list.sqlds", "p05", "sqlds-table"), ("/prices.xlsxds", "P01", "xlsxds-table")],
)
def test_data_sources_are_browsable_tables(browser, demo_url, path, first, name):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    missing: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    page.goto(demo_url + path)
    rows = page.locator("tbody tr")
    assert rows.first.locator("td").first.inner_text() == first
    page.fill("input[name=rows]", "5")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert rows.count() == 5
    assert "page 1 of 3" in page.inner_text(".pager")
    header = page.locator("th a").nth(2)  # the third column: a name or a price
    header.click()
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("th:nth-child(3)", "aria-sort") == "ascending"
    page.click("text=next ›")
    page.wait_for_load_state("networkidle")
    assert "rows 6–10 of 14 · page 2 of 3" in page.inner_text(".pager")
    shot(page, name, doc=name)
    page.click("text=this page as JSON")
    assert '"total":14' in page.inner_text("body").replace(" ", "")
    # The page is self-contained: nothing failed but the browser's own favicon guess.
    assert errors == [] and all(u.endswith("/favicon.ico") for u in missing), missing
    page.context.close()


def test_login_through_the_form_reaches_the_admin_page(browser, demo_url):
    if importlib.util.find_spec("ahcore_rbac") is None:
        pytest.skip("needs ahcore-rbac")
    page, errors = open_page(browser, demo_url + "/login.tmpl")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong")
    page.click("form.form button[type=submit]")
    page.wait_for_load_state("networkidle")
    notice = page.locator(".notice.error")
    assert notice.inner_text() == "Wrong user name or password."
    # Shown as an error, not in the green of a success notice.
    colour = notice.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(253, 236, 234)", colour
    shot(page, "login-failed", doc="demo-login-failed")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin-demo")
    page.click("form.form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/admin/")
    assert "demo.admin" in page.content()
    account = page.inner_text(".account")
    assert "admin" in account and "Log out" in account and "Log in" not in account
    shot(page, "admin", doc="demo-admin")
    page.click(".account button")  # the header's Log out
    page.wait_for_load_state("networkidle")
    assert "Log in" in page.inner_text(".account")
    # Logged out again, the administration page sends the browser to log in.
    page.goto(demo_url + "/admin/")
    assert URL(page.url).path == "/login.tmpl" and URL(page.url).query["next"] == "/admin/"
    page.context.close()


def test_a_logged_out_visitor_is_sent_to_log_in_and_back(browser, demo_url):
    if importlib.util.find_spec("ahcore_rbac") is None:
        pytest.skip("needs ahcore-rbac")
    page, errors = open_page(browser, demo_url + "/admin/?tab=users")
    # website.login_page: the 401 of a navigation is a 303 to the login form, with next=.
    assert URL(page.url).path == "/login.tmpl"
    assert URL(page.url).query["next"] == "/admin/?tab=users"
    assert page.inner_text("main h1") == "Log in"
    assert page.get_attribute("input[name=next]", "value") == "/admin/?tab=users"
    assert page.locator(".notice.error").count() == 0
    assert page.inner_text(".notice") == "Log in to see that page."
    shot(page, "login-redirect", doc="login-redirect")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin-demo")
    page.click("form.form button[type=submit]")
    page.wait_for_load_state("networkidle")
    # Back where the visitor wanted to go, logged in.
    assert URL(page.url).path_qs == "/admin/?tab=users"
    assert "demo.admin" in page.content() and "Log out" in page.inner_text(".account")
    assert errors == []
    # A script's fetch() of the same page is not redirected: it gets the 401 (JSON when asked).
    page.click(".account button")
    page.wait_for_load_state("networkidle")
    status = page.evaluate(
        "async () => (await fetch('/admin/', {headers: {Accept: 'application/json'}})).status"
    )
    assert status == 401
    page.context.close()


def test_a_missing_page_is_the_sites_own_404_page(browser, demo_url):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    response = page.goto(demo_url + "/products/discontinued.tmpl")
    assert response is not None and response.status == 404
    assert "text/html" in response.headers["content-type"]
    # examples/demo/wwwroot/errors/404.html, styled by the site's CSS.
    assert page.inner_text("main h1") == "Page not found"
    assert page.inner_text("a.brand") == "Acme Parts"
    brand = page.locator("a.brand").evaluate("e => getComputedStyle(e).color")
    assert brand == "rgb(11, 110, 79)", brand
    shot(page, "error-404", doc="error-404")
    # A client asking for JSON gets the JSON error of SPEC §16 for the same URL.
    data = page.evaluate(
        "async () => (await fetch('/products/discontinued.tmpl', {headers: {Accept: 'application/json'}})).json()"
    )
    assert data == {"error": {"status": 404, "message": "Not Found"}}
    context.close()


#: A script with a bug, for the debug page: the second cart line has no price.
BROKEN_SCRIPT = """\
# The total of a cart.
cart = [{'sku': 'P01', 'price': 12.5, 'qty': 2}, {'sku': 'P07', 'qty': 1}]
total = sum(line['price'] * line['qty'] for line in cart)
return {'total': total}
"""


@pytest.fixture(scope="module")
def debug_demo_url(tmp_path_factory):
    site = tmp_path_factory.mktemp("debug") / "demo"
    yield from serve_demo(site, "--debug", files={"wwwroot/api/cart_total.dspy": BROKEN_SCRIPT})


def test_the_debug_page_shows_the_sites_frames_first(browser, debug_demo_url):
    context = browser.new_context(locale="en-US")
    context.add_cookies([{"name": "theme", "value": "SECRET-COOKIE", "url": debug_demo_url}])
    page = context.new_page()
    response = page.goto(debug_demo_url + "/api/cart_total.dspy?cart=42")
    assert response is not None and response.status == 500
    assert page.inner_text("header h1") == "KeyError"
    own = page.locator("details.frame.site")
    # The site's frames first, open, with the failing line marked in its source.
    first = own.first
    assert first.is_visible() and first.get_attribute("open") is not None
    assert "api/cart_total.dspy, line 3" in first.locator("summary").inner_text()
    assert "sum(line['price']" in first.locator("span.here").inner_text()
    assert first.locator(".names").inner_text() == "local names: line"  # the generator's
    assert "api/cart_total.dspy, line 3" in own.nth(1).locator("summary").inner_text()
    assert own.nth(1).locator(".names").inner_text() == "local names: cart"
    assert "params_kw" in page.inner_text("h2:has-text('Script namespace') + div")
    # Kernel and library frames are folded: their source is not shown until opened.
    kernel = page.locator("details.frame:not(.site)").first
    assert kernel.get_attribute("open") is None
    assert not kernel.locator("pre.src").is_visible()
    # The request, cookies redacted.
    assert "SECRET-COOKIE" not in page.content()
    assert "(redacted)" in page.inner_text("table:last-of-type")
    shot(page, "debug-page", doc="debug-page")
    context.close()
