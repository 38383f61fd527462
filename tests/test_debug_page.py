"""The ``--debug`` error page: the site's frames first, escaped, never in production."""

from __future__ import annotations

import importlib.util
import re

import pytest
from yarl import URL

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ahcore_dspy") is None or importlib.util.find_spec("ahcore_tmpl") is None,
    reason="needs ahcore-dspy and ahcore-tmpl",
)

HOSTILE = "<script>alert('pwned')</script>"
BROWSER = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "text/html,*/*;q=0.8"}
SCRIPT = (
    "total = 0\n"
    "for n in range(3):\n"
    "    total += n\n"
    "order_id = params_kw.get('order')\n"
    f"raise ValueError({HOSTILE!r} + ' for order ' + str(order_id))\n"
)


@pytest.fixture
def site(make_site):
    return make_site(
        {"plugins": {"dspy": True, "tmpl": {"undefined": "strict"}}},
        {
            "wwwroot/boom.dspy": SCRIPT,
            "wwwroot/page.tmpl": "<h1>Orders</h1>\n{% set shown = 1 %}\n<p>{{ customer.name }}</p>\n",
        },
    )


def frames_section(body: str, heading: str) -> str:
    start = body.index(heading)
    end = body.find("<h2>", start + len(heading))
    return body[start:end]


async def test_a_browser_gets_the_debug_page_with_the_sites_frames_first(site, ahcore_client):
    client = await ahcore_client(site, debug=True)
    url = URL("/boom.dspy?order=17&%3Cscript%3E=1", encoded=True)
    r = await client.get(
        url,
        headers={**BROWSER, "Cookie": "ahcore_session=COOKIEVALUE; theme=dark",
                 "Authorization": "Bearer TOPSECRETKEY", "X-Custom": HOSTILE},
    )
    body = await r.text()
    assert r.status == 500 and r.headers["Content-Type"].startswith("text/html")
    error_id = r.headers["X-Error-Id"]
    # The exception, escaped: the hostile message arrives as text, never as markup.
    assert "<h1>ValueError</h1>" in body
    assert "<script>" not in body and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; for order 17" in body
    assert error_id in body
    # The site's own frame first, with its source lines and the line that failed marked.
    own = frames_section(body, "<h2>In your site")
    assert "wwwroot/boom.dspy, line 5" in own
    assert '<span class="here"><i>5</i>raise ValueError(' in own
    assert "<i>1</i>total = 0" in own and "<i>4</i>order_id = params_kw.get(" in own
    # The names the script saw: its locals, then its namespace; names only, no values.
    assert set(re.findall(r"<code>([^<]+)</code>", own)) == {"n", "order_id", "total"}
    namespace = set(re.findall(r"<code>([^<]+)</code>", frames_section(body, "<h2>Script namespace")))
    assert {"params_kw", "request", "i18n", "entire_url", "configValue"} <= namespace
    assert "order_id" not in namespace and "__builtins__" not in namespace
    # Kernel and library frames are in the full stack, folded; the site frame is open.
    stack = frames_section(body, "<h2>Full stack")
    assert re.search(r'<details class="frame"><summary>[^<]*ahcore/pipeline\.py', stack)
    assert '<details class="frame site" open><summary>wwwroot/boom.dspy' in stack
    assert body.index("wwwroot/boom.dspy, line 5") < body.index("ahcore/pipeline.py")
    # The request, with credentials redacted.
    assert "COOKIEVALUE" not in body and "TOPSECRETKEY" not in body and "(redacted)" in body
    assert "/boom.dspy?order=17&amp;%3Cscript%3E=1" in body
    assert "order" in frames_section(body, "<h2>Request")


async def test_form_parameter_names_are_shown_not_their_values(site, ahcore_client):
    client = await ahcore_client(site, debug=True)
    r = await client.post("/boom.dspy", data={"order": "9", "card_number": "4111111111111111"}, headers=BROWSER)
    body = await r.text()
    assert r.status == 500
    request = frames_section(body, "<h2>Request")
    assert "card_number" in request and "order" in request
    assert "4111111111111111" not in body


async def test_a_hostile_path_is_escaped(site, ahcore_client):
    client = await ahcore_client(site, debug=True)
    r = await client.get(URL("/boom.dspy?<script>alert(1)</script>", encoded=True), headers=BROWSER)
    body = await r.text()
    assert r.status == 500 and "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


async def test_a_template_error_points_at_the_template_line(site, ahcore_client):
    client = await ahcore_client(site, debug=True)
    r = await client.get("/page.tmpl", headers=BROWSER)
    body = await r.text()
    assert r.status == 500
    assert "UndefinedError" in body and "&#x27;customer&#x27; is undefined" in body
    own = frames_section(body, "<h2>In your site")
    assert "wwwroot/page.tmpl, line 3" in own
    assert '<span class="here"><i>3</i>&lt;p&gt;{{ customer.name }}&lt;/p&gt;</span>' in own
    assert "shown" in re.findall(r"<code>([^<]+)</code>", own)


async def test_other_clients_get_the_traceback_as_text_or_json_in_debug(site, ahcore_client):
    client = await ahcore_client(site, debug=True)
    r = await client.get("/boom.dspy")
    text = await r.text()
    assert r.status == 500 and r.headers["Content-Type"].startswith("text/plain")
    assert "Traceback (most recent call last)" in text and "boom.dspy\", line 5" in text
    r = await client.get("/boom.dspy", headers={"Accept": "application/json"})
    data = await r.json()
    assert data["error"]["status"] == 500 and "Traceback" in data["error"]["message"]


@pytest.mark.parametrize(
    "headers", [BROWSER, {}, {"Accept": "application/json"}], ids=["browser", "plain", "json"]
)
@pytest.mark.parametrize("path", ["/boom.dspy?order=1", "/page.tmpl"])
async def test_production_never_shows_a_traceback_or_source(site, ahcore_client, headers, path):
    client = await ahcore_client(site)  # no debug: production
    r = await client.get(path, headers=headers)
    body = await r.text()
    assert r.status == 500
    error_id = r.headers["X-Error-Id"]
    assert error_id in body and "Internal Server Error" in body
    for leak in ("Traceback", "raise ValueError", "pwned", "script", "customer", "boom.dspy",
                 "page.tmpl", "In your site", "params_kw", "wwwroot", "ahcore/"):
        assert leak not in body, leak


async def test_a_script_that_does_not_compile_is_shown_at_its_line(make_site, ahcore_client):
    site = make_site({"plugins": {"dspy": True}},
                     {"wwwroot/broken.dspy": "total = 1\nrows = await path_call('/x'\nreturn rows\n"})
    client = await ahcore_client(site, debug=True)
    r = await client.get("/broken.dspy", headers=BROWSER)
    body = await r.text()
    assert r.status == 500 and "ScriptSyntaxError" in body
    own = frames_section(body, "<h2>In your site")
    assert "wwwroot/broken.dspy, line 2" in own and "does not compile: &#x27;(&#x27; was never closed" in own
    assert '<span class="here"><i>2</i>rows = await path_call(&#x27;/x&#x27;</span>' in own


async def test_a_template_that_does_not_compile_is_shown_at_its_line(make_site, ahcore_client):
    site = make_site({"plugins": {"tmpl": True}}, {"wwwroot/bad.tmpl": "<h1>x</h1>\n{% if user %}\n<p>no endif</p>\n"})
    client = await ahcore_client(site, debug=True)
    body = await (await client.get("/bad.tmpl", headers=BROWSER)).text()
    own = frames_section(body, "<h2>In your site")
    assert "wwwroot/bad.tmpl, line 2" in own  # Jinja2 names the unclosed {% if %}
    assert "does not compile: Unexpected end of template" in own
    assert "{% if user %}" in own
