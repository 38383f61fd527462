"""Turning a ``.dspy`` file's text into the code of an async function.

A ``.dspy`` file is the *body* of an async function: top-level ``await``,
``async with``, ``async for`` and ``return`` all work. ahserver got there by
indenting the text under an ``async def`` line and compiling the result.
That changes the text: a triple-quoted string spanning several lines gains
the indentation inside its value, tabs and spaces can clash with the added
prefix, and every line number is off by one.

We wrap the *syntax tree* instead of the text. Python's parser accepts
``return`` and ``await`` at module level (they are rejected later, by the
compiler), so the file is parsed exactly as written, its statements are
moved into the body of an ``async def __dspy_main__()`` node, and that tree
is compiled with the file's real path. String values, indentation style and
line numbers are therefore the file's own, and tracebacks point at the right
line of the ``.dspy`` file.
"""

from __future__ import annotations

import ast
from types import CodeType

#: The name of the function a script becomes; it shows in tracebacks.
FUNCTION_NAME = "__dspy_main__"

# Parsed rather than built from node classes: the fields of AsyncFunctionDef
# differ between Python versions (``type_params`` arrived in 3.12).
_TEMPLATE = f"async def {FUNCTION_NAME}():\n    pass\n"


def compile_script(source: str, filename: str) -> CodeType:
    """Compile ``source`` (a ``.dspy`` file's text) into an async function's code.

    The result is the code object of a coroutine function that takes no
    arguments; build a fresh function per request with
    ``types.FunctionType(code, namespace)`` so each request runs with its
    own globals. ``filename`` should be the file's real path: it is what
    tracebacks name.

    Raises :class:`SyntaxError` (with ``filename`` and the file's own line
    number) for invalid source, and for ``yield``, which would turn the
    script into an async generator that no response convention covers.
    """
    tree = ast.parse(source, filename, mode="exec")
    _reject_yield(tree, filename)

    # ``from __future__`` imports (after an optional docstring) must stay first
    # in the *module*; they still apply to the function, as to all nested code.
    body = list(tree.body)
    futures: list[ast.stmt] = []
    if len(body) > 1 and _is_docstring(body[0]) and _is_future_import(body[1]):
        futures.append(body.pop(0))
    while body and _is_future_import(body[0]):
        futures.append(body.pop(0))

    wrapper = ast.parse(_TEMPLATE, filename, mode="exec")
    func = wrapper.body[0]
    assert isinstance(func, ast.AsyncFunctionDef)
    if body:
        func.body = body
        # The def line itself points at the first statement, so a failure
        # raised "in" the function frame never names a line the file lacks.
        ast.copy_location(func, body[0])
    wrapper.body = [*futures, func]
    ast.fix_missing_locations(wrapper)

    # dont_inherit: the future flags of *this* module must not leak into scripts.
    module_code = compile(wrapper, filename, "exec", dont_inherit=True)
    for const in module_code.co_consts:
        if isinstance(const, CodeType) and const.co_name == FUNCTION_NAME:
            return const
    raise AssertionError("compiled module lost its function")  # pragma: no cover


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_future_import(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


class _YieldFinder(ast.NodeVisitor):
    """Finds ``yield`` in the script's own scope, skipping nested functions."""

    def __init__(self) -> None:
        self.found: ast.Yield | ast.YieldFrom | None = None

    def visit_Yield(self, node: ast.Yield) -> None:
        self.found = self.found or node

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        self.found = self.found or node

    def _skip(self, node: ast.AST) -> None:
        """Nested functions and lambdas may yield: they are their own scope.

        A ``yield`` directly in a class body is left for the compiler to reject.
        """

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _skip


def _reject_yield(tree: ast.Module, filename: str) -> None:
    finder = _YieldFinder()
    finder.visit(tree)
    node = finder.found
    if node is not None:
        raise SyntaxError(
            "'yield' is not allowed at the top level of a .dspy script "
            "(return a value, or use stream_response for a streamed answer)",
            (filename, node.lineno, node.col_offset + 1, None),
        )
