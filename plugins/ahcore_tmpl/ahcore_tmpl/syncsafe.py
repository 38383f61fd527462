"""Which templates can be rendered synchronously.

Every template is compiled for Jinja2's async mode, so that it can call the
async functions of the namespace (``path_call``, ``get_user``, database
helpers): in async mode Jinja2 awaits whatever a call, an attribute or item
lookup, a filter or a test returns, and iterates asynchronously. That costs
about half as much CPU again as sync rendering. A template that provably
never meets an awaitable gives the same output, and raises the same errors,
when compiled and rendered synchronously, so it is.

:func:`analyze` decides from the parsed template (``env.parse(source)``),
once per change of the file. A template is *sync-safe* when all of this
holds (anything else, or anything the analysis does not know, means async):

- **Calls.** Every call is one of: a name of the site's global namespace
  (``SiteView.global_namespace``: ``i18n``, ``configValue``, ``uuid``, …) or of
  Jinja2's globals (``range``, ``dict``, ``lipsum``, ``cycler``, ``joiner``,
  ``namespace``) whose value is a plain function, builtin or class — not a
  coroutine function, not an async generator function, not an object whose
  ``__call__`` is one, not a class whose instances are awaitable or async
  iterable; a function of a global module or class reached through
  attributes (``json.dumps``, ``datetime.date.today``); a method of a string
  literal; ``loop.cycle()``, ``loop.changed()``, ``loop()`` of a recursive
  loop; ``super()``, ``caller()``, ``self.block()``; a ``{% macro %}`` of the
  template, or a macro imported from a template that is itself sync-safe.
  Calls of anything else — methods of ``request`` or ``params_kw``, of a call
  result, of a variable, unknown names — are async.
- **Filters and tests** are the environment's, and none is a coroutine
  function; ``map``/``select``/``reject``/``selectattr``/``rejectattr`` name
  their filter or test with a string literal.
- **Values that could hide an awaitable** are not used: ``request`` only
  through its plain attributes (``request.path``, ``request.headers``, … —
  :data:`REQUEST_ATTRIBUTES`), never as a value, item or other attribute;
  ``loop`` only through its counters (``loop.index``, …); macros, ``caller``,
  ``super``, ``self`` and imported templates only as call targets; a global
  only when it is a module, class, function or plain data (not, e.g., the
  ``resource`` object).
- **include, extends, import, from** name a template with a string literal.
  Whether *that* template is sync-safe is checked when a page is rendered
  (it may change without the page changing): see :func:`closure_check`.
- **Names resolved per request** are checked against the request's namespace
  before every sync render (:class:`NamespaceCheck`): a global the template
  uses must still be the same object (a ``request_namespace`` hook could
  replace it), a Jinja2 global or macro it calls must not be shadowed, and
  any other name it reads (``terminalType``, a variable set by an including
  template) must be absent or plain data. A page run by ``path_call`` also
  needs plain data in ``params_kw`` (the caller's values).
- **Across templates** (a page with its includes, layouts and imports): each
  of them must be sync-safe, a name one of them calls must not be assigned
  by another (an included template sees its includer's variables), and an
  imported name that is called must be a macro of the imported template.

A template the sync environment compiles but that needs async raises
:class:`NeedsAsyncRender` if rendered (only when a file changes between the
check and the render); the page is then rendered async.

Assumed rather than proved: a plain function never returns an awaitable or
an async iterable (the builtins ``aiter`` and ``anext``, which do, are
known), and a plain attribute of ``request``, of a module or of plain data
is never an awaitable; no object the kernel provides breaks this.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import inspect
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import jinja2
from jinja2 import nodes

from ahcore.api import DictObject

__all__ = [
    "ANALYSIS_ATTRIBUTE",
    "Analysis",
    "Dependency",
    "NamespaceCheck",
    "NeedsAsyncRender",
    "analyze",
    "closure_check",
    "is_plain_data",
    "is_sync_callable",
]

MISSING: Any = object()

# The attribute a template compiled in the sync environment carries its analysis in.
ANALYSIS_ATTRIBUTE = "ahcore_analysis"

# aiohttp request attributes whose values are plain data (never awaitables).
REQUEST_ATTRIBUTES = frozenset(
    {
        "method", "path", "path_qs", "raw_path", "query", "query_string", "rel_url",
        "url", "host", "remote", "scheme", "secure", "headers", "cookies",
        "content_type", "charset", "content_length", "version", "keep_alive",
        "forwarded", "match_info", "if_modified_since", "if_unmodified_since",
        "has_body", "can_read_body", "body_exists",
    }
)  # fmt: skip

# Loop attributes that are values (AsyncLoopContext makes some of them awaitables,
# which async mode awaits: the same values either way).
LOOP_VALUE_ATTRIBUTES = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length",
     "depth", "depth0", "previtem", "nextitem"}
)  # fmt: skip
LOOP_METHODS = frozenset({"cycle", "changed"})

# Jinja2's own names and the kernel's per-request values: never a global.
_SPECIAL = frozenset({"loop", "caller", "super", "self", "request", "params_kw"})

# Filters that take another filter's or test's name: (position of the name, is a test).
NAMED_CALLABLE_FILTERS: dict[str, tuple[int, bool]] = {
    "map": (0, False),
    "select": (0, True),
    "reject": (0, True),
    "selectattr": (1, True),
    "rejectattr": (1, True),
}

_PLAIN_MAPPINGS: frozenset[type] = frozenset((dict, DictObject))
_PLAIN_SEQUENCES: frozenset[type] = frozenset((list, tuple))
PLAIN_SCALARS: tuple[type, ...] = (
    str, bytes, int, float, bool, type(None), decimal.Decimal,
    datetime.date, datetime.time, datetime.timedelta, uuid.UUID,
)  # fmt: skip

# Statements and expressions whose meaning does not depend on the mode
# (besides what the checks look at); any other node makes a template async.
_STATEMENTS = (
    nodes.Output, nodes.For, nodes.If, nodes.Macro, nodes.CallBlock, nodes.FilterBlock,
    nodes.With, nodes.Block, nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport,
    nodes.Assign, nodes.AssignBlock, nodes.Scope, nodes.ScopedEvalContextModifier,
    nodes.EvalContextModifier,
)  # fmt: skip
_PLAIN_EXPRESSIONS = (
    nodes.Const, nodes.TemplateData, nodes.Tuple, nodes.List, nodes.Dict, nodes.Pair,
    nodes.Keyword, nodes.CondExpr, nodes.BinExpr, nodes.UnaryExpr, nodes.Concat,
    nodes.Compare, nodes.Operand, nodes.Slice,
)  # fmt: skip


class NeedsAsyncRender(Exception):
    """Raised when the sync environment renders a template that needs async.

    Only possible when a file changes between :func:`closure_check` and the
    render; the processor then renders the page asynchronously.
    """


# ---------------------------------------------------------------- values


def is_plain_data(value: Any, budget: int = 10_000) -> bool:
    """Scalars, and dicts, lists and tuples of plain data (at most ``budget`` items).

    Containers must be exactly ``dict``, ``DictObject``, ``list`` or ``tuple``
    (a subclass could compute its items); scalars are ``str``, numbers, dates
    and the like, subclasses (``Markup``) included.

    Plain data has no awaitable anywhere, so attribute and item lookups on it
    give the same result in both modes.
    """
    stack = [value]
    while stack:
        budget -= 1
        if budget < 0:
            return False
        item = stack.pop()
        if isinstance(item, PLAIN_SCALARS):
            continue
        kind = type(item)
        if kind in _PLAIN_MAPPINGS:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif kind in _PLAIN_SEQUENCES:
            stack.extend(item)
        else:  # includes subclasses: their lookups could be anything
            return False
    return True


def _is_async_callable(function: Any) -> bool:
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        return True
    try:
        unwrapped = inspect.unwrap(function)
    except ValueError:  # a __wrapped__ cycle
        return True
    return unwrapped is not function and _is_async_callable(unwrapped)


def is_sync_callable(value: Any) -> bool:
    """Whether calling ``value`` provably does not give an awaitable or async iterable."""
    if isinstance(value, ModuleType) or not callable(value):
        return False
    if value is aiter or value is anext:  # builtins returning async iterators, awaitables
        return False
    if isinstance(value, type):
        if any(hasattr(value, name) for name in ("__await__", "__aiter__", "__anext__")):
            return False
        return type(value).__call__ is type.__call__  # no metaclass __call__
    if isinstance(value, functools.partial):
        return is_sync_callable(value.func)
    if _is_async_callable(value):
        return False
    if inspect.isroutine(value):
        return True
    return not _is_async_callable(type(value).__call__)


def _value_kind(value: Any) -> str:
    """``module``, ``class``, ``function``, ``data`` or ``object`` (anything else)."""
    if isinstance(value, ModuleType):
        return "module"
    if isinstance(value, type):
        return "class"
    if inspect.isroutine(value) or isinstance(value, functools.partial):
        return "function"
    if is_plain_data(value, 1000):
        return "data"
    return "object"


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Dependency:
    """A template named by ``include``/``extends``/``import``/``from``."""

    kind: str  # "include", "extends" or "import"
    name: str
    ignore_missing: bool = False
    # For imports: the names called on it, which must be macros it exports.
    macros: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NamespaceCheck:
    """What a request's namespace must satisfy for a sync render."""

    same: tuple[tuple[str, Any], ...] = ()  # name → the object analysed
    absent: tuple[str, ...] = ()  # names that must not be in the namespace
    plain: tuple[str, ...] = ()  # names that must be absent or plain data

    def allows(self, namespace: Mapping[str, Any]) -> bool:
        for name, value in self.same:
            if namespace.get(name, MISSING) is not value:
                return False
        for name in self.absent:
            if name in namespace:
                return False
        for name in self.plain:
            value = namespace.get(name, MISSING)
            if value is not MISSING and not is_plain_data(value):
                return False
        return True

    @staticmethod
    def merge(checks: Iterable[NamespaceCheck]) -> NamespaceCheck:
        same: dict[str, Any] = {}
        absent: set[str] = set()
        plain: set[str] = set()
        for check in checks:
            for name, value in check.same:
                if same.setdefault(name, value) is not value:
                    return NEVER
            absent.update(check.absent)
            plain.update(check.plain)
        return NamespaceCheck(tuple(same.items()), tuple(sorted(absent)), tuple(sorted(plain)))


class _Never(NamespaceCheck):
    def allows(self, namespace: Mapping[str, Any]) -> bool:
        return False


# A check no namespace passes (two templates expect different objects for one name).
NEVER = _Never()


@dataclass(frozen=True)
class Analysis:
    """The verdict on one template, on its own (its dependencies are named, not judged)."""

    reason: str | None  # why the template needs async; None when it is sync-safe
    dependencies: tuple[Dependency, ...] = ()
    exported_macros: frozenset[str] = frozenset()
    # Names the template calls (or calls attributes of) through a variable lookup;
    # another template of the render must not bind them to anything but a macro.
    called: frozenset[str] = frozenset()
    bindings: Mapping[str, frozenset[str]] = field(default_factory=dict)
    check: NamespaceCheck = NamespaceCheck()

    @property
    def sync_safe(self) -> bool:
        return self.reason is None


class _Async(Exception):
    """The template needs async; the message says why."""


@dataclass(frozen=True)
class _Scope:
    in_for: bool = False
    recursive_for: bool = False
    in_macro: bool = False
    in_block: bool = False


# ---------------------------------------------------------------- analysis


def analyze(
    tree: nodes.Template, env: jinja2.Environment, global_namespace: Mapping[str, Any]
) -> Analysis:
    """Decide whether ``tree`` (from ``env.parse``) is sync-safe on its own.

    ``global_namespace`` is the site's (``SiteView.global_namespace``); ``env``
    gives the filters, tests and Jinja2 globals.
    """
    try:
        return _Analyzer(tree, env, global_namespace).run()
    except _Async as exc:
        return Analysis(reason=str(exc))


class _Analyzer:
    def __init__(
        self, tree: nodes.Template, env: jinja2.Environment, global_namespace: Mapping[str, Any]
    ) -> None:
        self.tree = tree
        self.env = env
        self.globals = global_namespace
        self.bindings: dict[str, set[str]] = {}
        # alias → the import statement (and the imported name, None for a module)
        self.imports: dict[str, list[tuple[nodes.Import | nodes.FromImport, str | None]]] = {}
        self.import_macros: dict[int, set[str]] = {}
        self.dependencies: list[tuple[str, nodes.Node, bool]] = []
        self.called: set[str] = set()
        self.same: dict[str, Any] = {}
        self.absent: set[str] = set()
        self.plain: set[str] = set()

    def run(self) -> Analysis:
        self._collect_bindings()
        for node in self.tree.body:
            self.stmt(node, _Scope())
        dependencies = []
        for kind, node, ignore_missing in self.dependencies:
            assert isinstance(node.template, nodes.Const)  # type: ignore[attr-defined]
            macros = frozenset(self.import_macros.get(id(node), ()))
            name = node.template.value  # type: ignore[attr-defined]
            dependencies.append(Dependency(kind, name, ignore_missing, macros))
        return Analysis(
            reason=None,
            dependencies=tuple(dependencies),
            exported_macros=self._exported_macros(),
            called=frozenset(self.called),
            bindings={name: frozenset(kinds) for name, kinds in self.bindings.items()},
            check=NamespaceCheck(
                tuple(self.same.items()), tuple(sorted(self.absent)), tuple(sorted(self.plain))
            ),
        )

    # ------------------------------------------------------------ bindings

    def _bind(self, name: str, kind: str) -> None:
        self.bindings.setdefault(name, set()).add(kind)

    def _collect_bindings(self) -> None:
        for name in self.tree.find_all(nodes.Name):
            if name.ctx in ("store", "param"):
                self._bind(name.name, "other")
        for macro in self.tree.find_all(nodes.Macro):
            self._bind(macro.name, "macro")
        for imp in self.tree.find_all(nodes.Import):
            self._bind(imp.target, "import")
            self.imports.setdefault(imp.target, []).append((imp, None))
        for frm in self.tree.find_all(nodes.FromImport):
            for entry in frm.names:
                original, alias = entry if isinstance(entry, tuple) else (entry, entry)
                self._bind(alias, "import")
                self.imports.setdefault(alias, []).append((frm, original))

    def _kinds(self, name: str) -> set[str]:
        return self.bindings.get(name, set())

    def _exported_macros(self) -> frozenset[str]:
        found: set[str] = set()

        def walk(body: Sequence[nodes.Node]) -> None:
            for node in body:
                if isinstance(node, nodes.Macro):
                    found.add(node.name)
                elif isinstance(node, nodes.If):
                    walk(node.body)
                    for elif_ in node.elif_:
                        walk([elif_])
                    walk(node.else_)

        walk(self.tree.body)
        return frozenset(name for name in found if self._kinds(name) == {"macro"})

    # ------------------------------------------------------------ statements

    def stmts(self, body: Iterable[nodes.Node], scope: _Scope) -> None:
        for node in body:
            self.stmt(node, scope)

    def stmt(self, node: nodes.Node, scope: _Scope) -> None:
        if not isinstance(node, _STATEMENTS):
            raise _Async(f"uses {type(node).__name__} (line {node.lineno})")
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                self.expr(child, scope)
        elif isinstance(node, nodes.For):
            self.expr(node.iter, scope)
            if node.test is not None:
                self.expr(node.test, scope)
            inner = _Scope(True, bool(node.recursive), scope.in_macro, scope.in_block)
            self.stmts(node.body, inner)
            self.stmts(node.else_, scope)
        elif isinstance(node, nodes.If):
            self.expr(node.test, scope)
            self.stmts(node.body, scope)
            self.stmts(node.elif_, scope)
            self.stmts(node.else_, scope)
        elif isinstance(node, nodes.Macro):
            for default in node.defaults:
                self.expr(default, scope)
            self.stmts(node.body, _Scope(in_macro=True))
        elif isinstance(node, nodes.CallBlock):
            self.call(node.call, scope)
            for default in node.defaults:
                self.expr(default, scope)
            self.stmts(node.body, _Scope(in_macro=True))
        elif isinstance(node, nodes.FilterBlock):
            self.filter_or_test(node.filter, scope, is_filter=True)
            self.stmts(node.body, scope)
        elif isinstance(node, nodes.With):
            for value in node.values:
                self.expr(value, scope)
            self.stmts(node.body, scope)
        elif isinstance(node, nodes.Block):
            self.stmts(node.body, _Scope(in_block=True))
        elif isinstance(node, (nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
            self.dependency(node)
        elif isinstance(node, nodes.Assign):
            self.expr(node.node, scope)
            self.target(node.target, scope)
        elif isinstance(node, nodes.AssignBlock):
            self.stmts(node.body, scope)
            if node.filter is not None:
                self.filter_or_test(node.filter, scope, is_filter=True)
            self.target(node.target, scope)
        elif isinstance(node, nodes.Scope):
            self.stmts(node.body, scope)
        elif isinstance(node, nodes.ScopedEvalContextModifier):
            for option in node.options:
                self.expr(option, scope)
            self.stmts(node.body, scope)
        else:  # EvalContextModifier
            for option in node.options:
                self.expr(option, scope)

    def target(self, node: nodes.Node, scope: _Scope) -> None:
        if isinstance(node, nodes.NSRef):
            self.load(node.name, scope)
        elif isinstance(node, nodes.Tuple):
            for item in node.items:
                self.target(item, scope)

    def dependency(
        self, node: nodes.Include | nodes.Extends | nodes.Import | nodes.FromImport
    ) -> None:
        template = node.template
        if not (isinstance(template, nodes.Const) and isinstance(template.value, str)):
            raise _Async(
                f"{type(node).__name__.lower()} of a computed template name (line {node.lineno})"
            )
        if isinstance(node, nodes.Include):
            self.dependencies.append(("include", node, bool(node.ignore_missing)))
        elif isinstance(node, nodes.Extends):
            self.dependencies.append(("extends", node, False))
        else:
            self.dependencies.append(("import", node, False))

    # ------------------------------------------------------------ expressions

    def expr(self, node: nodes.Node, scope: _Scope) -> None:
        if isinstance(node, nodes.Name):
            self.load(node.name, scope)
        elif isinstance(node, nodes.Getattr):
            self.getattr(node, scope)
        elif isinstance(node, nodes.Call):
            self.call(node, scope)
        elif isinstance(node, nodes.Filter):
            self.filter_or_test(node, scope, is_filter=True)
        elif isinstance(node, nodes.Test):
            self.filter_or_test(node, scope, is_filter=False)
        elif isinstance(node, (nodes.Getitem, *_PLAIN_EXPRESSIONS)):
            for child in node.iter_child_nodes():
                self.expr(child, scope)
        else:
            raise _Async(f"uses {type(node).__name__} (line {node.lineno})")

    def load(self, name: str, scope: _Scope) -> None:
        """``name`` read as a value (not called, not the owner of an allowed attribute)."""
        if name in _SPECIAL and name != "params_kw":
            raise _Async(f"uses {name!r} as a value")
        kinds = self._kinds(name)
        if kinds & {"macro", "import"}:
            raise _Async(f"uses macro or imported template {name!r} as a value")
        self.free(name)

    def free(self, name: str) -> None:
        """A name that may be looked up in the render context: check it per request."""
        if name == "params_kw":  # set last by the kernel: never replaced
            return
        if name in self.globals:
            value = self.globals[name]
            if _value_kind(value) == "object":
                raise _Async(f"uses {name!r}, an object of the namespace")
            self.same[name] = value
        elif name in self.env.globals:
            if _value_kind(self.env.globals[name]) == "object":
                raise _Async(f"uses {name!r}, an object of the environment")
            self.absent.add(name)
        else:
            self.plain.add(name)

    def getattr(self, node: nodes.Getattr, scope: _Scope) -> None:
        owner = node.node
        if isinstance(owner, nodes.Name):
            if owner.name == "loop":
                if node.attr not in LOOP_VALUE_ATTRIBUTES:
                    raise _Async(f"uses loop.{node.attr} (line {node.lineno})")
                if not scope.in_for:
                    self.free("loop")
                return
            if owner.name == "request":
                if node.attr not in REQUEST_ATTRIBUTES:
                    raise _Async(f"uses request.{node.attr} (line {node.lineno})")
                return
        self.expr(owner, scope)

    def filter_or_test(
        self, node: nodes.Filter | nodes.Test, scope: _Scope, is_filter: bool
    ) -> None:
        what = "filter" if is_filter else "test"
        table = self.env.filters if is_filter else self.env.tests
        function = table.get(node.name)
        if function is None or _is_async_callable(function) or not callable(function):
            raise _Async(f"{what} {node.name!r} is unknown or async (line {node.lineno})")
        if not inspect.isroutine(function) and _is_async_callable(type(function).__call__):
            raise _Async(f"{what} {node.name!r} is async (line {node.lineno})")
        if is_filter and node.name in NAMED_CALLABLE_FILTERS:
            position, names_test = NAMED_CALLABLE_FILTERS[node.name]
            keywords = {kw.key for kw in node.kwargs}
            if node.dyn_args is not None or node.dyn_kwargs is not None:
                raise _Async(f"filter {node.name!r} with computed arguments (line {node.lineno})")
            if not (node.name == "map" and "attribute" in keywords) and len(node.args) > position:
                named = node.args[position]
                table2 = self.env.tests if names_test else self.env.filters
                if not (isinstance(named, nodes.Const) and isinstance(named.value, str)):
                    raise _Async(f"filter {node.name!r} with a computed name (line {node.lineno})")
                other = table2.get(named.value)
                if other is None or not is_sync_callable(other):
                    raise _Async(f"filter {node.name!r} uses {named.value!r} (line {node.lineno})")
        if node.node is not None:
            self.expr(node.node, scope)
        self.arguments(node, scope)

    def arguments(self, node: nodes.Call | nodes.Filter | nodes.Test, scope: _Scope) -> None:
        for arg in node.args:
            self.expr(arg, scope)
        for kwarg in node.kwargs:
            self.expr(kwarg.value, scope)
        if node.dyn_args is not None:
            self.expr(node.dyn_args, scope)
        if node.dyn_kwargs is not None:
            self.expr(node.dyn_kwargs, scope)

    # ------------------------------------------------------------ calls

    def call(self, node: nodes.Call, scope: _Scope) -> None:
        self.arguments(node, scope)
        callee = node.node
        line = node.lineno
        if isinstance(callee, nodes.Name):
            self.call_name(callee.name, scope, line)
        elif isinstance(callee, nodes.Getattr):
            self.call_attribute(callee, scope, line)
        else:
            raise _Async(f"calls the result of an expression (line {line})")

    def call_name(self, name: str, scope: _Scope, line: int) -> None:
        kinds = self._kinds(name)
        special = (
            (name == "caller" and scope.in_macro)
            or (name == "super" and scope.in_block)
            or (name == "loop" and scope.recursive_for)
        )
        if special:
            if kinds:
                raise _Async(f"calls {name!r}, which the template assigns (line {line})")
            return
        if kinds == {"macro"}:
            self.called.add(name)
            self.absent.add(name)  # called before its definition, it is looked up
            return
        if kinds == {"import"} and len(self.imports[name]) == 1:
            statement, original = self.imports[name][0]
            if original is not None:  # {% from "x" import name %}
                self.import_macros.setdefault(id(statement), set()).add(original)
                self.called.add(name)
                self.absent.add(name)
                return
        if kinds:
            raise _Async(f"calls {name!r}, a variable of the template (line {line})")
        value = self._global(name, line)
        if not is_sync_callable(value):
            raise _Async(f"calls {name!r}, which is async or not a plain function (line {line})")
        self.called.add(name)

    def _global(self, name: str, line: int) -> Any:
        """The value a free name has in every namespace, recorded for the per-request check."""
        if name in _SPECIAL:
            raise _Async(f"calls {name!r} (line {line})")
        if name in self.globals:
            value = self.globals[name]
            self.same[name] = value
            return value
        if name in self.env.globals:
            self.absent.add(name)
            return self.env.globals[name]
        raise _Async(f"calls {name!r}, which is not a global of the site (line {line})")

    def call_attribute(self, callee: nodes.Getattr, scope: _Scope, line: int) -> None:
        owner = callee.node
        attr = callee.attr
        if isinstance(owner, nodes.Const) and isinstance(owner.value, str):
            return  # a str method
        if isinstance(owner, nodes.Name):
            name = owner.name
            kinds = self._kinds(name)
            if name == "loop" and attr in LOOP_METHODS and scope.in_for and not kinds:
                return
            if name == "self" and not kinds:
                return  # a block of this render: compiled in the same mode
            if kinds == {"import"} and len(self.imports[name]) == 1:
                statement, original = self.imports[name][0]
                if original is None:  # {% import "x" as name %}
                    self.import_macros.setdefault(id(statement), set()).add(attr)
                    self.called.add(name)
                    self.absent.add(name)
                    return
        # A function of a global module or class: json.dumps, datetime.date.today.
        path = [attr]
        while isinstance(owner, nodes.Getattr):
            path.append(owner.attr)
            owner = owner.node
        if (
            isinstance(owner, nodes.Name)
            and not self._kinds(owner.name)
            and owner.name not in _SPECIAL
            and (owner.name in self.globals or owner.name in self.env.globals)
        ):
            value = self._global(owner.name, line)
            for part in reversed(path):
                if _value_kind(value) not in ("module", "class"):
                    break
                value = _static_getattr(value, part)
            else:
                if is_sync_callable(value):
                    self.called.add(owner.name)
                    return
        if isinstance(callee.node, nodes.Name):
            raise _Async(f"calls {callee.node.name}.{attr}() (line {line})")
        raise _Async(f"calls method {attr!r} of a value (line {line})")


def _static_getattr(owner: Any, name: str) -> Any:
    try:
        return getattr(owner, name)
    except Exception:
        return MISSING


# ---------------------------------------------------------------- whole renders


def closure_check(
    env: jinja2.Environment,
    name: str,
    analysis: Analysis,
    cache: dict[str, Any],
) -> NamespaceCheck | None:
    """The check for a sync render of template ``name``, or None if it needs async.

    Follows ``analysis.dependencies`` (and theirs) through ``env``, the sync
    environment, which compiles each template once per change and attaches its
    :class:`Analysis`; loading also resolves names and checks freshness as the
    render will. Every template reached must be sync-safe, imported names must
    be macros, and no template may bind a name another one calls through a
    variable lookup (an included template sees its includer's variables).

    ``cache`` (one per page) keeps the merged result for as long as the same
    compiled templates are found, so an unchanged page pays only the lookups.
    """
    found: list[tuple[str, Analysis]] = [(name, analysis)]
    key: list[Any] = []
    seen = {name}
    index = 0
    while index < len(found):
        parent, current = found[index]
        index += 1
        for dependency in current.dependencies:
            try:
                resolved = env.join_path(dependency.name, parent)
                template = env.get_template(resolved)
            except jinja2.TemplateNotFound:
                if dependency.ignore_missing:
                    continue  # missing in both modes alike
                return None
            except Exception:  # a broken include: the async render reports it
                return None
            child = getattr(template, ANALYSIS_ATTRIBUTE, None)
            if not isinstance(child, Analysis) or not child.sync_safe:
                return None
            if not dependency.macros <= child.exported_macros:
                return None
            key.append(template)
            if resolved not in seen:
                seen.add(resolved)
                found.append((resolved, child))
    if cache.get("key") == key:
        check: NamespaceCheck | None = cache["check"]
        return check
    check = _merge([analysis for _, analysis in found])
    cache["key"], cache["check"] = key, check
    return check


def _merge(analyses: Sequence[Analysis]) -> NamespaceCheck | None:
    for i, one in enumerate(analyses):
        for name in one.called:
            for j, other in enumerate(analyses):
                if i != j and other.bindings.get(name, frozenset()) - {"macro"}:
                    return None
    check = NamespaceCheck.merge(a.check for a in analyses)
    return None if check is NEVER else check


def poison(template: jinja2.Template, reason: str) -> None:
    """Make a sync-compiled template that needs async raise instead of rendering."""

    def needs_async(context: Any) -> Any:
        raise NeedsAsyncRender(f"{template.name}: {reason}")
        yield  # a generator, like the render function it replaces

    template.root_render_func = needs_async
