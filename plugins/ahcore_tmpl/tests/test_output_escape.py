"""``{{ … }}`` output is escaped exactly as stock Jinja2 escapes it, in every kind of block.

ahcore-tmpl swaps the ``escape`` of its compiled templates for
:func:`ahcore_tmpl.environment.output_escape` (same text, no ``Markup``
wrapper); these tests render the same source through a site, in sync and
async mode, and through a stock ``jinja2.Environment(autoescape=True)``.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import pytest
from ahcore_tmpl import SYNC_ENVIRONMENT_KEY, TmplProcessor
from ahcore_tmpl.runtime import UrlTemplate, output_escape

from ahcore.api import get_site, hookimpl


class Html:
    """An object that says it is HTML already (``__html__``)."""

    def __html__(self) -> str:
        return "<i>html</i>"

    def __str__(self) -> str:
        return "<not used>"


class Text(str):
    """A ``str`` subclass with its own ``__str__``: it must not take the ``str`` short cut."""

    def __str__(self) -> str:
        return "<sub & str>"


class Level(enum.IntEnum):
    HIGH = 3


VALUES: dict[str, Any] = {
    "html_obj": Html(),
    "sub_str": Text("plain"),
    "level": Level.HIGH,
    "big": 10**30,
    "neg": -7,
    "ratio": 2.5,
    "flag": True,
    "nothing": None,
    "safe": markupsafe.Markup("<b>safe</b>"),
    "raw": "<script>alert('x') & \"y\"</script>",
    "items": ["<a>", 1, "b&c"],
}

SOURCE = (
    "{{ raw }}|{{ html_obj }}|{{ sub_str }}|{{ level }}|{{ big }}|{{ neg }}|{{ ratio }}|"
    "{{ flag }}|{{ nothing }}|{{ safe }}|{{ raw | safe }}|{{ raw | e }}|{{ safe ~ raw }}|"
    "{{ 42 }}|{{ '<lit>' }}|{{ nosuch }}|{{ params_kw.q }}\n"
    "{% macro cell(v) %}<td>{{ v }}</td>{% endmacro %}"
    "{% for x in items %}{{ cell(x) }}{{ loop.cycle('<odd>', 'even') }}{% endfor %}\n"
    "{% set block %}<{{ raw }}>{% endset %}{{ block }}|{{ block | length }}\n"
    "{% filter upper %}{{ raw }}{% endfilter %}\n"
    "{% macro wrap(v) %}<p title=\"{{ v }}\">{{ caller() }}</p>{% endmacro %}"
    "{% call wrap('<c>') %}{{ raw }}{% endcall %}\n"
    "{% autoescape false %}{{ raw }}{% endautoescape %}|{{ raw }}\n"
    "{% with v = raw %}{{ v }}{% endwith %}"
)


# The same blocks over plain data only, so the page renders sync.
PLAIN_SOURCE = (
    "{% set raw = \"<script>alert('x') & \\\"y\\\"</script>\" %}"
    "{% set items = ['<a>', 1, 'b&c', none, true, 2.5, -3] %}"
    + SOURCE.split("\n", 1)[1]
    + "{% for x in items %}{{ x }}{% endfor %}{{ params_kw.q }}{{ nosuch }}"
)


class ValuesPlugin:
    @hookimpl
    def env_globals(self, app: Any) -> dict[str, Any]:
        return dict(VALUES)


CONFIG: dict[str, Any] = {
    "website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".tmpl.js", "tmpl"], [".tmpl", "tmpl"]]},
    "plugins": {"tmpl": True, "values": True},
}


def stock(source: str, **extra: Any) -> str:
    """What stock Jinja2 renders for ``source`` with :data:`VALUES`."""
    return jinja2.Environment(autoescape=True).from_string(source).render(VALUES, **extra)


@pytest.fixture
async def client(ahcore_client: Any, make_site: Any) -> Any:
    site = make_site(
        config=CONFIG,
        files={
            "wwwroot/page.tmpl": SOURCE,
            "wwwroot/plain.tmpl": PLAIN_SOURCE,
            "wwwroot/outer.tmpl": '[{% include "inner.tmpl" %}]{{ raw }}',
            "wwwroot/inner.tmpl": "{{ raw }}{{ level }}",
            "wwwroot/script.tmpl.js": "var s = '{{ raw }}';",
        },
    )
    return await ahcore_client(site, extra_plugins={"values": ValuesPlugin()})


def processor_of(client: Any, url: str) -> TmplProcessor:
    site = get_site(client.app)
    path = Path(site.workdir) / "wwwroot" / url.lstrip("/")
    processor = site.processor_cache.fresh(path, path.stat())
    assert isinstance(processor, TmplProcessor)
    return processor


async def test_output_is_escaped_as_stock_jinja2_escapes_it(client: Any) -> None:
    resp = await client.get("/page.tmpl", params={"q": "<q&a>"})
    assert resp.status == 200
    assert await resp.text() == stock(SOURCE, params_kw={"q": "<q&a>"})
    assert processor_of(client, "/page.tmpl").mode == "async"  # the objects of VALUES


async def test_sync_rendered_output_is_escaped_as_stock_jinja2_escapes_it(client: Any) -> None:
    resp = await client.get("/plain.tmpl", params={"q": "<q&a>"})
    assert resp.status == 200
    assert await resp.text() == stock(PLAIN_SOURCE, params_kw={"q": "<q&a>"})
    assert processor_of(client, "/plain.tmpl").mode == "sync"
    # the objects of VALUES, through the sync environment
    template = client.app[SYNC_ENVIRONMENT_KEY].from_string(SOURCE)
    assert template.render(VALUES, params_kw={}) == stock(SOURCE, params_kw={})


async def test_includes_are_escaped_and_javascript_is_not(client: Any) -> None:
    assert await (await client.get("/outer.tmpl")).text() == stock(
        '[{{ raw }}{{ level }}]{{ raw }}'
    )
    assert await (await client.get("/script.tmpl.js")).text() == (
        "var s = '" + VALUES["raw"] + "';"
    )


async def test_every_template_of_the_site_uses_output_escape(client: Any) -> None:
    await client.get("/outer.tmpl")
    processor = processor_of(client, "/outer.tmpl")
    templates = [processor.template, processor.sync_template]
    templates += [t for t in processor._sync_env.cache.values()]  # type: ignore[union-attr]  # noqa: SLF001 - the include
    assert len(templates) == 3
    for template in templates:
        assert isinstance(template, UrlTemplate)
        assert template.root_render_func.__globals__["escape"] is output_escape


@pytest.mark.parametrize(
    "value",
    ["", "plain", "<&>\"'", "é<ü>", 0, -12, 10**40, Level.HIGH, True, 1.5, None, Html(), Text("x"),
     markupsafe.Markup("<b>"), jinja2.Undefined(name="u")],
)
def test_output_escape_gives_the_text_of_markupsafe_escape(value: Any) -> None:
    assert output_escape(value) == markupsafe.escape(value)
    assert type(output_escape(value)) in (str, markupsafe.Markup)
