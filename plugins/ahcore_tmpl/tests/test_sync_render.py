"""Sync and async rendering through a running site: which path renders, same output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2
import pytest
from ahcore_tmpl import SYNC_ENVIRONMENT_KEY, TmplProcessor

from ahcore.api import RequestContext, get_site, hookimpl


class NamesPlugin:
    """Globals for the tests, and a per-request value that can shadow one of them."""

    @hookimpl
    def env_globals(self, app: Any) -> dict[str, Any]:
        async def slow_hello(name: str) -> str:
            return f"hello {name}"

        def shout(text: str) -> str:
            return text.upper() + "!"

        return {"slow_hello": slow_hello, "shout": shout}

    @hookimpl
    def request_namespace(self, context: RequestContext) -> dict[str, Any]:
        if "X-Shadow" not in context.request.headers:
            return {}

        async def shout(text: str) -> str:  # replaces the global for this request
            return "async " + text

        return {"shout": shout}


CONFIG: dict[str, Any] = {
    "website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".tmpl", "tmpl"]]},
    "plugins": {"tmpl": True, "names": True},
    "site_title": "Demo site",
}

SYNC_PAGE = (
    '{% import "macros.tmpl" as m %}{% from "macros.tmpl" import em %}'
    "{% macro cell(v) %}<td>{{ v }}</td>{% endmacro %}"
    "<h1>{{ (params_kw.name or 'visitor') | upper }} {{ shout('hi') }}</h1>\n"
    "{% for i in range(3) %}<tr class=\"{{ loop.cycle('odd', 'even') }}\">"
    "{{ cell(i) }}{{ cell('<b>%d</b>' % (i * i)) }}{{ loop.index }}/{{ loop.length }}</tr>\n"
    "{% endfor %}{{ ['b', 'a'] | sort | join(',') }} {{ dict(k=1) | tojson }} "
    "{{ configValue('.site_title') }} {{ json.dumps([1, 2]) }} {{ m.box('x') }} {{ em('y') }}\n"
    '{% include "part.tmpl" %}'
)

FILES: dict[str, str] = {
    "wwwroot/sync/page.tmpl": SYNC_PAGE,
    "wwwroot/sync/part.tmpl": "[part {{ 'x' | upper }}]",
    "wwwroot/sync/macros.tmpl": (
        "{% macro box(v) %}[{{ v }}]{% endmacro %}{% macro em(v) %}<em>{{ v }}</em>{% endmacro %}"
    ),
    "wwwroot/sync/base.tmpl": "<main>{% block body %}base{% endblock %}</main>",
    "wwwroot/sync/child.tmpl": (
        '{% extends "base.tmpl" %}{% block body %}{{ super() }}+child {{ terminalType }}'
        "{% endblock %}"
    ),
    "wwwroot/sync/includes_async.tmpl": '<{% include "/async/user.tmpl" %}>',
    "wwwroot/sync/callee.tmpl": "{{ params_kw.v if params_kw.v is string else 'other' }}",
    "wwwroot/async/path_call.tmpl": "({{ path_call('/sync/part.tmpl') }})",
    "wwwroot/async/user.tmpl": "user={{ get_user() }}",
    "wwwroot/async/slow.tmpl": "{{ slow_hello('you') }}",
    "wwwroot/async/request.tmpl": "{{ request.method }} {{ request.text() }}",
    "wwwroot/async/unknown.tmpl": "{{ nosuch() }}",
    "wwwroot/async/calls_callee.tmpl": (
        "{{ path_call('/sync/callee.tmpl', v='1') }}|{{ path_call('/sync/callee.tmpl', v=shout) }}"
    ),
}


@pytest.fixture
def site(make_site: Any) -> Path:
    return make_site(config=CONFIG, files=FILES)


@pytest.fixture
async def client(ahcore_client: Any, site: Path) -> Any:
    return await ahcore_client(site, extra_plugins={"names": NamesPlugin()})


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every top-level render, as ("sync" | "async", template name)."""
    seen: list[tuple[str, str]] = []
    real_render, real_render_async = jinja2.Template.render, jinja2.Template.render_async

    def render(self: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        seen.append(("sync", str(self.name)))
        return real_render(self, *args, **kwargs)

    async def render_async(self: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        seen.append(("async", str(self.name)))
        return await real_render_async(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Template, "render", render)
    monkeypatch.setattr(jinja2.Template, "render_async", render_async)
    return seen


def bump(path: Path, text: str) -> None:
    """Rewrite ``path`` and move its mtime forward, as an editor saving it would."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def processor_of(client: Any, site: Path, url: str) -> TmplProcessor:
    path = site / "wwwroot" / url.lstrip("/")
    processor = get_site(client.app).processor_cache.fresh(path, path.stat())
    assert isinstance(processor, TmplProcessor)
    return processor


async def text_of(client: Any, url: str, **kwargs: Any) -> str:
    resp = await client.get(url, **kwargs)
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def forced_async(client: Any, url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The page rendered by the async path, for comparison."""
    with monkeypatch.context() as patch:
        patch.setattr(TmplProcessor, "render_mode", lambda self, *a, **k: "async")
        return await text_of(client, url)


# ---------------------------------------------------------------- sync path


async def test_sync_safe_page_renders_sync_with_the_same_output(
    client: Any, site: Path, renders: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = await text_of(client, "/sync/page.tmpl?name=<ann>")
    assert renders == [("sync", "/sync/page.tmpl")]
    processor = processor_of(client, site, "/sync/page.tmpl")
    assert processor.mode == "sync"
    assert processor.analysis is not None and processor.analysis.reason is None
    assert "<h1>&lt;ANN&gt; HI!</h1>" in text
    assert '<tr class="even"><td>1</td><td>&lt;b&gt;1&lt;/b&gt;</td>2/3</tr>' in text
    assert 'a,b {"k": 1} Demo site [1, 2] [x] <em>y</em>\n[part X]' in text

    renders.clear()
    monkeypatch.setattr(TmplProcessor, "render_mode", lambda self, *a, **k: "async")
    assert await text_of(client, "/sync/page.tmpl?name=<ann>") == text
    assert renders == [("async", "/sync/page.tmpl")]


async def test_extends_and_request_namespace_values_stay_sync(
    client: Any, site: Path, renders: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile"}
    text = await text_of(client, "/sync/child.tmpl", headers=headers)
    assert text == "<main>base+child iphone</main>"
    assert renders == [("sync", "/sync/child.tmpl")]
    with monkeypatch.context() as patch:
        patch.setattr(TmplProcessor, "render_mode", lambda self, *a, **k: "async")
        assert await text_of(client, "/sync/child.tmpl", headers=headers) == text


async def test_the_sync_environment_shares_settings_but_not_the_cache(client: Any) -> None:
    from ahcore_tmpl import ENVIRONMENT_KEY

    env, sync = client.app[ENVIRONMENT_KEY], client.app[SYNC_ENVIRONMENT_KEY]
    assert env.is_async and not sync.is_async
    assert sync.filters is env.filters and sync.tests is env.tests and sync.globals is env.globals
    assert sync.autoescape is env.autoescape and sync.auto_reload
    assert sync.loader.inner is env.loader  # type: ignore[attr-defined]
    assert sync.cache is not env.cache


# ---------------------------------------------------------------- async path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/async/path_call.tmpl", "([part X])"),
        ("/async/user.tmpl", "user=None"),
        ("/async/slow.tmpl", "hello you"),
        ("/sync/includes_async.tmpl", "<user=None>"),
    ],
)
async def test_templates_needing_async_render_async(
    client: Any, site: Path, renders: list[tuple[str, str]], url: str, expected: str
) -> None:
    assert await text_of(client, url) == expected
    assert renders[0] == ("async", url)
    assert "coroutine" not in expected


async def test_a_page_is_sync_safe_on_its_own_but_its_include_is_not(
    client: Any, site: Path
) -> None:
    await text_of(client, "/sync/includes_async.tmpl")
    processor = processor_of(client, site, "/sync/includes_async.tmpl")
    assert processor.mode == "sync"  # the file itself; the include decides per request
    included = client.app[SYNC_ENVIRONMENT_KEY].get_template("/async/user.tmpl")
    assert "get_user" in included.ahcore_analysis.reason


async def test_request_methods_are_awaited(client: Any, renders: list[tuple[str, str]]) -> None:
    resp = await client.post("/async/request.tmpl", data=b"body text")
    assert await resp.text() == "POST body text"
    assert renders == [("async", "/async/request.tmpl")]


async def test_calling_an_unknown_name_fails_as_before(
    client: Any, renders: list[tuple[str, str]]
) -> None:
    resp = await client.get("/async/unknown.tmpl")
    assert resp.status == 500
    assert renders == [("async", "/async/unknown.tmpl")]


async def test_a_global_replaced_per_request_renders_async(
    client: Any, renders: list[tuple[str, str]]
) -> None:
    text = await text_of(client, "/sync/page.tmpl", headers={"X-Shadow": "1"})
    assert "<h1>VISITOR async hi</h1>" in text
    assert renders == [("async", "/sync/page.tmpl")]


async def test_path_call_values_must_be_plain_data_for_sync(
    client: Any, renders: list[tuple[str, str]]
) -> None:
    assert await text_of(client, "/async/calls_callee.tmpl") == "1|other"
    assert renders == [
        ("async", "/async/calls_callee.tmpl"),
        ("sync", "/sync/callee.tmpl"),  # v="1"
        ("async", "/sync/callee.tmpl"),  # v=a function: not plain data
    ]


# ---------------------------------------------------------------- changes


async def test_editing_in_an_async_call_switches_to_async(
    client: Any, site: Path, renders: list[tuple[str, str]]
) -> None:
    page = site / "wwwroot" / "sync" / "part.tmpl"
    assert await text_of(client, "/sync/part.tmpl") == "[part X]"
    assert renders.pop() == ("sync", "/sync/part.tmpl")
    bump(page, "[part {{ slow_hello('edit') }}]")
    assert await text_of(client, "/sync/part.tmpl") == "[part hello edit]"
    assert renders.pop() == ("async", "/sync/part.tmpl")
    assert processor_of(client, site, "/sync/part.tmpl").mode == "async"
    bump(page, "[part back]")
    assert await text_of(client, "/sync/part.tmpl") == "[part back]"
    assert renders.pop() == ("sync", "/sync/part.tmpl")


async def test_editing_an_include_switches_the_page_to_async(
    client: Any, site: Path, renders: list[tuple[str, str]]
) -> None:
    text = await text_of(client, "/sync/page.tmpl")
    assert text.endswith("[part X]")
    assert renders.pop() == ("sync", "/sync/page.tmpl")
    bump(site / "wwwroot" / "sync" / "part.tmpl", "[part {{ slow_hello('inc') }}]")
    text = await text_of(client, "/sync/page.tmpl")
    assert text.endswith("[part hello inc]")
    assert renders.pop() == ("async", "/sync/page.tmpl")
    assert processor_of(client, site, "/sync/page.tmpl").mode == "sync"  # unchanged file


async def test_an_include_changed_after_the_check_still_renders_right(
    client: Any, site: Path, renders: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await text_of(client, "/sync/page.tmpl")).endswith("[part X]")
    # As if the include were edited between the per-request check and the render.
    monkeypatch.setattr(TmplProcessor, "render_mode", lambda self, *a, **k: "sync")
    bump(site / "wwwroot" / "sync" / "part.tmpl", "[part {{ slow_hello('race') }}]")
    renders.clear()
    assert (await text_of(client, "/sync/page.tmpl")).endswith("[part hello race]")
    assert renders == [("sync", "/sync/page.tmpl"), ("async", "/sync/page.tmpl")]
