"""What ahserver 1.2.0 templates rely on: Python's builtins, print to the log, JSON output."""

from __future__ import annotations

import logging
from typing import Any

import jinja2
import pytest
from ahcore_tmpl.builtins import LEFT_OUT
from ahcore_tmpl.processor import is_json_text
from ahcore_tmpl.syncsafe import is_sync_callable

CONFIG: dict[str, Any] = {
    "website": {
        "paths": [["$[workdir]$/wwwroot", ""]],
        "processors": [[".tmpl", "tmpl"], [".tmpl.js", "tmpl"]],
    },
    "logger": {"name": "tmplsite"},
    "plugins": {"tmpl": True},
}

FILES = {
    "wwwroot/builtins.tmpl": (
        "{{ len(params_kw.q) }} {{ max(3, 9, 4) }} {{ sorted([3, 1, 2]) }} "
        "{{ abs(-2) }} {{ round(2.567, 1) }} {{ list(enumerate('ab')) }} "
        "{{ isinstance(params_kw.q, str) }} {{ hex(255) }} {{ ', '.join(map(str, zip('ab', 'cd'))) }}"
    ),
    "wwwroot/shadow.tmpl": "{% set len = 7 %}{{ len }} {{ range(2) | list }}",
    "wwwroot/print.tmpl": "before {{ print('hello', params_kw.who, 42) }} after",
    "wwwroot/json.tmpl": '{"rows": [{% for i in range(3) %}{{ i }}{{ "," if not loop.last }}{% endfor %}]}',
    "wwwroot/list.tmpl": "\n  [1, 2, {{ params_kw.n or 3 }}]\n",
    "wwwroot/notjson.tmpl": "[draft] a page {{ 1 }} [end]",
    "wwwroot/scalar.tmpl": "{{ 42 }}",
    "wwwroot/data.tmpl.js": '{"a": 1}',
    "wwwroot/runns.tmpl": "{{ request._run_ns.params_kw.page + 1 }} {{ params_kw.nothing is none }}",
    "wwwroot/names.tmpl": (
        "{{ timestampstr()|length }} {{ Error('E', 'm').status }} {{ uObject('x') }}"
    ),
}


@pytest.fixture
async def client(make_site: Any, ahcore_client: Any) -> Any:
    return await ahcore_client(make_site(config=CONFIG, files=FILES))


async def text(client: Any, url: str) -> str:
    r = await client.get(url)
    assert r.status == 200, await r.text()
    return await r.text()


async def test_builtins_are_template_globals(client: Any) -> None:
    assert await text(client, "/builtins.tmpl?q=abcd") == (
        "4 9 [1, 2, 3] 2 2.6 [(0, &#39;a&#39;), (1, &#39;b&#39;)] True 0xff "
        "(&#39;a&#39;, &#39;c&#39;), (&#39;b&#39;, &#39;d&#39;)"
    )


async def test_template_variables_and_jinja_globals_win(client: Any) -> None:
    assert await text(client, "/shadow.tmpl") == "7 [0, 1]"


@pytest.mark.parametrize("name", ["open", "eval", "exec", "compile", "input", "exit", "globals"])
async def test_risky_builtins_are_left_out(make_site: Any, ahcore_client: Any, name: str) -> None:
    site = make_site(config=CONFIG, files={"wwwroot/bad.tmpl": f"{{{{ {name}('1') }}}}"})
    other = await ahcore_client(site)
    r = await other.get("/bad.tmpl")
    assert r.status == 500
    assert name in LEFT_OUT


async def test_print_goes_to_the_site_log(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tmplsite")
    assert await text(client, "/print.tmpl?who=ann") == "before None after"  # as print() returns
    records = [r for r in caplog.records if r.name == "tmplsite"]
    assert [(r.levelname, r.getMessage()) for r in records] == [("INFO", "hello ann 42")]


@pytest.mark.parametrize(
    ("url", "content_type"),
    [
        ("/json.tmpl", "application/json"),
        ("/list.tmpl?n=5", "application/json"),
        ("/notjson.tmpl", "text/html"),
        ("/scalar.tmpl", "text/html"),
        ("/data.tmpl.js", "application/javascript"),  # its own type, JSON or not
        ("/builtins.tmpl?q=x", "text/html"),
    ],
)
async def test_json_output_is_sent_as_json(client: Any, url: str, content_type: str) -> None:
    r = await client.get(url)
    assert r.status == 200
    assert r.content_type == content_type
    assert r.charset == "utf-8"
    if content_type == "application/json":
        assert await r.json() in ({"rows": [0, 1, 2]}, [1, 2, 5])


async def test_run_ns_and_ahserver_names_in_templates(client: Any) -> None:
    assert await text(client, "/runns.tmpl?page=2") == "3 True"  # page arrives as an int
    assert await text(client, "/names.tmpl") == "23 Error x"


def test_is_json_text() -> None:
    assert is_json_text(' {"a": [1, 2]} \n')
    assert is_json_text("[]")
    assert not is_json_text("[a] b [c]")
    assert not is_json_text("{% raw %}{x}")
    assert not is_json_text("42")
    assert not is_json_text("")


def test_async_builtins_are_not_sync_callables() -> None:
    assert not is_sync_callable(anext)
    assert not is_sync_callable(aiter)
    assert is_sync_callable(len)


async def test_pages_using_builtins_still_render_sync(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = jinja2.Template.render

    def render(self: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        seen.append(str(self.name))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Template, "render", render)
    await text(client, "/builtins.tmpl?q=ab")
    await text(client, "/print.tmpl?who=x")
    assert seen == ["/builtins.tmpl", "/print.tmpl"]


def test_every_public_builtin_is_offered_or_deliberately_left_out() -> None:
    import builtins

    from ahcore_tmpl.builtins import template_builtins

    class Site:
        class config:  # noqa: N801 - a stand-in for SiteView.config
            class logger:  # noqa: N801
                name = "x"

    offered = template_builtins(Site())  # type: ignore[arg-type]
    public = {n for n in dir(builtins) if not n.startswith("_")}
    assert set(offered) | LEFT_OUT == public
    assert offered["print"] is not builtins.print
