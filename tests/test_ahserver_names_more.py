"""More ahserver 1.2.0 names scripts call: answer helpers, config lookups, password_decode."""

from __future__ import annotations

import pytest

pytest.importorskip("ahcore_dspy", reason="needs the dspy plugin (not in the kernel-only session)")

SCRIPT = """
return {
    'ok': Success([1]), 'need': NeedLogin('/a'), 'noperm': NoPermission('/b'),
    'rok': return_ok(2), 'rerr': return_error('bad'),
    'cfg': get_config_value('definitions.answer'), 'missing': get_config_value('nope.x'),
    'definition': get_definition('answer'), 'root': web_rootpath() is not None,
    'round': password_decode(password_encode('s3cret')),
    'quoted': quote('a b/c'), 'partial': partial(int, base=16)('ff'),
    'visual': visualcoding(),
}
"""


async def test_the_names_behave_as_ahservers(make_site, ahcore_client):
    site = make_site(
        config={"plugins": {"dspy": True}, "definitions": {"answer": 42}, "password_key": "k"},
        files={"wwwroot/names.dspy": SCRIPT, "wwwroot/resp.dspy": "return json_response({'a': 1}, status=201)"},
    )
    client = await ahcore_client(site)
    resp = await client.get("/names.dspy")
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "ok": {"status": "OK", "data": [1]},
        "need": {"status": "need_login", "data": "/a"},
        "noperm": {"status": "no_permission", "data": "/b"},
        "rok": {"status": "ok", "data": 2},
        "rerr": {"status": "error", "data": {"message": "bad"}},
        "cfg": 42,
        "missing": None,
        "definition": 42,
        "root": True,
        "round": "s3cret",
        "quoted": "a%20b/c",
        "partial": 255,
        "visual": None,
    }
    made = await client.get("/resp.dspy")
    assert made.status == 201 and await made.json() == {"a": 1}
