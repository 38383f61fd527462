"""Where a request goes: forwarded headers → URL → access → processor or static file.

Read this file top to bottom to follow a request through ahcore.
"""

from __future__ import annotations

import html
import os
import posixpath
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

from aiohttp import web

from ahcore.access import check_access
from ahcore.context import RequestContext
from ahcore.csrf import cross_site_fetch
from ahcore.errors import not_found
from ahcore.forwarded import apply_forwarded, request_origin
from ahcore.functions import FUNCTION_METHODS, call_route, match_route
from ahcore.processor import Processor, to_response
from ahcore.resolver import RedirectToSlash, Resolved, split_segments
from ahcore.session import request_state
from ahcore.site import Site, Snapshot

if TYPE_CHECKING:
    from ahcore.config import StartswithConfig
    from ahcore.staticfiles import StaticCache

STATIC_METHODS = ("GET", "HEAD")

#: The base class's ``respond``: a processor that keeps it is answered by
#: ``to_response(await produce(...))`` in :func:`serve` itself.
DEFAULT_RESPOND = Processor.respond

#: The methods anything on a site may answer; TRACE, TRACK, CONNECT and
#: WebDAV methods are refused everywhere, before any lookup (SPEC §14).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


#: What stays as it is in a redirect's path: RFC 3986 ``pchar`` and ``/``.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


def slash_location(url: str, raw_target: str) -> str:
    """The ``Location`` of a folder's redirect to its trailing slash.

    ``url`` is the canonical, decoded path: it is percent-encoded again, so a
    folder named ``x?y`` or ``h#x`` stays a path (``/x%3Fy/``). The query is
    the client's own, byte for byte.
    """
    query = raw_target.partition("?")[2]
    return quote(url, safe=_PATH_SAFE) + (f"?{query}" if query else "")


def method_not_allowed(method: str, allowed: tuple[str, ...]) -> NoReturn:
    """Raise 405 naming what the resource answers (``OPTIONS`` always included)."""
    allow = (*allowed, "OPTIONS")
    raise web.HTTPMethodNotAllowed(
        method, allow, text=f"405: {method} is not allowed here; use {', '.join(allow)}\n"
    )


def options_response(allowed: tuple[str, ...]) -> web.Response:
    """The kernel's own answer to ``OPTIONS``: what the resource allows, nothing run."""
    return web.Response(status=204, headers={"Allow": ", ".join((*allowed, "OPTIONS"))})


def other_method(method: str, allowed: tuple[str, ...]) -> web.Response:
    """For a method the resource does not answer: ``OPTIONS`` is answered, the rest is a 405."""
    if method == "OPTIONS":
        return options_response(allowed)
    method_not_allowed(method, allowed)


def cross_site_refused() -> NoReturn:
    """Raise 403 for a request another site's page made (see :func:`ahcore.csrf.cross_site_fetch`)."""
    raise web.HTTPForbidden(
        text="403: Forbidden: another site's page may not make your browser run this "
        "(cross-site request refused by its Sec-Fetch headers)\n"
    )


async def serve(site: Site, request: web.Request) -> web.StreamResponse:
    """Forwarded headers → URL → (function route) → access → processor or static file.

    The catch-all route: every URL that is not a plugin route comes here,
    behind :func:`ahcore.errors.guard` (``create_app`` binds ``site``), so an
    error anywhere below is raised, never returned.

    The request runs on the snapshot of the config it started with (see
    :class:`ahcore.site.Snapshot`): a reload landing meanwhile changes
    nothing it sees.

    One coroutine from here to the processor's ``respond``: every layer
    (a call, an ``await``) is paid by every request.
    """
    snapshot, pin = site.pin()
    try:
        if snapshot.trusted_proxies:
            request_state(request)  # created before cloning, so shared: see RequestSessionState
            request = apply_forwarded(request, snapshot.trusted_proxies)

        method = request.method
        if method not in KNOWN_METHODS:
            method_not_allowed(method, ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"))

        raw_path = request.raw_path.split("?", 1)[0]
        resolver = snapshot.resolver
        segments, want_slash = resolver.segments(raw_path)
        routes = snapshot.config.website.startswiths
        if routes:  # function routes win over files, as in ahserver (ahcore.functions)
            path = resolver.canonical(segments, want_slash)
            route = match_route(routes, path)
            if route is not None:
                return await function_route(site, snapshot, request, route, path)
        try:
            resolved = resolver.resolve_page(segments, want_slash)
        except RedirectToSlash as redirect:
            await check_access(site, request, redirect.url)
            raise web.HTTPMovedPermanently(slash_location(redirect.url, request.raw_path)) from None

        if site.uses_auth():
            await check_access(
                site, request, resolved.url if resolved else resolver.canonical(segments)
            )
        if resolved is None:
            not_found()
        spec = resolved.spec
        if spec is None:
            if resolved.is_dir:
                return directory_listing(request, resolved)
            return static_file(request, resolved, site.static_cache)

        # The processor, in this coroutine: every layer costs every request.
        processor = site.processor_cache.fresh(resolved.path, resolved.stat)
        if processor is None:
            processor = await site.processor_cache.get(spec, resolved.path, resolved.stat, site)
        allowed = processor.methods or spec.methods
        if method not in allowed:
            return other_method(method, allowed)
        if (
            not spec.cross_site
            and request.headers.get("Sec-Fetch-Site") == "cross-site"
            and cross_site_fetch(request)
            and resolved.url not in snapshot.config.website.cross_site_paths
        ):
            cross_site_refused()
        context = RequestContext(request, site, resolved)
        token = context.activate()
        try:
            if type(processor).respond is DEFAULT_RESPOND:  # Processor.respond, one await less
                return to_response(await processor.produce(context))
            return await processor.respond(context)
        finally:
            context.deactivate(token)
    finally:
        site.unpin(pin)


async def function_route(
    site: Site, snapshot: Snapshot, request: web.Request, route: StartswithConfig, path: str
) -> web.StreamResponse:
    """A ``website.startswiths`` route: access, methods and fetch metadata as for a script."""
    await check_access(site, request, path)
    if request.method not in FUNCTION_METHODS:
        return other_method(request.method, FUNCTION_METHODS)
    exempt = snapshot.config.website.cross_site_paths
    if cross_site_fetch(request) and path not in exempt and route.leading not in exempt:
        cross_site_refused()
    return await call_route(site, request, route, path)


def static_file(
    request: web.Request, resolved: Resolved, cache: StaticCache | None = None
) -> web.StreamResponse:
    """A small file from ``cache`` (no thread hop), else aiohttp's FileResponse.

    Both send the same ETag, Last-Modified, Content-Type, 304 and ``HEAD``
    answers; Range, 412 and precompressed siblings are FileResponse's (see
    :mod:`ahcore.staticfiles`).
    """
    if request.method not in STATIC_METHODS:
        return other_method(request.method, STATIC_METHODS)
    if cache is None:
        return web.FileResponse(resolved.path)
    return cache.respond(request, resolved.path, resolved.stat)


def directory_listing(request: web.Request, resolved: Resolved) -> web.Response:
    """A plain HTML index (only when ``website.allowListFolder`` is true)."""
    if request.method not in STATIC_METHODS:
        return other_method(request.method, STATIC_METHODS)
    entries = []
    with os.scandir(resolved.path) as it:
        for entry in sorted(it, key=lambda e: (not e.is_dir(), e.name)):
            if entry.name.startswith("."):
                continue
            if not (entry.is_dir() or entry.is_file()):
                continue  # a FIFO, socket, device or dangling link: never served
            name = entry.name + ("/" if entry.is_dir() else "")
            href = html.escape(resolved.url.rstrip("/") + "/" + name, quote=True)
            entries.append(f'<li><a href="{href}">{html.escape(name)}</a></li>')
    title = html.escape(resolved.url)
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Index of {title}</title>"
        f"</head><body><h1>Index of {title}</h1><ul>{''.join(entries)}</ul></body></html>"
    )
    return web.Response(text=body, content_type="text/html")


_OWN_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def site_path(request: web.Request, base_url: str, url: str) -> str | None:
    """The path on this site that ``url`` names, as ahserver's ``entireUrl`` + ``url2path``.

    ``url`` may be relative (to the folder of ``base_url``, the calling
    file's URL), absolute (``/…``) or a full URL of this site's own origin
    (what ``entire_url`` returns; ``ws``/``wss`` count as ``http``/``https``);
    a full URL of another origin is None. ``.`` and ``..`` are resolved
    lexically and never climb above the root, as ahserver's ``realurl`` did;
    the resolver's own checks (dotfiles, encoded tricks) still apply to the
    result. Query and fragment are dropped.
    """
    scheme, sep, rest = url.partition("://")
    if sep:
        if scheme.lower() not in _OWN_SCHEMES:
            return None
        origin = request_origin(request)
        own_scheme, _, own_rest = origin.partition("://")
        here, own = rest.lower(), own_rest.lower()  # host names ignore case
        if _OWN_SCHEMES[scheme.lower()] != own_scheme or not (
            here == own or here.startswith((own + "/", own + "?", own + "#"))
        ):
            return None
        url = rest[len(own_rest):] or "/"
    elif not url.startswith("/"):
        url = base_url.rsplit("/", 1)[0] + "/" + url
    return normalize_url_path(url)


def normalize_url_path(url: str) -> str:
    """``url``'s path with ``.``, ``..`` and empty segments resolved lexically (never above ``/``).

    A trailing slash is kept: it names a folder's index.
    """
    path = url.split("?", 1)[0].split("#", 1)[0]
    folded = "/" + posixpath.normpath("/" + path).lstrip("/")
    if path.endswith("/") and folded != "/":
        folded += "/"
    return folded


async def path_call(context: RequestContext, path: str, params: dict[str, Any]) -> Any:
    """Run the processor of another URL and return what it produced (not a response).

    ``path`` is resolved like a request URL (relative paths against the
    calling file's folder, ``..`` lexically, a full URL of this site's own
    origin as its path: :func:`site_path`) and access control applies to
    it as well. A URL of another origin is a 404.
    """
    site = context.site
    local = site_path(context.request, context.url, path)
    if local is None:
        not_found()
    path = local
    segments = split_segments(path)
    try:
        resolved = site.resolver.resolve(segments, path.endswith("/"))
    except RedirectToSlash:
        resolved = site.resolver.resolve(segments, True)
    if resolved is None or resolved.spec is None:
        not_found()
    await check_access(site, context.request, resolved.url)
    processor = await site.processor_cache.get(resolved.spec, resolved.path, resolved.stat, site)
    child = context.child(resolved, params)
    token = child.activate()
    try:
        return await processor.produce(child)
    finally:
        child.deactivate(token)
