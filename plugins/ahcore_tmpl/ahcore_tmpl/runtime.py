"""Jinja2's template and context classes, with the same behaviour for less CPU per render.

Two costs of stock Jinja2 that every page pays on every render, and that
these subclasses remove without changing what a template outputs or can do:

- ``{{ x }}`` in an autoescaped template is ``markupsafe.escape(x)``: two
  Python calls (``escape``, ``Markup.__new__``) and two ``hasattr`` per
  value, about a third of the render of a page of values
  (:func:`output_escape`, installed by :class:`UrlTemplate`);
- every call in a template (``range(40)``, ``loop.cycle(...)``, a macro, a
  global function) goes through ``Context.call``, which reads members of
  the ``_PassArg`` enum five times: on Python 3.11 an enum class attribute
  costs as much as a failed ``__getattr__`` (:meth:`UrlContext.call`).

The benchmark page of ``bench/`` (a 40-row table) renders in about half
the instructions of stock Jinja2 (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

import jinja2
import jinja2.runtime
import markupsafe
from jinja2.utils import internalcode

# markupsafe's C escaping of a str (what ``markupsafe.escape`` calls), if it has one.
_escape_inner: Callable[[str], str] | None = getattr(markupsafe, "_escape_inner", None)


def output_escape(value: Any) -> str:
    """``markupsafe.escape`` for a value a template outputs, minus the ``Markup`` wrapper.

    Jinja2's generated code writes ``{{ x }}`` in an autoescaped template as
    ``escape(x)`` and only ever joins the result into the output (directly,
    or into a block's buffer that is joined). The text is what matters, not
    its type: this returns the same text as ``markupsafe.escape`` without
    the two Python calls (``escape``, ``Markup.__new__``) and two
    ``hasattr`` it spends per value — about a third of a page's render.
    ``str`` and ``int`` (whose text has nothing to escape) take the short
    way; ``Markup`` is already safe; anything else (``__html__`` objects,
    ``Undefined``, subclasses of ``str`` or ``int``) goes to ``markupsafe.escape``.
    """
    kind = type(value)
    if kind is str:
        return _escape_inner(value)  # type: ignore[misc]  # only installed when it exists
    if kind is int:
        return str(value)
    if kind is markupsafe.Markup:
        return value  # type: ignore[no-any-return]
    return markupsafe.escape(value)


class UrlTemplate(jinja2.Template):
    """A Jinja2 template whose output is escaped by :func:`output_escape`.

    Jinja2 compiles a template to a module whose ``escape`` name (imported
    from ``jinja2.runtime``) escapes every ``{{ … }}`` of an autoescaped
    template; it is swapped for :func:`output_escape` in that module when the
    template is made. The compiler's own use of ``escape`` (constant output,
    escaped at compile time) and the ``escape``/``e`` filter are untouched.
    """

    @classmethod
    def from_code(
        cls,
        environment: jinja2.Environment,
        code: Any,
        globals: MutableMapping[str, Any],
        uptodate: Callable[[], bool] | None = None,
    ) -> jinja2.Template:
        template = super().from_code(environment, code, globals, uptodate)
        module = template.root_render_func.__globals__
        if _escape_inner is not None and module.get("escape") is markupsafe.escape:
            module["escape"] = output_escape
        return template


def _pass_arg_of(decorator: Callable[[Callable[[], None]], Any]) -> object:
    """The marker ``decorator`` (``jinja2.pass_context`` …) puts on a function."""

    def function() -> None:  # pragma: no cover - never called
        return None

    return decorator(function).jinja_pass_arg


PASS_CONTEXT = _pass_arg_of(jinja2.pass_context)
PASS_EVAL_CONTEXT = _pass_arg_of(jinja2.pass_eval_context)
PASS_ENVIRONMENT = _pass_arg_of(jinja2.pass_environment)


# type.__flags__ bit of classes made by a ``class`` statement (their attributes can be set).
_HEAPTYPE = 1 << 9


def callee_and_marker(obj: Any) -> tuple[Any, object]:
    """What ``Context.call`` calls for ``obj``, and the pass-marker it goes by.

    Jinja2 asks ``hasattr(obj, "__call__")``, the marker of ``obj.__call__``
    and then of ``obj``, each a failing attribute lookup (an exception made
    and dropped) for an ordinary callable. The answers are known without a
    lookup for what templates call most: a Python function keeps its marker
    in its ``__dict__`` (and its ``__call__`` is the type's, unless the
    ``__dict__`` says otherwise); a bound method's ``__call__`` is always
    the method type's and its marker is its function's; a builtin function
    (``len``, ``dict.get`` of an object) and a builtin class (``range``,
    ``dict``) cannot carry attributes. Everything else takes Jinja2's way.
    """
    kind = type(obj)
    if kind is FunctionType:
        names = obj.__dict__
        if "__call__" not in names:
            return obj, names.get("jinja_pass_arg")
    elif kind is MethodType:
        function = obj.__func__
        if type(function) is FunctionType:
            return obj, function.__dict__.get("jinja_pass_arg")
    elif kind is BuiltinFunctionType or (kind is type and not obj.__flags__ & _HEAPTYPE):
        return obj, None
    dunder_call = getattr(obj, "__call__", None)  # noqa: B004 - Jinja2 does the same
    if dunder_call is not None and getattr(dunder_call, "jinja_pass_arg", None) is not None:
        obj = dunder_call
    return obj, getattr(obj, "jinja_pass_arg", None)


class UrlContext(jinja2.runtime.Context):
    """Jinja2's template context with a cheaper :meth:`call` and lazy ``globals_keys``.

    ``globals_keys`` (the names of the template's globals, which Jinja2
    only reads for ``{% import … with context %}``) is a set built from
    ~140 globals on every render in stock Jinja2; here it is built when
    first read.
    """

    def __init__(
        self,
        environment: jinja2.Environment,
        parent: dict[str, Any],
        name: str | None,
        blocks: dict[str, Callable[[jinja2.runtime.Context], Any]],
        globals: MutableMapping[str, Any] | None = None,
    ) -> None:
        super().__init__(environment, parent, name, blocks)
        self._globals = globals
        self._globals_keys: set[str] | None = None

    @property
    def globals_keys(self) -> set[str]:
        keys = self._globals_keys
        if keys is None:
            keys = self._globals_keys = set() if self._globals is None else set(self._globals)
        return keys

    @globals_keys.setter
    def globals_keys(self, keys: set[str]) -> None:
        self._globals_keys = keys

    @internalcode
    def call(
        __self,  # noqa: N805 - Jinja2's signature: ``self`` may be a keyword argument
        __obj: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """``Context.call`` of Jinja2, step for step, with the enum members read once.

        The callable's ``__call__`` is used when it carries a pass-marker
        (callable classes that take the context), then the marker of the
        callable decides what comes first: the context (derived with the
        loop's and block's variables), the eval context or the
        environment (:func:`callee_and_marker`). A ``StopIteration`` from
        the call is an undefined value.
        """
        if __debug__:
            __traceback_hide__ = True  # noqa: F841 - read by Jinja2's traceback rewriting

        __obj, pass_arg = callee_and_marker(__obj)
        if pass_arg is not None:
            if pass_arg is PASS_CONTEXT:
                if kwargs.get("_loop_vars"):
                    __self = __self.derived(kwargs["_loop_vars"])  # type: ignore[assignment]
                if kwargs.get("_block_vars"):
                    __self = __self.derived(kwargs["_block_vars"])  # type: ignore[assignment]
                args = (__self, *args)
            elif pass_arg is PASS_EVAL_CONTEXT:
                args = (__self.eval_ctx, *args)
            elif pass_arg is PASS_ENVIRONMENT:
                args = (__self.environment, *args)

        kwargs.pop("_block_vars", None)
        kwargs.pop("_loop_vars", None)

        try:
            return __obj(*args, **kwargs)
        except StopIteration:
            return __self.environment.undefined(
                "value was undefined because a callable raised a StopIteration exception"
            )
