"""Partials (``_name.tmpl``): included and extended by templates, never served as pages."""

from __future__ import annotations

from typing import Any

CONFIG: dict[str, Any] = {
    "website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".tmpl", "tmpl"]]},
    "plugins": {"tmpl": True},
}
FILES = {
    "wwwroot/_layout.tmpl": "<main>{% block body %}{% endblock %}</main>",
    "wwwroot/sub/_card.tmpl": "<i>{{ params_kw.q }}</i>",
    "wwwroot/sub/page.tmpl": (
        '{% extends "_layout.tmpl" %}{% block body %}{% include "_card.tmpl" %}{% endblock %}'
    ),
}


async def test_partials_are_used_but_not_served(make_site, ahcore_client) -> None:
    client = await ahcore_client(make_site(config=CONFIG, files=FILES))
    resp = await client.get("/sub/page.tmpl?q=<b>")
    assert resp.status == 200
    assert await resp.text() == "<main><i>&lt;b&gt;</i></main>"
    for url in ("/_layout.tmpl", "/sub/_card.tmpl"):
        assert (await client.get(url)).status == 404, url
