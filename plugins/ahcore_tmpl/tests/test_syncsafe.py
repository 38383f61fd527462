"""The sync-safety analysis on its own: which template sources may render without async."""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any

import jinja2
import pytest
from ahcore_tmpl.syncsafe import (
    Analysis,
    NamespaceCheck,
    analyze,
    is_plain_data,
    is_sync_callable,
)


def plain(text: str) -> str:
    return text.upper()


async def fetch(url: str) -> str:
    return url


async def agen() -> Any:
    yield 1


class AsyncCallable:
    async def __call__(self) -> int:
        return 1


class Awaitable:
    def __await__(self) -> Any:
        yield


class Opaque:
    attribute = 1


GLOBALS: dict[str, Any] = {
    "i18n": plain,
    "configValue": plain,
    "path_call": fetch,
    "get_user": fetch,
    "agen": agen,
    "acall": AsyncCallable(),
    "Awaitable": Awaitable,
    "partial_async": functools.partial(fetch, "x"),
    "cached": functools.lru_cache(maxsize=None)(plain),
    "json": json,
    "datetime": datetime,
    "resource": Opaque(),
    "title": "Site",
    "int": int,
}


@pytest.fixture
def env() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True)

    async def afilter(value: Any) -> Any:
        return value

    env.filters["afilter"] = afilter
    env.tests["atest"] = afilter
    return env


def verdict(env: jinja2.Environment, source: str) -> Analysis:
    return analyze(env.parse(source), env, GLOBALS)


SYNC = [
    "plain text",
    "{{ x }} {{ x.y[1] }} {{ title }}",
    "{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{{ loop.index }}/{{ loop.length }}{% endfor %}",
    "{{ ('item %d' % 3) | upper }} {{ '<b>%d</b>' % (2 * 2) }}",
    "{{ params_kw.name or 'visitor' }} {{ params_kw['q'] }}",
    "{{ i18n('x') }} {{ configValue('.a') }} {{ cached('x') }} {{ int('3') }}",
    "{{ json.dumps([1]) }} {{ datetime.date.today() }} {{ ', '.join(['a', 'b']) }}",
    "{{ dict(a=1) | tojson }} {{ lipsum(1) }} {{ cycler('a').current }}",
    "{% set ns = namespace(a=1) %}{% set ns.a = 2 %}{{ ns.a }}",
    "{% macro m(a, b=i18n('x')) %}{{ a }}{{ caller() }}{{ varargs }}{% endmacro %}"
    "{% call m(1) %}x{% endcall %}{{ m(2) }}",
    "{% for x in tree recursive %}{{ x.name }}{{ loop(x.children) }}{% endfor %}",
    "{% filter upper %}x{% endfilter %}{% set v | upper %}y{% endset %}{{ v }}",
    "{% autoescape false %}{{ x }}{% endautoescape %}{% with a = 1 %}{{ a }}{% endwith %}",
    "{{ items | map('upper') | join(',') }} {{ items | selectattr('a', 'equalto', 1) | list }}",
    "{{ items | map(attribute='a') | sum }} {{ x is defined }} {{ x is divisibleby 3 }}",
    "{{ request.path }} {{ request.query.q }} {{ request.headers['Host'] }} {{ terminalType }}",
    "{% include 'part.tmpl' %}{% include 'gone.tmpl' ignore missing %}",
    "{% extends 'base.tmpl' %}{% block b %}{{ super() }}{{ self.c() }}{% endblock %}",
    "{% import 'macros.tmpl' as m %}{{ m.f(1) }}{% from 'macros.tmpl' import g as h %}{{ h() }}",
    "{% if x %}{{ i18n(x) }}{% elif y %}b{% else %}c{% endif %}{{ x if y else z }}",
]

ASYNC = [
    ("{{ path_call('/x.dspy') }}", "path_call"),
    ("{{ get_user() }}", "get_user"),
    ("{{ agen() }}", "agen"),
    ("{{ acall() }}", "acall"),
    ("{{ Awaitable() }}", "Awaitable"),
    ("{{ partial_async() }}", "partial_async"),
    ("{{ nosuch() }}", "nosuch"),
    ("{{ request.json() }}", "request"),
    ("{{ request.content }}", "request.content"),
    ("{{ request['x'] }}", "request"),
    ("{{ i18n(request) }}", "request"),
    ("{{ params_kw.get('a') }}", "params_kw"),
    ("{{ x.upper() }}", "upper"),
    ("{{ i18n('x').upper() }}", "upper"),
    ("{{ i18n('x')() }}", "result of an expression"),
    ("{{ resource.attribute }}", "resource"),
    ("{% set f = i18n %}{{ f('x') }}", "variable"),
    ("{% set i18n = path_call %}{{ i18n('x') }}", "variable"),
    ("{% macro m(f) %}{{ f() }}{% endmacro %}", "variable"),
    ("{% for i in x %}{{ i18n(loop) }}{% endfor %}", "loop"),
    ("{% for i in x %}{{ loop.cycle }}{% endfor %}", "loop.cycle"),
    ("{{ loop.cycle('a') }}", "loop"),
    ("{{ caller() }}", "caller"),
    ("{{ super() }}", "super"),
    ("{% macro m() %}{% endmacro %}{{ i18n(m) }}", "macro"),
    ("{% macro m() %}{{ i18n(caller) }}{% endmacro %}", "caller"),
    ("{{ x | afilter }}", "afilter"),
    ("{{ x is atest }}", "atest"),
    ("{{ items | map('afilter') }}", "afilter"),
    ("{{ items | map(name) }}", "computed"),
    ("{% include name %}", "computed"),
    ("{% extends layout %}", "computed"),
    ("{% include ['a.tmpl', 'b.tmpl'] %}", "computed"),
    ("{% import 'm.tmpl' as m %}{{ m }}", "imported"),
    ("{% import 'm.tmpl' as m %}{{ m.f }}", "imported"),
]


@pytest.mark.parametrize("source", SYNC)
def test_sync_safe_sources(env: jinja2.Environment, source: str) -> None:
    analysis = verdict(env, source)
    assert analysis.reason is None and analysis.sync_safe


@pytest.mark.parametrize(("source", "why"), ASYNC)
def test_sources_that_need_async(env: jinja2.Environment, source: str, why: str) -> None:
    analysis = verdict(env, source)
    assert not analysis.sync_safe
    assert why in (analysis.reason or "")


def test_dependencies_and_exports_are_recorded(env: jinja2.Environment) -> None:
    analysis = verdict(
        env,
        "{% extends 'base.tmpl' %}{% include 'p.tmpl' ignore missing %}"
        "{% import 'm.tmpl' as m %}{{ m.f() }}{{ m.g() }}"
        "{% macro top() %}{% endmacro %}{% if x %}{% macro inner() %}{% endmacro %}{% endif %}"
        "{% for i in x %}{% macro local() %}{% endmacro %}{% endfor %}",
    )
    assert [(d.kind, d.name, d.ignore_missing, d.macros) for d in analysis.dependencies] == [
        ("extends", "base.tmpl", False, frozenset()),
        ("include", "p.tmpl", True, frozenset()),
        ("import", "m.tmpl", False, frozenset({"f", "g"})),
    ]
    assert analysis.exported_macros == {"top", "inner"}


def test_namespace_check_is_recorded(env: jinja2.Environment) -> None:
    analysis = verdict(env, "{{ i18n(title) }}{{ range(2) }}{{ terminalType }}{{ params_kw.a }}")
    check = analysis.check
    assert dict(check.same) == {"i18n": plain, "title": "Site"}
    assert check.absent == ("range",)
    assert check.plain == ("terminalType",)
    namespace = dict(GLOBALS, params_kw={}, terminalType="pc")
    assert check.allows(namespace)
    assert not check.allows(dict(namespace, i18n=fetch))  # replaced per request
    assert not check.allows(dict(namespace, range=fetch))  # Jinja2's range shadowed
    assert not check.allows(dict(namespace, terminalType=Opaque()))  # not plain data
    assert check.allows({k: v for k, v in namespace.items() if k != "terminalType"})


def test_merged_checks_disagreeing_never_pass() -> None:
    one = NamespaceCheck(same=(("a", plain),))
    two = NamespaceCheck(same=(("a", fetch),))
    assert not NamespaceCheck.merge([one, two]).allows({"a": plain})
    assert NamespaceCheck.merge([one, one]).allows({"a": plain})


def test_callables() -> None:
    assert is_sync_callable(plain) and is_sync_callable(range) and is_sync_callable(dict)
    assert is_sync_callable(functools.partial(plain, "x"))
    assert is_sync_callable(functools.lru_cache(maxsize=None)(plain))
    assert is_sync_callable(datetime.date.today) and is_sync_callable(json.dumps)
    assert not is_sync_callable(fetch)
    assert not is_sync_callable(functools.partial(fetch, "x"))
    assert not is_sync_callable(AsyncCallable())
    assert not is_sync_callable(Awaitable)
    assert not is_sync_callable(agen)
    assert not is_sync_callable(json)  # a module is not a function

    @functools.wraps(fetch)
    def wrapper(*args: Any) -> Any:  # a sync wrapper returning the coroutine
        return fetch(*args)

    assert not is_sync_callable(wrapper)


def test_plain_data() -> None:
    assert is_plain_data({"a": [1, 2.5, None, ("x", b"y")], "d": datetime.date(2024, 1, 1)})
    assert not is_plain_data({"a": [Opaque()]})
    assert not is_plain_data(list(range(100)), budget=10)


class FakeRequest:
    path = "/p"
    query = {"q": "1"}
    headers = {"Host": "h"}


LOADER = jinja2.DictLoader(
    {
        "part.tmpl": "[part {{ x }}]",
        "base.tmpl": "<{% block b %}base{% endblock %}{% block c %}c{% endblock %}>",
        "macros.tmpl": "{% macro f(a) %}f{{ a }}{% endmacro %}{% macro g() %}g{% endmacro %}",
    }
)


@pytest.mark.parametrize("source", SYNC)
def test_sync_safe_sources_render_the_same_in_both_modes(source: str) -> None:
    import asyncio
    import random

    namespace = dict(
        GLOBALS,
        x="<x>",
        y=0,
        z="z",
        items=[{"a": 1}, {"a": 2}],
        tree=[{"name": "n", "children": [{"name": "m", "children": []}]}],
        request=FakeRequest(),
        params_kw={"name": "ann", "q": "1"},
        terminalType="pc",
    )
    namespace.pop("datetime")  # today's date could change between the renders
    results = []
    for is_async in (False, True):
        env = jinja2.Environment(autoescape=True, loader=LOADER, enable_async=is_async)
        template = env.from_string(source.replace("datetime.date.today()", "1"))
        random.seed(0)  # lipsum
        try:
            if is_async:
                results.append(asyncio.run(template.render_async(namespace)))
            else:
                results.append(template.render(namespace))
        except Exception as exc:  # the same error in both modes counts as the same result
            results.append(f"{type(exc).__name__}: {exc}")
    assert results[0] == results[1]
    assert "coroutine" not in results[0]
