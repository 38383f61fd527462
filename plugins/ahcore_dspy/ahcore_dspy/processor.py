"""The ``.dspy`` processor: one compiled script per file, run once per request.

The kernel makes one :class:`DspyProcessor` per file and keeps it while the
file is unchanged, so :meth:`DspyProcessor.load` compiles once per change.
The object is shared by every concurrent request for that file; it holds the
compiled code and nothing else. Each request runs that code as a new
function whose globals are the request's own namespace, built by the kernel
from the :class:`~ahcore.RequestContext`.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from aiohttp import web

from ahcore.api import Problem, Processor, RequestContext, SiteView
from ahcore_dspy import compiler
from ahcore_dspy.watchdog import Watchdog


@dataclass(frozen=True)
class Runtime:
    """What every script of one application shares: the watchdog and the limit.

    Made once at start-up (``plugins`` settings need a restart to change).
    """

    watchdog: Watchdog
    time_limit: float


#: Where the plugin keeps its application's :class:`Runtime`.
RUNTIME: web.AppKey[Runtime] = web.AppKey("ahcore_dspy.runtime", Runtime)

log = logging.getLogger(__name__)

#: The entry-point name, which is also the key of this plugin's settings.
PLUGIN_NAME = "dspy"

#: What a script answers unless it declares its own (SPEC §14).
SCRIPT_METHODS: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

#: ``# methods: GET, POST`` among a script's leading comment lines.
_METHODS_LINE = re.compile(r"#\s*methods\s*:\s*(.*)$", re.IGNORECASE)


def declared_methods(source: str, path: Path) -> tuple[str, ...] | None:
    """The methods a script declares in its leading comments, if any.

    ``# methods: GET, POST`` (any case, commas or spaces) before the first
    line of code. HEAD comes with GET. A name that is not one of
    :data:`SCRIPT_METHODS` is an error: a typo must not open a method.
    """
    for line in source.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            return None
        match = _METHODS_LINE.match(stripped)
        if match is None:
            continue
        names = [m.upper() for m in re.split(r"[\s,]+", match.group(1)) if m]
        unknown = [m for m in names if m not in SCRIPT_METHODS]
        if unknown or not names:
            raise ValueError(
                f"{path}: '# methods:' names {', '.join(unknown) or 'nothing'}; "
                f"use some of {', '.join(SCRIPT_METHODS)}"
            )
        if "GET" in names and "HEAD" not in names:
            names.append("HEAD")
        return tuple(m for m in SCRIPT_METHODS if m in names)
    return None


#: Seconds a script may run when ``plugins.dspy.time_limit`` is not set.
DEFAULT_TIME_LIMIT = 30.0


class ScriptSyntaxError(Exception):
    """A ``.dspy`` file that does not compile; the visitor sees a plain 500.

    Raised on every request for the broken file (the message names the file
    and line for the log) until the file changes and compiles again.
    """


def time_limit(site: SiteView) -> float:
    """The per-request time limit in seconds from ``plugins.dspy.time_limit``.

    Read once at start-up into the app's :class:`Runtime` (plugin settings
    are fixed for the life of the process: changing them needs a restart).
    """
    return parse_time_limit(site.plugin_settings(PLUGIN_NAME))


def parse_time_limit(settings: Mapping[str, Any]) -> float:
    """``time_limit`` of the ``plugins.dspy`` object; ValueError saying what to write."""
    value = settings.get("time_limit", DEFAULT_TIME_LIMIT)
    # `not value > 0` also rejects NaN; bool is an int but never a sensible limit.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(
            f"plugins.{PLUGIN_NAME}.time_limit: expected a positive number of seconds, "
            f"got {json.dumps(value)}; write e.g. 30, or leave it out "
            f"(default {DEFAULT_TIME_LIMIT:g})"
        )
    return float(value)


class DspyProcessor(Processor):
    """``.dspy`` files: the text is the body of an async function.

    Return conventions are the kernel's :func:`ahcore.to_response` (applied
    by the inherited :meth:`respond`): dict/list → JSON, str → HTML (or JSON
    when it looks like JSON), bytes → octet-stream, an aiohttp response as
    is, None → empty 200. ``path_call`` gets :meth:`produce`'s raw value.
    """

    def __init__(self, path: Path, site: SiteView) -> None:
        super().__init__(path, site)
        self.code: types.CodeType | None = None
        self.error: ScriptSyntaxError | None = None
        self.error_line: int | None = None
        self.error_message = ""
        self.runtime: Runtime | None = None  # the app's, looked up once

    async def load(self) -> None:
        """Read and compile the file; the kernel calls this once per file change.

        Done inline, without a thread: a script compiles in well under a
        millisecond, and a ``load`` with no ``await`` cannot interleave with
        another request loading the same file, so it compiles exactly once.
        A syntax error is logged once here and answered with a 500 on each
        request (never with the source) until the file is fixed.
        """
        try:
            raw = self.path.read_bytes()
            # ahserver read scripts in the site's coding; a BOM is editor noise.
            source = raw.decode(self.site.config.website.coding).removeprefix("\ufeff")
            self.methods = declared_methods(source, self.path)
            self.code = compiler.compile_script(source, str(self.path))
        except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
            line = getattr(exc, "lineno", None)
            message = getattr(exc, "msg", None) or str(exc)
            where = f"{self.path}, line {line}" if line else str(self.path)
            self.error_line, self.error_message = line, message
            self.error = ScriptSyntaxError(f"cannot compile {where}: {message}")
            self.error.__cause__ = exc
            log.error("%s", self.error)

    async def check(self) -> list[Problem]:
        """The compile error with its line, for ``ahcore check``."""
        if self.error is None:
            return []
        return [
            Problem(
                f"does not compile: {self.error_message.rstrip('.')}; fix it (until then the page "
                "answers 500)",
                self.path,
                self.error_line,
            )
        ]

    async def produce(self, context: RequestContext) -> Any:
        """Run the script for one request and return its raw return value.

        The namespace comes fresh from the context (request parameters only
        in ``params_kw``, so they cannot shadow a name) and becomes the
        function's globals; nothing about the request touches ``self``.
        Exceptions, including aiohttp's HTTP exceptions from
        ``server_error()`` or ``redirect()``, propagate to the kernel.
        """
        if self.code is None:
            assert self.error is not None
            # A new exception each time: re-raising one object would grow its traceback.
            raise ScriptSyntaxError(*self.error.args) from self.error.__cause__
        runtime = self.runtime
        if runtime is None:
            assert self.site.app is not None
            runtime = self.runtime = self.site.app[RUNTIME]
        # The request's own names, the site's found by lookup (not copied per request).
        namespace = await context.script_namespace()
        if not dict.__contains__(namespace, "__builtins__"):
            namespace["__builtins__"] = builtins
        script = types.FunctionType(self.code, namespace)
        # Watchdog.run, inline: one coroutine layer less on every request.
        watchdog = runtime.watchdog
        task, bucket = watchdog.watch(runtime.time_limit)
        try:
            result = await script()
        except asyncio.CancelledError:
            if watchdog.release(task, bucket):
                self._timed_out(context, runtime.time_limit)
            raise
        except BaseException:
            watchdog.release(task, bucket)
            raise
        watchdog.release(task, bucket)  # a script that swallowed the cancellation keeps its answer
        return result

    def _timed_out(self, context: RequestContext, limit: float) -> NoReturn:
        log.warning(
            "%s: cancelled after the time limit of %g s (plugins.%s.time_limit) on %s %s",
            self.path,
            limit,
            PLUGIN_NAME,
            context.request.method,
            context.request.path_qs,
        )
        raise web.HTTPGatewayTimeout(
            text="504: Gateway Timeout: the script took too long\n"
        ) from None
