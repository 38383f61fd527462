"""Function routes (ahserver's ``website.startswiths``) and each application's function registry.

An ahserver site sends whole URL subtrees to Python functions its app
modules registered by name::

    "website": {"startswiths": [{"leading": "/api/orders", "registerfunction": "orders"}]}

A request whose canonical path (decoded and normalised, as access control
sees it) starts with ``leading`` calls the function registered as
``orders`` — before any file is looked up, as in ahserver — like this::

    result = orders(request, params_kw, *rest, **namespace)

``rest`` is what follows ``leading``, without one leading ``/``, split at
``/`` (``/api/orders/12/lines`` → ``"12", "lines"``); ``namespace`` is the
processor namespace a script sees (``entire_url``, ``DBPools``,
``configValue`` …, without ``request`` and ``params_kw``). A function that
takes no ``**kwargs`` gets only the namespace names its signature declares.
It may be ``async`` or plain (a plain one runs on the event loop: keep it
quick, or hand blocking work to a thread). Its return value becomes the
response by ahserver's conventions (:func:`ahcore.processor.to_response`).

Matching is a plain string prefix, first entry first, as ahserver did:
``"/api/x"`` also matches ``/api/xyz`` (``rest`` is then ``"yz"``); write
``"/api/x/"`` to match only below the folder.

The routes are checked by the kernel's pipeline (:func:`ahcore.pipeline.serve`),
not added as aiohttp routes through ``register_routes``: that way a route
sees the same decoded, normalised path, trusted forwarded headers and
``auth_check`` as a file does, follows a hot-reloaded config, and a site
without routes pays one attribute test per request instead of a
middleware layer on every request.

The registry hangs off the application (:data:`FUNCTIONS_KEY`), never off
the module: two applications in one process have their own. Plugins and
embedding code use :func:`ahcore.api.register_function`; the
``ahcore-compat`` package wires ahserver's ``RegisterFunction().register``
to it. ahserver's own ``idfile`` and ``download`` functions (send a stored
upload by its ``path`` parameter) and ``i18n`` (a language's ``i18n.json``
for the bricks ``I18n`` class) are registered in every registry.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ahcore.appkeys import get_site
from ahcore.context import RequestContext, current_context
from ahcore.errors import bad_request, not_found
from ahcore.headers import stored_file_headers
from ahcore.processor import to_response

if TYPE_CHECKING:
    from ahcore.config import StartswithConfig
    from ahcore.site import Site

log = logging.getLogger("ahcore.functions")

#: What a function route answers, as a script does; the pipeline answers
#: OPTIONS itself (204 with ``Allow``) and anything else with 405.
FUNCTION_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

# Names every function gets positionally, never again as keywords.
_POSITIONAL_NAMES = frozenset({"request", "params_kw"})


@dataclass(frozen=True)
class RegisteredFunction:
    """A function and how to call it, worked out once when it is registered.

    ``keywords`` is ``None`` when the function takes ``**kwargs`` (it gets the
    whole namespace); otherwise the names it can take by keyword.
    ``positional`` are its positional-or-keyword parameter names in order:
    those filled by position (the request, ``params_kw``, the path parts)
    are never passed again by name.
    """

    name: str
    fn: Callable[..., Any]
    keywords: frozenset[str] | None
    positional: tuple[str, ...]

    @classmethod
    def make(cls, name: str, fn: Callable[..., Any]) -> RegisteredFunction:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):  # a builtin without a signature: give it everything
            return cls(name, fn, None, ())
        positional = tuple(
            p.name
            for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return cls(name, fn, None, positional)
        keywords = frozenset(
            p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        return cls(name, fn, keywords, positional)

    def keyword_arguments(self, namespace: dict[str, Any], n_positional: int) -> dict[str, Any]:
        """The namespace names this function is given by keyword."""
        taken = _POSITIONAL_NAMES.union(self.positional[:n_positional])
        if self.keywords is None:
            return {k: v for k, v in namespace.items() if k not in taken}
        return {k: namespace[k] for k in self.keywords if k in namespace and k not in taken}


class FunctionRegistry:
    """Name → function, for one application (ahserver's ``RegisterFunction``)."""

    def __init__(self) -> None:
        self._functions: dict[str, RegisteredFunction] = {}

    def register(self, name: str, fn: Callable[..., Any]) -> None:
        """Register ``fn`` as ``name``; a later registration under the same name replaces it."""
        if not isinstance(name, str) or not name:
            raise ValueError("a function is registered under a non-empty name")
        if not callable(fn):
            raise TypeError(f"register_function({name!r}, ...): {fn!r} is not callable")
        if name in self._functions:
            log.debug("function %r registered again; the new one replaces it", name)
        self._functions[name] = RegisteredFunction.make(name, fn)

    def get(self, name: str) -> RegisteredFunction | None:
        return self._functions.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __iter__(self) -> Iterator[str]:
        return iter(self._functions)


FUNCTIONS_KEY: web.AppKey[FunctionRegistry] = web.AppKey("ahcore.functions", FunctionRegistry)


def install_registry(app: web.Application) -> FunctionRegistry:
    """Give ``app`` its registry (while it is built), with ahserver's built-in functions."""
    registry = FunctionRegistry()
    registry.register("idfile", send_upload)
    registry.register("download", send_upload)
    registry.register("i18n", send_i18n_json)
    app[FUNCTIONS_KEY] = registry
    return registry


def registry_of(app: web.Application) -> FunctionRegistry:
    try:
        return app[FUNCTIONS_KEY]
    except KeyError:
        raise RuntimeError(
            "this application has no function registry: build it with ahcore.create_app"
        ) from None


def register_function(app: web.Application, name: str, fn: Callable[..., Any]) -> None:
    """Register ``fn`` under ``name`` for ``app``'s function routes (``website.startswiths``).

    May be called at any time, also once the application runs: a route
    looks its function up on every request.
    """
    registry_of(app).register(name, fn)


def registered_function(app: web.Application, name: str) -> Callable[..., Any] | None:
    """The function ``app`` has under ``name``, or ``None``."""
    found = registry_of(app).get(name)
    return found.fn if found is not None else None


# ---------------------------------------------------------------- routing


def match_route(routes: Sequence[StartswithConfig], path: str) -> StartswithConfig | None:
    """The first route whose ``leading`` starts ``path`` (a canonical URL path)."""
    for route in routes:
        if route.leading and path.startswith(route.leading):
            return route
    return None


def path_arguments(path: str, leading: str) -> list[str]:
    """What follows ``leading``, without one leading ``/``, split at ``/`` (ahserver's ``*args``)."""
    rest = path[len(leading) :]
    if not rest:
        return []
    if rest[0] == "/":
        rest = rest[1:]
    return rest.split("/")


async def call_route(
    site: Site, request: web.Request, route: StartswithConfig, path: str
) -> web.StreamResponse:
    """Answer ``request`` with the function ``route`` names.

    The pipeline has checked access, the method and fetch metadata
    (:func:`ahcore.pipeline.function_route`).
    """
    assert site.app is not None
    registered = registry_of(site.app).get(route.registerfunction)
    if registered is None:
        raise web.HTTPNotImplemented(
            text=(
                f"501: {route.leading!r} is routed to the function {route.registerfunction!r}, "
                "which is not registered\n"
            )
        )
    args = path_arguments(path, route.leading)
    context = RequestContext(request, site, None)
    token = context.activate()
    try:
        namespace = await context.namespace()
        params = namespace["params_kw"]
        kwargs = registered.keyword_arguments(namespace, 2 + len(args))
        result = registered.fn(request, params, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return to_response(result)
    finally:
        context.deactivate(token)


async def report_unregistered(app: web.Application) -> None:
    """At start-up, log once each route whose function is missing or that can never match.

    Runs after every start-up hook and background starter, so functions an
    app module registers there count. A function registered later still
    works: routes look their function up per request.
    """
    site = get_site(app)
    registry = registry_of(app)
    for i, route in enumerate(site.config.website.startswiths):
        where = f"website.startswiths[{i}]"
        if not route.leading.startswith("/"):
            log.error("%s: leading %r does not start with '/': it never matches", where, route.leading)
        elif route.registerfunction not in registry:
            log.error(
                "%s: %r is routed to the function %r, which is not registered "
                "(requests get 501 until an app module registers it)",
                where,
                route.leading,
                route.registerfunction,
            )


# ---------------------------------------------------------------- ahserver's built-ins


async def send_upload(request: web.Request, params_kw: Any, *args: str) -> web.FileResponse:
    """ahserver's ``idfile``/``download``: send the stored upload ``params_kw.path``.

    Only files under ``filesroot`` can be reached (anything else is 400, a
    missing file 404); with ``download`` set the browser is told to save it.
    """
    uploads = current_context().site.uploads
    if uploads is None:
        not_found()
    subpath = params_kw.get("path")
    if not isinstance(subpath, str) or not subpath.strip("/"):
        bad_request("this URL sends a stored file: give its path as ?path=")
    path = uploads.realpath(subpath)
    if not path.is_file():
        raise not_found()
    download = params_kw.get("download") not in (None, "", 0, "0", False)
    return web.FileResponse(path, headers=stored_file_headers(path.name, download))


async def send_i18n_json(request: web.Request, params_kw: Any, *args: str) -> Any:
    """ahserver's ``i18n``: the file ``/<i18n>/<lang>/i18n.json`` of the site, as JSON.

    ``lang`` is required; ``i18n`` names the folder (default ``i18n``). The
    file is found as a request for that URL would find it (content roots in
    order; ``..``, encoded slashes and dotfiles refused) and its URL's access
    rules apply. As in ahserver, a language without a file answers ``{}``.
    ahserver joined the two parameters into a file path unchecked: here each
    must be a plain name, else 400.
    """
    from ahcore.access import check_access
    from ahcore.resolver import RedirectToSlash, split_segments

    lang, folder = params_kw.get("lang"), params_kw.get("i18n") or "i18n"
    for name, value in (("lang", lang), ("i18n", folder)):
        if not isinstance(value, str) or not _PLAIN_NAME.fullmatch(value):
            bad_request(f"give {name}= as a plain name (letters, digits, '-', '_', '.')")
    site = current_context().site
    url = f"/{folder}/{lang}/i18n.json"
    try:
        found = site.resolver.resolve(split_segments(url), False)
    except (RedirectToSlash, web.HTTPNotFound):
        found = None
    if found is None or found.is_dir or found.spec is not None:
        return {}
    await check_access(site, request, found.url)
    # As the static file it is (read off the loop, ETag and 304 included).
    return web.FileResponse(found.path)


#: A ``lang`` or ``i18n`` parameter of :func:`send_i18n_json`: one path segment, not hidden.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
