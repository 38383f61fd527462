"""``plugins.tmpl.undefined``: empty (logged once per name and line in debug) or strict."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from ahcore.api import PluginError
from ahcore.testing import build_app

FILES = {
    "wwwroot/page.tmpl": "<p>[{{ usr }}]</p>\n{% for x in missing_list %}{{ x }}{% endfor %}\n<p>{{ params_kw.q }}</p>\n",
    "wwwroot/twice.tmpl": "{{ usr }}\n{{ usr }}\n",
    "wwwroot/defined.tmpl": "{% if usr is defined %}yes{% else %}no{% endif %}",
}


def undefined_records(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ahcore_tmpl" and "undefined" in r.getMessage()]


async def test_an_undefined_name_renders_empty_and_is_logged_once_in_debug(make_site, ahcore_client, caplog):
    site = make_site({"plugins": {"tmpl": True}}, FILES)
    client = await ahcore_client(site, debug=True)
    with caplog.at_level(logging.WARNING, logger="ahcore_tmpl"):
        for _ in range(3):
            r = await client.get("/page.tmpl")
            assert r.status == 200 and (await r.text()).startswith("<p>[]</p>")
        await client.get("/twice.tmpl")
    page = site / "wwwroot" / "page.tmpl"
    twice = site / "wwwroot" / "twice.tmpl"
    assert sorted(undefined_records(caplog)) == sorted([
        f"template {page}, line 1: 'usr' is undefined (rendered as '')",
        f"template {page}, line 2: 'missing_list' is undefined (rendered as '')",
        f"template {twice}, line 1: 'usr' is undefined (rendered as '')",
        f"template {twice}, line 2: 'usr' is undefined (rendered as '')",
    ])


async def test_production_renders_empty_and_logs_nothing(make_site, ahcore_client, caplog):
    site = make_site({"plugins": {"tmpl": True}}, FILES)
    client = await ahcore_client(site)
    with caplog.at_level(logging.DEBUG, logger="ahcore_tmpl"):
        assert (await (await client.get("/page.tmpl")).text()).startswith("<p>[]</p>")
    assert undefined_records(caplog) == []


async def test_strict_makes_an_undefined_name_an_error(make_site, ahcore_client):
    site = make_site({"plugins": {"tmpl": {"undefined": "strict"}}}, FILES)
    client = await ahcore_client(site)
    r = await client.get("/page.tmpl")
    assert r.status == 500 and "usr" not in await r.text()  # production: no detail
    assert (await (await client.get("/defined.tmpl")).text()) == "no"  # `is defined` still works
    debug = await ahcore_client(site, debug=True)
    text = await (await debug.get("/page.tmpl")).text()
    assert "jinja2.exceptions.UndefinedError: 'usr' is undefined" in text
    assert f'{site / "wwwroot" / "page.tmpl"}", line 1' in text


@pytest.mark.parametrize("value", ["loud", True, 1, None])
def test_a_bad_setting_stops_start_up_with_one_clear_line(make_site, value):
    site = make_site({"plugins": {"tmpl": {"undefined": value}}}, FILES)
    with pytest.raises(PluginError) as info:
        build_app(site)
    assert info.value.problems == [
        f"plugins.tmpl.undefined: {value!r} is not one of 'empty', 'strict' "
        "(\"empty\": an undefined name renders as ''; \"strict\": it is an error)"
    ]


def test_check_and_serve_report_a_bad_setting(make_site):
    site = make_site({"plugins": {"tmpl": {"undefined": "loud"}}}, FILES)
    check = subprocess.run([sys.executable, "-m", "ahcore", "check", "-w", str(site)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode != 0
    assert "plugins.tmpl.undefined: 'loud' is not one of 'empty', 'strict'" in check.stdout + check.stderr
    assert "Traceback" not in check.stdout + check.stderr
