"""ahcore-tmpl through a running site: content types, escaping, names, includes, reloads."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from ahcore_tmpl import ENVIRONMENT_KEY, SYNC_ENVIRONMENT_KEY, UrlEnvironment

CONFIG: dict[str, Any] = {
    "website": {
        "paths": [["$[workdir]$/wwwroot", ""], ["$[workdir]$/other", "/other"]],
        "processors": [
            [".tmpl", "tmpl"],
            [".html.tmpl", "tmpl"],
            [".tmpl.js", "tmpl"],
            [".tmpl.css", "tmpl"],
            [".md", "md"],
        ],
    },
    "plugins": {"tmpl": True, "md": {"allow_html": False}},
    "site_title": "Demo site",
}

FILES: dict[str, str] = {
    # content types
    "wwwroot/index.tmpl": "<p>{{ params_kw.q }}</p>",
    "wwwroot/page.html.tmpl": "<p>html {{ 1 + 1 }}</p>",
    "wwwroot/app.tmpl.js": 'var q = "{{ params_kw.q }}"; var t = "{{ "<b>" }}";',
    "wwwroot/style.tmpl.css": "body { color: {{ params_kw.color or 'red' }}; } a > b {}",
    # namespace
    "wwwroot/names.tmpl": (
        "path={{ request.path }}|abs={{ entire_url('x.tmpl') }}|"
        "cfg={{ configValue('.site_title') }}|n={{ params_kw.n }}|"
        "day={{ curDateString()|length }}|uuid={{ uuid()|length }}"
    ),
    # includes: relative, up the folders, across roots
    "wwwroot/part.tmpl": "TOP-PART",
    "wwwroot/top.tmpl": "TOP-ONLY",
    "wwwroot/base.tmpl": "<main>{% block body %}{% endblock %}</main>",
    "wwwroot/sub/part.tmpl": "SUB-PART",
    "wwwroot/sub/page.tmpl": '[{% include "part.tmpl" %}]',
    "wwwroot/sub/deep/page.tmpl": (
        '{% extends "base.tmpl" %}{% block body %}'
        '{% include "part.tmpl" %}|{% include "top.tmpl" %}{% endblock %}'
    ),
    "wwwroot/sub/deep/abs.tmpl": '{% include "/part.tmpl" %}',
    "wwwroot/header.html": "<header>static header</header>",
    "wwwroot/uses_static.tmpl": '{% include "header.html" %}',
    "wwwroot/cross.tmpl": '{% include "shared.tmpl" %}',
    "other/shared.tmpl": 'SHARED {% include "part.tmpl" %}',
    "other/local.tmpl": '{% include "shared.tmpl" %}',
    # escaping from an included HTML fragment in a JS template
    "wwwroot/frag.tmpl": "{{ params_kw.q }}",
    "wwwroot/mixed.tmpl.js": '{{ params_kw.q }}|{% include "frag.tmpl" %}',
    # hostile includes
    "secret.txt": "TOP SECRET",
    "wwwroot/doc.md": "# markdown source",
    "wwwroot/evil/dotdot.tmpl": '{% include "../../secret.txt" %}',
    "wwwroot/evil/encoded.tmpl": '{% include "%2e%2e/%2e%2e/secret.txt" %}',
    "wwwroot/evil/conf.tmpl": '{% include "/conf/config.json" %}',
    "wwwroot/evil/mdsource.tmpl": '{% include "/doc.md" %}',
    "wwwroot/evil/ignored.tmpl": 'ok{% include "../secret.txt" ignore missing %}',
}


@pytest.fixture
def site(make_site: Any) -> Path:
    files = dict(FILES)
    path = make_site(config=CONFIG, files=files)
    # An absolute filesystem path is only ever a URL, never a file name.
    (path / "wwwroot" / "evil" / "fspath.tmpl").write_text(
        '{% include "' + str(path / "secret.txt") + '" %}'
    )
    (path / "other").mkdir(exist_ok=True)
    return path


@pytest.fixture
async def client(ahcore_client: Any, site: Path) -> Any:
    return await ahcore_client(site)


def bump(path: Path, text: str) -> None:
    """Rewrite ``path`` and move its mtime forward, as an editor saving it would."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


# ---------------------------------------------------------------- content types


@pytest.mark.parametrize(
    ("url", "content_type", "expected"),
    [
        ("/index.tmpl?q=hi", "text/html", "<p>hi</p>"),
        ("/page.html.tmpl", "text/html", "<p>html 2</p>"),
        ("/app.tmpl.js?q=x", "application/javascript", 'var q = "x"; var t = "<b>";'),
        ("/style.tmpl.css?color=blue", "text/css", "body { color: blue; } a > b {}"),
    ],
)
async def test_content_type_follows_suffix(
    client: Any, url: str, content_type: str, expected: str
) -> None:
    resp = await client.get(url)
    assert resp.status == 200
    assert resp.content_type == content_type
    assert resp.charset == "utf-8"
    assert await resp.text() == expected


async def test_index_tmpl_serves_folder(client: Any) -> None:
    resp = await client.get("/?q=root")
    assert await resp.text() == "<p>root</p>"


# ---------------------------------------------------------------- escaping and names


async def test_request_values_are_escaped_in_html(client: Any) -> None:
    resp = await client.get("/index.tmpl", params={"q": "<script>alert(1)</script>"})
    text = await resp.text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_js_and_css_are_not_html_escaped_but_html_includes_are(client: Any) -> None:
    resp = await client.get("/mixed.tmpl.js", params={"q": "a<b"})
    assert await resp.text() == "a<b|a&lt;b"


async def test_namespace_names_are_available(client: Any) -> None:
    resp = await client.get("/names.tmpl", params={"n": "7"})
    text = await resp.text()
    host = f"{client.server.host}:{client.server.port}"
    assert text == (f"path=/names.tmpl|abs=http://{host}/x.tmpl|cfg=Demo site|n=7|day=10|uuid=21")


# ---------------------------------------------------------------- include / extends


async def test_include_is_relative_to_the_including_file(client: Any) -> None:
    resp = await client.get("/sub/page.tmpl")
    assert await resp.text() == "[SUB-PART]"


async def test_include_and_extends_search_up_the_folders(client: Any) -> None:
    resp = await client.get("/sub/deep/page.tmpl")
    # part.tmpl: nearest is /sub/part.tmpl; top.tmpl and base.tmpl only at the top.
    assert await resp.text() == "<main>SUB-PART|TOP-ONLY</main>"


async def test_absolute_names_are_urls(client: Any) -> None:
    resp = await client.get("/sub/deep/abs.tmpl")
    assert await resp.text() == "TOP-PART"


async def test_include_across_roots(client: Any) -> None:
    resp = await client.get("/cross.tmpl")
    # shared.tmpl lives in the second root; its own include searches from /other/.
    assert await resp.text() == "SHARED TOP-PART"
    resp = await client.get("/other/local.tmpl")
    assert await resp.text() == "SHARED TOP-PART"


async def test_static_files_can_be_included(client: Any) -> None:
    resp = await client.get("/uses_static.tmpl")
    assert await resp.text() == "<header>static header</header>"


@pytest.mark.parametrize(
    "url",
    [
        "/evil/dotdot.tmpl",
        "/evil/encoded.tmpl",
        "/evil/fspath.tmpl",
        "/evil/conf.tmpl",
        "/evil/mdsource.tmpl",
    ],
)
async def test_includes_outside_the_roots_are_refused(client: Any, url: str) -> None:
    resp = await client.get(url)
    text = await resp.text()
    assert resp.status == 404  # the answer of a missing file (SPEC §16)
    assert "TOP SECRET" not in text
    assert "cookie_secret" not in text and "markdown source" not in text


async def test_refused_include_with_ignore_missing_renders_nothing(client: Any) -> None:
    resp = await client.get("/evil/ignored.tmpl")
    assert await resp.text() == "ok"


# ---------------------------------------------------------------- changes


async def test_changed_template_is_used_on_next_request(client: Any, site: Path) -> None:
    assert await (await client.get("/page.html.tmpl")).text() == "<p>html 2</p>"
    bump(site / "wwwroot" / "page.html.tmpl", "<p>changed {{ 2 * 3 }}</p>")
    assert await (await client.get("/page.html.tmpl")).text() == "<p>changed 6</p>"


async def test_changed_included_template_is_used_on_next_request(client: Any, site: Path) -> None:
    assert (
        await (await client.get("/sub/deep/page.tmpl")).text() == "<main>SUB-PART|TOP-ONLY</main>"
    )
    bump(site / "wwwroot" / "top.tmpl", "TOP-EDITED")
    bump(site / "wwwroot" / "base.tmpl", "<article>{% block body %}{% endblock %}</article>")
    text = await (await client.get("/sub/deep/page.tmpl")).text()
    assert text == "<article>SUB-PART|TOP-EDITED</article>"


async def test_a_closer_include_added_later_wins(client: Any, site: Path) -> None:
    assert (
        await (await client.get("/sub/deep/page.tmpl")).text() == "<main>SUB-PART|TOP-ONLY</main>"
    )
    (site / "wwwroot" / "sub" / "deep" / "top.tmpl").write_text("DEEP-TOP")
    text = await (await client.get("/sub/deep/page.tmpl")).text()
    assert text == "<main>SUB-PART|DEEP-TOP</main>"


async def test_syntax_error_is_a_500_and_recovers(client: Any, site: Path) -> None:
    bump(site / "wwwroot" / "page.html.tmpl", "{% if %}")
    resp = await client.get("/page.html.tmpl")
    assert resp.status == 500
    assert "if" not in (await resp.text()).split("(")[0]
    bump(site / "wwwroot" / "page.html.tmpl", "fixed")
    assert await (await client.get("/page.html.tmpl")).text() == "fixed"


# ---------------------------------------------------------------- per-site state


async def test_each_site_has_its_own_environment(ahcore_client: Any, make_site: Any) -> None:
    one = await ahcore_client(make_site(config=CONFIG, files={"wwwroot/a.tmpl": "one"}))
    two = await ahcore_client(make_site(config=CONFIG, files={"wwwroot/a.tmpl": "two"}))
    env_one, env_two = one.app[ENVIRONMENT_KEY], two.app[ENVIRONMENT_KEY]
    assert isinstance(env_one, UrlEnvironment) and env_one is not env_two
    assert await (await one.get("/a.tmpl")).text() == "one"
    assert await (await two.get("/a.tmpl")).text() == "two"


async def test_hot_reload_clears_the_template_cache(client: Any) -> None:
    from ahcore.api import get_site

    await client.get("/sub/deep/page.tmpl")  # sync-safe: its includes are compiled sync
    envs = client.app[ENVIRONMENT_KEY], client.app[SYNC_ENVIRONMENT_KEY]
    assert len(envs[1].cache) > 0
    await get_site(client.app).hot_reload({"source": "test"})
    assert [len(env.cache) for env in envs] == [0, 0]


# ---------------------------------------------------------------- errors and concurrency


async def test_broken_template_is_compiled_once_per_change(
    client: Any, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiles: list[str | None] = []
    real_compile = UrlEnvironment.compile

    def counting_compile(
        self: UrlEnvironment, source: Any, name: Any = None, *a: Any, **kw: Any
    ) -> Any:
        compiles.append(name)
        return real_compile(self, source, name, *a, **kw)

    monkeypatch.setattr(UrlEnvironment, "compile", counting_compile)
    bump(site / "wwwroot" / "page.html.tmpl", "{% if %}")
    for _ in range(3):
        assert (await client.get("/page.html.tmpl")).status == 500
    assert compiles == ["/page.html.tmpl"]


async def test_errors_are_logged_with_the_template_file_and_line(
    client: Any, site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bump(site / "wwwroot" / "page.html.tmpl", "line one\n{{ 1 // 0 }}\n")
    resp = await client.get("/page.html.tmpl")
    text = await resp.text()
    assert resp.status == 500
    assert "ZeroDivisionError" not in text and "page.html.tmpl" not in text
    logged = caplog.text
    assert "ZeroDivisionError" in logged
    assert f'File "{site / "wwwroot" / "page.html.tmpl"}", line 2' in logged


async def test_concurrent_requests_keep_their_own_values(client: Any) -> None:
    import asyncio

    async def fetch(i: int) -> str:
        resp = await client.get("/index.tmpl", params={"q": f"v{i}"})
        return await resp.text()

    results = await asyncio.gather(*(fetch(i) for i in range(40)))
    assert results == [f"<p>v{i}</p>" for i in range(40)]


async def test_an_include_follows_a_reload_of_website_paths(make_site, ahcore_client):
    """After a hot reload that swaps the content roots, includes resolve in the new roots.

    The loader asks the site on each lookup (``SiteView.resolve``), so it never
    keeps the resolver of the config it was built with.
    """
    site_dir = make_site(
        config={
            "website": {
                "paths": [["$[workdir]$/wwwroot", ""], ["$[workdir]$/old", "/shared"]],
                "processors": [[".tmpl", "tmpl"]],
            },
            "hot_reload": {"enabled": True, "interval": 0.05},
        },
        files={
            "wwwroot/page.tmpl": '{% include "/shared/part.tmpl" %}',
            "old/part.tmpl": "OLD",
            "new/part.tmpl": "NEW",
        },
    )
    client = await ahcore_client(site_dir)
    assert await (await client.get("/page.tmpl")).text() == "OLD"
    cfg_path = site_dir / "conf" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["website"]["paths"][1] = ["$[workdir]$/new", "/shared"]
    cfg_path.write_text(json.dumps(cfg))
    st = cfg_path.stat()
    os.utime(cfg_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    for _ in range(100):  # the reloader polls every 0.05 s
        text = await (await client.get("/page.tmpl")).text()
        if text != "OLD":
            break
        await asyncio.sleep(0.05)
    assert text == "NEW"


# ---------------------------------------------------------------- ahserver's tmpl_engine, i18nDict


async def test_tmpl_engine_renders_site_templates_and_strings_for_scripts(
    make_site: Any, ahcore_client: Any
) -> None:
    # ahserver's myTE.TemplateEngine as ``tmpl_engine``: render(name, **globals), renders(text, data)
    site = make_site(
        config={
            "website": {"paths": [["$[workdir]$/wwwroot", ""]],
                        "processors": [[".tmpl", "tmpl"], [".dspy", "dspy"]]},
            "plugins": {"tmpl": True, "dspy": True},
        },
        files={
            "wwwroot/card.tmpl": "<b>{{ who }}</b>",
            "wwwroot/r.dspy": (
                "a = await tmpl_engine.render('/card.tmpl', who=params_kw.who)\n"
                "b = await tmpl_engine.renders('{{ x }}+{{ y }}', {'x': 1, 'y': '<i>'})\n"
                "return {'a': a, 'b': b}\n"
            ),
        },
    )
    client = await ahcore_client(site)
    data = await (await client.get("/r.dspy", params={"who": "<ann>"})).json()
    assert data == {"a": "<b>&lt;ann&gt;</b>", "b": "1+&lt;i&gt;"}  # the site's autoescaping


async def test_i18n_dict_is_json_a_page_can_write_into_a_script(
    make_site: Any, ahcore_client: Any
) -> None:
    # ahserver's i18nDict() is json.dumps(table): ``var t = {{ i18nDict() }};``
    site = make_site(
        config={"website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".tmpl", "tmpl"]]},
                "plugins": {"tmpl": True}},
        files={
            "i18n/zh/msg.txt": "Save:保存\nBad:</script><b>'&\n",
            "wwwroot/t.tmpl": "<script>var t = {{ i18nDict() }};</script>",
        },
    )
    client = await ahcore_client(site)
    text = await (await client.get("/t.tmpl", headers={"Accept-Language": "zh"})).text()
    body = text.removeprefix("<script>var t = ").removesuffix(";</script>")
    assert json.loads(body) == {"Save": "保存", "Bad": "</script><b>'&"}
    assert "</script><b>" not in body and "&#34;" not in body and "&quot;" not in body
