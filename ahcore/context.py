"""The per-request context: everything request-specific, and nothing shared.

Processor objects are shared between concurrent requests; they receive a
:class:`RequestContext` and keep request state on it (never on themselves).
The namespace a script or template sees is built from it on demand, so a
static file or a cached markdown page never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ahcore.dictobject import DictObject
from ahcore.params import read_params
from ahcore.plugins import await_me_maybe

if TYPE_CHECKING:
    from ahcore.resolver import Resolved
    from ahcore.site import Site


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
        self._namespace: dict[str, Any] | None = None
        # Free per-request storage for plugins (keyed by plugin name).
        self.state: dict[str, Any] = {}

    @property
    def url(self) -> str:
        """The canonical URL of the file being processed."""
        return self.resolved.url if self.resolved is not None else self.request.path

    async def params(self) -> DictObject:
        """``params_kw`` for this request, read from the request once."""
        if self._params is None:
            self._params = await read_params(self.request, self.site.uploads)
        return self._params

    async def namespace(self) -> dict[str, Any]:
        """The full processor namespace (SPEC §6), built once per request.

        Global names come first, then per-request names from the
        ``request_namespace`` hook, then ``request`` and ``params_kw`` — so no
        request parameter can ever replace a namespace name.
        """
        if self._namespace is not None:
            return self._namespace
        ns = dict(self.site.global_namespace)
        for function, takes_context in self.site.request_namespace_impls:
            extra = await await_me_maybe(function(self) if takes_context else function())
            if extra:
                ns.update(extra)
        ns["request"] = self.request
        ns["params_kw"] = await self.params()
        self._namespace = ns
        if self.parent is None:  # a path_call child must not replace the caller's
            self.request._run_ns = ns  # ahserver's name
        return ns

    def child(self, resolved: Resolved, params: dict[str, Any]) -> RequestContext:
        """A context for ``path_call``: same request, another file, given parameters."""
        return RequestContext(self.request, self.site, resolved, DictObject(params), parent=self)
