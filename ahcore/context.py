"""The per-request context: everything request-specific, and nothing shared.

Processor objects are shared between concurrent requests; they receive a
:class:`RequestContext` and keep request state on it (never on themselves).
The namespace a script or template sees is built from it on demand, so a
static file or a cached markdown page never pays for it.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web

from ahcore.dictobject import DictObject
from ahcore.params import BODY_METHODS, ahserver_ints, read_params
from ahcore.plugins import await_me_maybe
from ahcore.useragent import terminal_type

if TYPE_CHECKING:
    from ahcore.resolver import Resolved
    from ahcore.site import Site


# The context of the processor running in this task. A ContextVar is a key,
# not state: the value lives in each task's own context, so concurrent
# requests never see each other's (SPEC: no per-request state on shared
# objects).
_CURRENT: ContextVar[RequestContext] = ContextVar("ahcore.request_context")


def current_context() -> RequestContext:
    """The :class:`RequestContext` of the processor running now.

    Set by the kernel for the whole of a processor's work on a request
    (``produce``/``respond``, and a ``path_call`` inside it), so helpers in
    the script namespace — and a plugin's own ``env_globals`` functions — can
    find their request without a closure made per request. Tasks a script
    starts inherit it, as contextvars do.

    Raises :class:`RuntimeError` outside a request.
    """
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError("no ahcore request is being processed here") from None


class RequestContext:
    """One request as processors see it."""

    __slots__ = ("request", "site", "resolved", "_params", "_namespace", "state", "parent")

    def __init__(
        self,
        request: web.Request,
        site: Site,
        resolved: Resolved | None,
        params: DictObject | None = None,
        parent: RequestContext | None = None,
    ) -> None:
        self.parent = parent  # the calling context for path_call, else None
        self.request = request
        self.site = site
        self.resolved = resolved
        self._params = params
        self._namespace: DictObject | None = None
        # Free per-request storage for plugins (keyed by plugin name).
        self.state: dict[str, Any] = {}

    @property
    def url(self) -> str:
        """The canonical URL of the file being processed."""
        return self.resolved.url if self.resolved is not None else self.request.path

    async def params(self) -> DictObject:
        """``params_kw`` for this request, read from the request once.

        As in ahserver, ``_webbricks_``, ``_is_mobile``, ``_width``,
        ``_height``, ``page`` and ``rows`` arrive as ints when their text is
        one (:func:`ahcore.params.ahserver_ints`); everything else as sent.
        """
        if self._params is None:
            self._params = ahserver_ints(await read_params(self.request, self.site.uploads))
        return self._params

    async def namespace(self) -> DictObject:
        """The full processor namespace (SPEC §6), built once per request.

        Global names come first, then the kernel's per-request names
        (``terminalType``, ``ref_real_path``, ``user``), then plugins' from the
        ``request_namespace`` hook, then ``request`` and ``params_kw`` — so no
        request parameter can ever replace a namespace name. A
        :class:`DictObject`, so ahserver code can write
        ``request._run_ns.params_kw``.

        When a script already runs in this context, this is that script's
        namespace (:meth:`script_namespace`): the same object, so names a
        script sets are seen by whatever it calls.
        """
        if self._namespace is not None:
            return self._namespace
        return await self._fill(DictObject(self.site.global_namespace))

    async def script_namespace(self) -> DictObject:
        """The namespace for a script's globals: the request's own names, the site's by lookup.

        The same names and precedence as :meth:`namespace`, without copying
        the site's global names into it per request: they are found through
        the site's namespace (:class:`ahcore.scriptnamespace.ScriptNamespace`).
        Iterating it lists the request's own names only; ``copy()`` gives
        the full namespace. Built once per request, as :meth:`namespace`.
        """
        if self._namespace is not None:
            return self._namespace
        cls = self.site.script_namespace_class()
        ns = cls()
        # Python's builtins and, for class bodies, eval() and exec(), the site's names.
        ns["__builtins__"] = cls.script_builtins
        return await self._fill(ns)

    async def _fill(self, ns: DictObject) -> DictObject:
        request = self.request
        site = self.site
        # The kernel's own per-request names, set here rather than through
        # the request_namespace hook: a hook dispatch and a dict per name
        # source cost every script request (docs/performance.md). Plugins'
        # names come after them, so a plugin may replace one.
        ns["terminalType"] = terminal_type(request.headers.get(hdrs.USER_AGENT, ""))
        resolved = self.resolved
        ns["ref_real_path"] = str(resolved.path) if resolved is not None else None  # ahserver's
        user = site.request_user(self)
        ns["user"] = user if user is None else await user
        plugins = site.request_namespace_hook
        if plugins is not None:
            for extra in plugins(context=self):
                if type(extra) is not dict:  # noqa: E721 - the common case skips isawaitable
                    extra = await await_me_maybe(extra)
                if extra:
                    ns.update(extra)
        ns["request"] = request
        params = self._params
        if params is None:
            if request.method in BODY_METHODS or request.query_string:
                params = await self.params()
            else:  # nothing to read: skip the reader's coroutines
                params = self._params = DictObject()
        ns["params_kw"] = params
        self._namespace = ns
        if self.parent is None:  # a path_call child must not replace the caller's
            self.request._run_ns = ns  # noqa: SLF001 - ahserver's name
        return ns

    def activate(self) -> Token[RequestContext]:
        """Make this the :func:`current_context`; pass the token to :meth:`deactivate`."""
        return _CURRENT.set(self)

    def deactivate(self, token: Token[RequestContext]) -> None:
        """Undo :meth:`activate` once the processor is done with the request.

        A top-level context also lets go of its namespace: the namespace
        holds the request (``request``) and the request holds it
        (``request._run_ns``), a cycle only the garbage collector would
        free. The link is cut only when nothing else still holds the
        namespace (a function or task the script left behind keeps
        ``request._run_ns`` working).
        """
        _CURRENT.reset(token)
        ns = self._namespace
        if ns is not None and self.parent is None:
            self._namespace = None
            # ns is held by the request's attribute, the local name and
            # getrefcount's argument; anything more is someone else's.
            if sys.getrefcount(ns) <= 3 and self.request.__dict__.get("_run_ns") is ns:
                del self.request._run_ns  # type: ignore[attr-defined]  # noqa: SLF001 - ahserver's public name

    def child(self, resolved: Resolved, params: dict[str, Any]) -> RequestContext:
        """A context for ``path_call``: same request, another file, given parameters."""
        return RequestContext(self.request, self.site, resolved, DictObject(params), parent=self)
