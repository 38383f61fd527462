"""A ``filesroot`` inside a content root: stored uploads are never served or run as pages.

Found by probing (SPEC §13: nothing a visitor sends can run as code): with
``filesroot`` under ``wwwroot``, an uploaded ``evil.dspy`` kept its suffix in
its random stored name and ran when its URL was fetched, and an uploaded
``.html`` was stored XSS. The resolver now refuses everything under
``filesroot`` like ``conf/`` (404, as a missing file); the stored file is
still sent by the ``idfile`` route, with its sandbox policy.
"""

from __future__ import annotations

import aiohttp
import pytest

pytest.importorskip("ahcore_dspy")

CONFIG = {
    "website": {
        "paths": [["$[workdir]$/wwwroot", ""]],
        "processors": [[".dspy", "dspy"]],
        "startswiths": [{"leading": "/idfile", "registerfunction": "idfile"}],
    },
    "filesroot": "$[workdir]$/wwwroot/up",
    "plugins": {"dspy": True},
}


async def test_an_uploaded_script_or_page_is_never_run_or_served(make_site, ahcore_client) -> None:
    site = make_site(config=CONFIG, files={"wwwroot/store.dspy": "return {'f': params_kw.f}\n"})
    client = await ahcore_client(site)
    stored = {}
    for name, body in (("evil.dspy", "return 'PWNED'\n"), ("page.html", "<script>x()</script>")):
        form = aiohttp.FormData()
        form.add_field("f", body.encode(), filename=name, content_type="application/octet-stream")
        resp = await client.post("/store.dspy", data=form)
        assert resp.status == 200
        stored[name] = (await resp.json())["f"]
        assert stored[name].endswith(name.rsplit(".", 1)[1])  # the suffix is kept...
    for name, sub in stored.items():
        url = "/up/" + sub.lstrip("/")
        resp = await client.get(url)
        assert resp.status == 404, (name, url)  # ...but nothing under filesroot is served
        assert "PWNED" not in await resp.text()
    resp = await client.get("/idfile", params={"path": stored["page.html"]})
    assert resp.status == 200 and await resp.text() == "<script>x()</script>"
    assert resp.headers["Content-Security-Policy"] == "sandbox"
    assert (await client.get("/up/")).status == 404
