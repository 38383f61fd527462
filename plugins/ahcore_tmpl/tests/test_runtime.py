"""UrlContext and UrlTemplate behave as Jinja2's own classes: same output, same errors.

Each case renders the same source through stock Jinja2 and through an
environment using ahcore-tmpl's classes, sync and async, and through a site.
"""

from __future__ import annotations

import asyncio
from typing import Any

import jinja2
import pytest
from ahcore_tmpl.environment import UrlEnvironment
from ahcore_tmpl.runtime import UrlContext, UrlTemplate


@jinja2.pass_context
def ctx_name(context: Any, key: str) -> str:
    """A context function: sees loop variables through the derived context."""
    return f"{key}={context.get(key)!r}"


@jinja2.pass_eval_context
def eval_flag(eval_ctx: Any) -> str:
    return f"autoescape={eval_ctx.autoescape}"


@jinja2.pass_environment
def env_kind(environment: Any) -> str:
    return f"undefined={environment.undefined.__name__}"


class CallableWithContext:
    """A callable class whose ``__call__`` takes the context (Jinja2 passes it)."""

    @jinja2.pass_context
    def __call__(self, context: Any) -> str:
        return f"title={context.get('title')}"


class PlainCallable:
    def __call__(self, v: int) -> int:
        return v * 2


def stops() -> None:
    raise StopIteration


def kwargs_of(**kwargs: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()))


GLOBALS: dict[str, Any] = {
    "ctx_name": ctx_name,
    "eval_flag": eval_flag,
    "env_kind": env_kind,
    "with_context": CallableWithContext(),
    "plain_callable": PlainCallable(),
    "stops": stops,
    "kwargs_of": kwargs_of,
    "title": "<T>",
}

TEMPLATES: dict[str, str] = {
    "page": (
        "{% for x in [1, 2] %}{% set z = x * 10 %}{{ ctx_name('z') }} {{ loop.cycle('a', 'b') }};"
        "{% endfor %}"
        "{% set y = 5 %}{{ ctx_name('y') }}|{{ eval_flag() }}|{{ env_kind() }}|"
        "{{ with_context() }}|{{ plain_callable(4) }}|[{{ stops() }}]|{{ kwargs_of(a=1, b=2) }}|"
        "{{ range(3) | list }}|{{ dict(k=1) }}|{{ lipsum(1, false, 3, 4) | length > 0 }}|"
        "{% autoescape false %}{{ eval_flag() }}{% endautoescape %}|"
        "{% macro m(v) %}<{{ v }}:{{ ctx_name('title') }}>{% endmacro %}{{ m('<v>') }}|"
        "{% import 'lib' as lib with context %}{{ lib.show() }}|{{ lib.exported }}|"
        "{% import 'lib' as lib2 %}{{ lib2.show() }}|{{ lib2 | attr('title') is defined }}"
    ),
    "lib": (
        "{% set exported = 'e' %}{% macro show() %}{{ title }}/{{ ctx_name('title') }}{% endmacro %}"
    ),
    "missing_call": "{{ nosuch() }}",
    "missing_attr_call": "{{ title.nosuch() }}",
}


class OurEnvironment(jinja2.Environment):
    context_class = UrlContext
    template_class = UrlTemplate


def render_with(env_class: type[jinja2.Environment], name: str, use_async: bool) -> str:
    env = env_class(loader=jinja2.DictLoader(TEMPLATES), autoescape=True, enable_async=use_async)
    env.globals.update(GLOBALS)
    template = env.get_template(name)
    if use_async:
        return asyncio.run(template.render_async(title="<T>"))
    return template.render(title="<T>")


def outcome(env_class: type[jinja2.Environment], name: str, use_async: bool) -> tuple[str, str]:
    try:
        return "ok", render_with(env_class, name, use_async)
    except Exception as exc:  # the same error, same message
        return type(exc).__name__, str(exc)


def test_the_site_environment_uses_these_classes() -> None:
    assert UrlEnvironment.context_class is UrlContext
    assert UrlEnvironment.template_class is UrlTemplate


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("name", ["page", "missing_call", "missing_attr_call"])
def test_calls_render_as_with_stock_jinja2(name: str, use_async: bool) -> None:
    ours = outcome(OurEnvironment, name, use_async)
    assert ours == outcome(jinja2.Environment, name, use_async)
    if name == "page":
        assert ours[0] == "ok"
        assert "z=10 a;z=20 b;y=5|autoescape=True|undefined=Undefined|title=&lt;T&gt;|8|[]|a=1,b=2|" in ours[1]
        assert "autoescape=False" in ours[1] and "|<&lt;v&gt;:title=&#39;&lt;T&gt;&#39;>|" in ours[1]
    else:
        assert ours[0] == "UndefinedError"


def test_globals_keys_are_the_template_globals_read_lazily() -> None:
    env = OurEnvironment(loader=jinja2.DictLoader(TEMPLATES))
    env.globals.update(GLOBALS)
    template = env.get_template("lib")
    context = template.new_context({"title": "x"})
    assert isinstance(context, UrlContext)
    assert context.globals_keys == set(template.globals)
    context.globals_keys = {"a"}
    assert context.globals_keys == {"a"}
    assert UrlContext(env, {}, None, {}).globals_keys == set()


async def test_context_functions_and_imports_through_a_site(make_site: Any, ahcore_client: Any) -> None:
    site = make_site(
        {"plugins": {"tmpl": True}},
        {
            "wwwroot/page.tmpl": (
                "{% import 'lib.tmpl' as lib with context %}"
                "{% for i in range(2) %}{{ lib.show(i) }}{% endfor %}|{{ lib.exported }}|"
                "{{ params_kw.q }}"
            ),
            "wwwroot/lib.tmpl": (
                "{% set exported = params_kw.q ~ '!' %}"
                "{% macro show(v) %}<{{ v }}:{{ params_kw.q }}>{% endmacro %}"
            ),
        },
    )
    client = await ahcore_client(site)
    resp = await client.get("/page.tmpl", params={"q": "<q>"})
    assert resp.status == 200
    assert await resp.text() == "<0:&lt;q&gt;><1:&lt;q&gt;>|&lt;q&gt;!|&lt;q&gt;"


def jinja2_callee_and_marker(obj: Any) -> tuple[Any, object]:
    """Jinja2's own steps (``Context.call`` and ``_PassArg.from_obj``), for comparison."""
    if hasattr(obj, "__call__") and getattr(obj.__call__, "jinja_pass_arg", None) is not None:  # noqa: B004
        obj = obj.__call__
    return obj, (obj.jinja_pass_arg if hasattr(obj, "jinja_pass_arg") else None)


class Methods:
    @jinja2.pass_context
    def marked(self, context: Any) -> None: ...

    def plain(self) -> None: ...

    @classmethod
    def klass(cls) -> None: ...

    @staticmethod
    @jinja2.pass_environment
    def static(environment: Any) -> None: ...


class MarkedClass:
    """A class whose ``__call__`` (of its instances) takes the context."""

    @jinja2.pass_context
    def __call__(self, context: Any) -> None: ...


class MarkedMeta(type):
    @jinja2.pass_eval_context
    def __call__(cls, eval_ctx: Any) -> Any: ...


class WithMeta(metaclass=MarkedMeta):
    pass


def _function_with_own_call() -> None: ...


_function_with_own_call.__call__ = ctx_name  # type: ignore[attr-defined]


def _unmarked() -> None: ...


def _marked_none() -> None: ...


_marked_none.jinja_pass_arg = None  # type: ignore[attr-defined]

CALLABLES: list[Any] = [
    ctx_name, eval_flag, env_kind, _unmarked, _marked_none, _function_with_own_call, lambda: 1,
    Methods().marked, Methods().plain, Methods.klass, Methods.static, Methods().static,
    [].append, {}.get, len, range, dict, str, MarkedClass, MarkedClass(), WithMeta,
    CallableWithContext(), PlainCallable(), __import__("functools").partial(ctx_name, "x"),
    __import__("types").MethodType(MarkedClass(), object()),
    __import__("types").MethodType(len, object()),
    jinja2.ChainableUndefined(name="u"), jinja2.Undefined(name="u"), jinja2.StrictUndefined(name="u"),
    Methods, object, 3,
]


@pytest.mark.parametrize("obj", CALLABLES, ids=lambda o: type(o).__name__)
def test_callee_and_marker_answers_as_jinja2(obj: Any) -> None:
    from ahcore_tmpl.runtime import callee_and_marker

    def outcome(way: Any) -> Any:
        try:
            callee, marker = way(obj)
        except Exception as exc:
            return type(exc)
        return callee, marker

    assert outcome(callee_and_marker) == outcome(jinja2_callee_and_marker)


def test_an_error_in_a_call_shows_the_same_frames_as_stock_jinja2() -> None:
    """The context's ``call`` is hidden from tracebacks, as Jinja2's is (debug page, logs)."""
    import sys
    import traceback

    def boom() -> None:
        raise ValueError("boom")

    def frames(env_class: type[jinja2.Environment]) -> list[tuple[str, str]]:
        env = env_class()
        env.globals["boom"] = boom
        try:
            env.from_string("line 1\n{{ boom() }}").render()
        except ValueError:
            return [(f.name, str(f.lineno)) for f in traceback.extract_tb(sys.exc_info()[2])]
        raise AssertionError("no error")

    ours = frames(OurEnvironment)
    assert ours == frames(jinja2.Environment)
    assert ("top-level template code", "2") in ours and not any(n == "call" for n, _ in ours)
