"""Processors: how a file with a given suffix becomes a response.

A plugin declares a :class:`ProcessorSpec` through the ``register_processor``
hook. The kernel builds one processor object per file with the spec's
``factory`` and reuses it while the file is unchanged (same mtime, size and
inode), so compiled code, compiled templates and parsed workbooks are made
once. Processor objects are shared by concurrent requests: everything
request-specific lives on the :class:`ahcore.context.RequestContext` passed
to :meth:`Processor.respond`.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ahcore.jsonutil import JSON_HEADERS, json_response

if TYPE_CHECKING:
    from ahcore.api import SiteView
    from ahcore.context import RequestContext
    from ahcore.problems import Problem
    from ahcore.site import Site


class Processor:
    """Base class for processor objects: one per file, reused while unchanged.

    Subclasses override :meth:`load` for one-time work (compiling, parsing)
    and :meth:`produce` for the per-request value; :meth:`respond` turns that
    value into a response and may be overridden for full control.
    """

    #: The methods this file answers, when it narrows its processor's
    #: (:attr:`ProcessorSpec.methods`); e.g. a script's own declaration.
    #: Set in :meth:`load`; ``None`` keeps the processor's.
    methods: tuple[str, ...] | None = None

    #: Set by :meth:`load` when the file cannot be used (a syntax error) and
    #: the processor answers every request with an error instead of raising
    #: at load: ``ahcore check`` reports ``str(error)`` for the file.
    error: Any = None

    def __init__(self, path: Path, site: SiteView) -> None:
        self.path = path
        self.site = site

    async def load(self) -> None:
        """Prepare the file once per change. Blocking work belongs in a thread."""

    async def produce(self, context: RequestContext) -> Any:
        """Return this file's value for one request (also what ``path_call`` returns)."""
        raise NotImplementedError

    async def check(self) -> Iterable[Problem | str]:
        """What ``ahcore check`` reports for this file, after :meth:`load` succeeded.

        Return :class:`ahcore.api.Problem` objects with the ``line`` where
        each problem is (``file`` defaults to this file), or strings. The
        default reports :attr:`error` when it is set. Override it to report
        the line of a syntax error or what :meth:`load` tolerates but a
        request would trip over (a missing file it names). An exception
        raised by :meth:`load` is reported by the kernel as it is, so a
        processor that fails loudly needs no ``check`` of its own.
        """
        if self.error is None:
            return []
        return [str(self.error)]

    async def respond(self, context: RequestContext) -> web.StreamResponse:
        """Turn :meth:`produce`'s value into a response."""
        return to_response(await self.produce(context))


ProcessorFactory = Callable[[Path, "SiteView"], Processor]

#: What a processor answers unless its spec says otherwise (SPEC §14).
DEFAULT_METHODS: tuple[str, ...] = ("GET", "HEAD", "POST")


@dataclass(frozen=True)
class ProcessorSpec:
    """A processor declared by a plugin.

    ``name`` is what ``website.processors`` refers to; ``suffixes`` are used
    when the site config does not list processors; ``factory(path, site)``
    builds the processor object for one file.

    ``methods`` are the HTTP methods its files answer: any other gets 405
    with ``Allow`` before the file runs, and the kernel answers ``OPTIONS``
    itself. ``cross_site`` says other sites' pages may make a visitor's
    browser fetch these files (``<img>``, ``fetch()``, frames); when false
    (the default, for anything that runs code) such a request is refused
    with 403 before the file runs, by its ``Sec-Fetch-*`` headers.
    ``data`` marks data endpoints, whose errors are always JSON.
    """

    name: str
    suffixes: tuple[str, ...]
    factory: ProcessorFactory
    plugin: str = field(default="", compare=False)
    methods: tuple[str, ...] = DEFAULT_METHODS
    cross_site: bool = False
    data: bool = False


class UnavailableProcessor(Processor):
    """Stands in for a processor that ``website.processors`` names but no
    installed plugin provides: every request gets 501, never the file's source.

    Real ahserver sites name processors of their own era (``xterm``, ``llm``
    …); the site still starts and serves everything else (SPEC section 3).
    """

    def __init__(self, path: Path, site: SiteView, *, message: str) -> None:
        super().__init__(path, site)
        self.message = message

    async def produce(self, context: RequestContext) -> Any:
        raise web.HTTPNotImplemented(text=f"501: Not Implemented: {self.message}\n")


def unavailable_spec(name: str, suffix: str, advice: str) -> ProcessorSpec:
    """The spec the kernel puts in place of missing processor ``name`` for ``suffix``."""
    message = (
        f"{suffix!r} files need the processor {name!r}, which is not installed on this "
        f"server; {advice}"
    )
    # Whatever methods the missing processor would answer, the honest answer
    # to each is 501, not a 405 guessed from a default.
    return ProcessorSpec(
        name,
        (suffix,),
        functools.partial(UnavailableProcessor, message=message),
        methods=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"),
    )


#: The Content-Type of an HTML answer, given to aiohttp as the finished header.
HTML_HEADERS = {"Content-Type": "text/html; charset=utf-8"}


def to_response(value: Any) -> web.StreamResponse:
    """The ahserver return conventions shared by processors.

    aiohttp response → as is; dict/list → JSON; str → HTML (or JSON when the
    text looks like a JSON object or array); bytes → octet-stream; None →
    empty 200.
    """
    kind = type(value)
    if kind is dict or kind is list:  # the usual answer, before the ABC check below
        return json_response(value)
    if isinstance(value, web.StreamResponse):  # an ABC (MutableMapping): a slower check
        return value
    if value is None:
        return web.Response(status=200)
    if isinstance(value, (dict, list, tuple)):
        return json_response(value)
    if isinstance(value, str):
        stripped = value.lstrip()[:1]
        if stripped in ("{", "[") and value.rstrip()[-1:] in ("}", "]"):
            return web.Response(body=value.encode("utf-8"), headers=JSON_HEADERS)
        return web.Response(body=value.encode("utf-8"), headers=HTML_HEADERS)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return web.Response(body=bytes(value), content_type="application/octet-stream")
    return json_response(value)


class ProcessorRegistry:
    """Suffix → processor spec for one site, longest suffix first."""

    def __init__(self, by_suffix: Iterable[tuple[str, ProcessorSpec]]) -> None:
        pairs = sorted(by_suffix, key=lambda p: len(p[0]), reverse=True)
        self._pairs: list[tuple[str, ProcessorSpec]] = pairs
        self.suffixes = frozenset(s for s, _ in pairs)

    def match(self, filename: str) -> tuple[str, ProcessorSpec] | None:
        """The longest suffix of ``filename`` that has a processor (``.tmpl.js`` before ``.tmpl``)."""
        for suffix, spec in self._pairs:
            if filename.endswith(suffix) and len(filename) > len(suffix):
                return suffix, spec
        return None

    def __iter__(self) -> Iterator[tuple[str, ProcessorSpec]]:
        return iter(self._pairs)


class ProcessorCache:
    """Processor objects keyed by file path, rebuilt when the file changes.

    Concurrent first requests for a file (or for a file that just changed)
    share one build: the first starts it, the others await the same future.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[int, int, int], Processor]] = {}
        self._loading: dict[tuple[str, tuple[int, int, int]], asyncio.Future[Processor]] = {}

    def fresh(self, path: Path, st: os.stat_result) -> Processor | None:
        """The cached processor for ``path`` if the file is unchanged, without awaiting."""
        entry = self._entries.get(str(path))
        if entry is not None and entry[0] == (st.st_mtime_ns, st.st_size, st.st_ino):
            return entry[1]
        return None

    async def get(
        self, spec: ProcessorSpec, path: Path, st: os.stat_result, site: Site
    ) -> Processor:
        key = str(path)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == stamp:
            return entry[1]
        pending = self._loading.get((key, stamp))
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Processor] = asyncio.get_running_loop().create_future()
        self._loading[(key, stamp)] = future
        try:
            processor = spec.factory(path, site)
            await processor.load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            self._entries[key] = (stamp, processor)
            future.set_result(processor)
            return processor
        finally:
            del self._loading[(key, stamp)]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
