"""A processor built from docs/plugins.md alone does what ahcore-md does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("ahcore_tmpl", reason="needs the ahcore_tmpl plugin (not in the kernel-only session)")

from tests.thirdparty import notes_plugin

HERE = Path(__file__).parent


def test_the_plugin_imports_only_the_declared_api():
    tree = ast.parse((HERE / "notes_plugin.py").read_text())
    kernel = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ahcore")
    }
    assert kernel == {"ahcore.api"}


def _site(make_site, **settings):
    return make_site(
        config={
            "website": {"processors": [[".note", "notes"], [".tmpl", "tmpl"]]},
            "plugins": {"notes": settings or True, "tmpl": True},
        },
        files={
            "wwwroot/docs/intro.note": "Hello <world>\n->../pricing.html\n",
            "wwwroot/layout.tmpl": "<main>{{ params_kw.content | safe }}</main>",
        },
    )


async def test_renders_once_with_absolute_links_for_the_clients_origin(make_site, ahcore_client):
    client = await ahcore_client(_site(make_site), extra_plugins={"notes": notes_plugin})
    resp = await client.get("/docs/intro.note", headers={"Host": "example.test:8443"})
    assert resp.status == 200
    text = await resp.text()
    assert "<p>Hello &lt;world&gt;</p>" in text
    assert 'href="http://example.test:8443/pricing.html"' in text
    again = await client.get("/docs/intro.note", headers={"Host": "other.test"})
    assert 'href="http://other.test/pricing.html"' in await again.text()


async def test_wraps_pages_in_a_layout_through_path_call(make_site, ahcore_client):
    site = _site(make_site, layout="/layout.tmpl")
    client = await ahcore_client(site, extra_plugins={"notes": notes_plugin})
    text = await (await client.get("/docs/intro.note")).text()
    assert text.startswith("<main><p>Hello &lt;world&gt;</p>")


async def test_a_bad_setting_stops_start_up(make_site, ahcore_client):
    site = _site(make_site, layout=42)
    with pytest.raises(ValueError, match="plugins.notes.layout"):
        await ahcore_client(site, extra_plugins={"notes": notes_plugin})
