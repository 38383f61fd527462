"""The ``--debug`` error page: what went wrong, in the site's own files first.

Only ever used when the site runs with ``debug`` (``ahcore serve --debug``
or ``"debug": true``): :func:`ahcore.errors.internal_error_response` calls
:func:`debug_page` for a browser and :func:`debug_text` for everyone else;
in production a 500 is the short message with an error id and nothing here
runs.

What the page shows, as Werkzeug's and Django's do:

- the exception's type and message;
- **the site's frames first** — frames whose file lies in the site folder or
  a content root (a ``.dspy`` script, a template at its template line, an
  app module) — innermost first, each with the source lines around it and
  its local names, then the names of the script namespace (names only,
  never values);
- the whole stack in call order, kernel and library frames folded
  (collapsed ``<details>``), and the plain traceback to copy;
- the request: method, path and query, headers (``Cookie``,
  ``Authorization`` and other credentials redacted), the names of the query
  and form parameters (not their values).

Everything shown is HTML-escaped: an exception message, a path or a header
can carry markup (``<script>``) and must arrive as text.
"""

from __future__ import annotations

import html
import linecache
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ahcore.scriptnamespace import ScriptNamespace

if TYPE_CHECKING:
    from ahcore.site import Site

#: Lines of source shown before and after the failing line.
CONTEXT_LINES = 5
#: Headers whose values never appear, even on the debug page.
REDACTED_HEADERS = frozenset(
    {"cookie", "authorization", "proxy-authorization", "x-hot-reload-token", "x-api-key", "x-csrf-token"}
)
#: Header names containing one of these are redacted as well.
REDACTED_WORDS = ("token", "secret", "password", "session", "auth", "key")
REDACTED = "(redacted)"


@dataclass
class FrameInfo:
    """One frame of the traceback, as the page shows it."""

    filename: str
    shown_name: str  # the file relative to the site folder for site frames
    lineno: int
    function: str
    site: bool
    lines: list[tuple[int, str]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    namespace: list[str] | None = None


def site_folders(site: Site | None) -> list[Path]:
    """The folders whose files are the site's own code: its folder and content roots."""
    if site is None:
        return []
    folders = [Path(site.workdir).resolve()]
    for root in site.roots:
        folders.append(Path(root.folder).resolve())
    return folders


def _is_site_file(filename: str, folders: Sequence[Path]) -> Path | None:
    """The folder ``filename`` lies in, when it is the site's code (not an installed library)."""
    if filename.startswith("<"):
        return None
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return None
    if "site-packages" in path.parts or "dist-packages" in path.parts:
        return None
    for folder in folders:
        if path.is_relative_to(folder):
            return folder
    return None


def _shown_name(filename: str, folders: Sequence[Path]) -> str:
    """A site file relative to the site folder (or its real path, in a root outside it)."""
    path = Path(filename).resolve()
    return str(path.relative_to(folders[0])) if path.is_relative_to(folders[0]) else str(path)


def _is_module_globals(namespace: Mapping[str, Any]) -> bool:
    """Whether a frame's globals are a Python module's (not a script's namespace)."""
    if "__jinja_exception__" in namespace or "__jinja_template__" in namespace:
        return True
    module = sys.modules.get(str(namespace.get("__name__", "")))
    return module is not None and vars(module) is namespace


def _visible(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if n.isidentifier() and not (n.startswith("__") and n.endswith("__")))


def frame_names(frame: FrameType) -> list[str]:
    """The frame's local names (a template frame's are the template's variables)."""
    return _visible(frame.f_locals)


def namespace_names(frame: FrameType) -> list[str] | None:
    """The names of the namespace a script ran with, when the frame's globals are one."""
    names = frame.f_globals
    if isinstance(names, ScriptNamespace):  # the request's own names; copy() has the site's too
        return _visible(names.copy())
    if _is_module_globals(names):
        return None
    return _visible(names)


def _source(
    filename: str, lineno: int, frame: FrameType | None, context: int
) -> list[tuple[int, str]]:
    lines = linecache.getlines(filename, frame.f_globals if frame is not None else None)
    if not lines:
        return []
    first = max(1, lineno - context)
    last = min(len(lines), lineno + context)
    return [(n, lines[n - 1].rstrip("\n")) for n in range(first, last + 1)]


def walk(exc: BaseException, folders: Sequence[Path]) -> list[FrameInfo]:
    """The frames of ``exc``'s traceback, outermost first."""
    frames = []
    tb: TracebackType | None = exc.__traceback__
    for frame, lineno in traceback.walk_tb(tb):
        code = frame.f_code
        folder = _is_site_file(code.co_filename, folders)
        info = FrameInfo(
            filename=code.co_filename,
            shown_name=code.co_filename if folder is None else _shown_name(code.co_filename, folders),
            lineno=lineno,
            function=code.co_name,
            site=folder is not None,
        )
        info.lines = _source(code.co_filename, lineno, frame, CONTEXT_LINES if info.site else 2)
        if info.site:
            info.names = frame_names(frame)
            info.namespace = namespace_names(frame)
        frames.append(info)
    return frames


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def compile_errors(exc: BaseException, folders: Sequence[Path]) -> list[FrameInfo]:
    """Where a site file failed to compile: a ``SyntaxError`` (or a template's) in ``exc``'s chain.

    Such a file never ran, so no frame of it is in the traceback; its
    ``filename`` and ``lineno`` say where the problem is.
    """
    found = []
    for error in _chain(exc):
        filename, lineno = getattr(error, "filename", None), getattr(error, "lineno", None)
        if not isinstance(filename, str) or not isinstance(lineno, int):
            continue
        folder = _is_site_file(filename, folders)
        if folder is None:
            continue
        found.append(
            FrameInfo(
                filename=filename,
                shown_name=_shown_name(filename, folders),
                lineno=lineno,
                function=f"does not compile: {getattr(error, 'msg', None) or error}",
                site=True,
                lines=_source(filename, lineno, None, CONTEXT_LINES),
            )
        )
    return found


def _redact(name: str, value: str) -> str:
    lowered = name.lower()
    if lowered in REDACTED_HEADERS or any(word in lowered for word in REDACTED_WORDS):
        return REDACTED
    return value


def request_headers(request: web.Request) -> list[tuple[str, str]]:
    """The request's headers with credentials redacted."""
    return [(name, _redact(name, value)) for name, value in request.headers.items()]


def parameter_names(request: web.Request, exc: BaseException) -> list[str]:
    """Names of the query and form parameters: the script's ``params_kw`` when a frame had one."""
    names = set(request.query.keys())
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        for scope in (frame.f_locals, frame.f_globals):
            params = scope.get("params_kw")
            if isinstance(params, Mapping):
                names.update(str(k) for k in params)
    return sorted(names)


def debug_text(exc: BaseException) -> str:
    """The plain traceback (for clients that are not browsers)."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


# ------------------------------------------------------------------ HTML

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f6f6f7}
header{background:#7a1020;color:#fff;padding:1.2rem 2rem}
header h1{margin:0;font-size:1.35rem;font-weight:600}
header p{margin:.35rem 0 0;font-size:1.05rem;white-space:pre-wrap;word-break:break-word}
header .meta{opacity:.8;font-size:.85rem}
main{padding:1rem 2rem 3rem;max-width:78rem}
h2{font-size:1.05rem;margin:1.6rem 0 .6rem;color:#444}
.frame{background:#fff;border:1px solid #ddd;border-radius:6px;margin:.6rem 0;overflow:hidden}
.frame>summary,.frame>.where{padding:.45rem .8rem;font-family:ui-monospace,monospace;font-size:.88rem;
background:#fafafa;cursor:pointer}
.frame.site>summary,.frame.site>.where{background:#fff4e5}
.frame .fn{color:#555}
pre.src{margin:0;padding:.4rem 0;font:13px/1.5 ui-monospace,monospace;overflow-x:auto;background:#fff}
pre.src span{display:block;padding:0 .8rem;white-space:pre}
pre.src span.here{background:#ffe1e1;font-weight:600}
pre.src i{display:inline-block;width:3.2em;color:#999;font-style:normal;user-select:none}
.names{padding:.4rem .8rem;font-size:.85rem;color:#333;border-top:1px solid #eee}
.names code{background:#f1f1f3;padding:0 .25em;margin:0 .15em;border-radius:3px;line-height:1.9}
table{border-collapse:collapse;background:#fff;font-size:.88rem}
td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top;
font-family:ui-monospace,monospace;word-break:break-all}
th{background:#fafafa;white-space:nowrap}
details.all>summary{cursor:pointer;color:#444;margin:.4rem 0}
pre.tb{background:#fff;border:1px solid #ddd;padding:.8rem;overflow-x:auto;font-size:12.5px}
.note{color:#7a1020;font-size:.85rem}
"""


_HERE = ' class="here"'


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _frame_html(frame: FrameInfo, *, folded: bool) -> str:
    where = (
        f"{_e(frame.shown_name)}, line {frame.lineno}, "
        f"<span class=\"fn\">in {_e(frame.function)}</span>"
    )
    src = "".join(
        f"<span{_HERE if n == frame.lineno else ''}><i>{n}</i>{_e(text)}</span>"
        for n, text in frame.lines
    )
    body = f"<pre class=\"src\">{src}</pre>" if src else ""
    if frame.names:
        body += "<div class=\"names\">local names: " + " ".join(
            f"<code>{_e(n)}</code>" for n in frame.names
        ) + "</div>"
    kind = "frame site" if frame.site else "frame"
    if folded:
        return f"<details class=\"{kind}\"><summary>{where}</summary>{body}</details>"
    return f"<details class=\"{kind}\" open><summary>{where}</summary>{body}</details>"


def _table(rows: Iterable[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def debug_page(exc: BaseException, request: web.Request, error_id: str, site: Site | None) -> str:
    """The HTML debug page for ``exc`` raised while answering ``request``."""
    folders = site_folders(site)
    frames = walk(exc, folders)
    own = compile_errors(exc, folders) + [f for f in reversed(frames) if f.site]
    title = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
    parts = [
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<meta name=\"robots\" content=\"noindex\"><title>{_e(title)} — debug</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<header><h1>{_e(title)}</h1><p>{_e(exc)}</p>",
        f"<p class=\"meta\">{_e(request.method)} {_e(request.raw_path)} · error id {_e(error_id)}"
        " · shown because the site runs with --debug; never serve a public site so</p></header><main>",
    ]
    if own:
        parts.append(f"<h2>In your site ({len(own)} frame{'s' if len(own) != 1 else ''}, innermost first)</h2>")
        parts.extend(_frame_html(f, folded=False) for f in own)
    else:
        parts.append("<h2>In your site</h2><p class=\"note\">No frame of the site's own files: "
                     "the error is in ahcore or a plugin (the full stack is below).</p>")
    namespace = next((f.namespace for f in own if f.namespace is not None), None)
    if namespace is not None:
        parts.append(f"<h2>Script namespace ({len(namespace)} names)</h2>")
        parts.append(
            "<div class=\"frame\"><div class=\"names\">"
            + " ".join(f"<code>{_e(n)}</code>" for n in namespace)
            + "</div></div>"
        )
    folded = sum(1 for f in frames if not f.site)
    parts.append(
        f"<h2>Full stack (call order; {folded} kernel and library frame{'s' if folded != 1 else ''} folded)</h2>"
    )
    parts.extend(_frame_html(f, folded=not f.site) for f in frames)
    parts.append("<h2>Request</h2>")
    parts.append(
        _table(
            [
                ("method", request.method),
                ("path", request.raw_path),
                ("parameter names", ", ".join(parameter_names(request, exc)) or "(none)"),
            ]
        )
    )
    parts.append("<h2>Headers</h2>")
    parts.append(_table(request_headers(request)))
    parts.append("<details class=\"all\"><summary>Plain traceback</summary>")
    parts.append(f"<pre class=\"tb\">{_e(debug_text(exc))}</pre></details>")
    parts.append("</main></body></html>\n")
    return "".join(parts)
