"""HTTP errors: raised where a problem is found, rendered in one place.

Visitors get a short message and, for a 500, an error id; the log gets the
same id with the traceback. Exception text reaches the visitor only in debug
mode.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NoReturn

from aiohttp import web

from ahcore import debugpage
from ahcore.appkeys import SITE_KEY
from ahcore.csrf import STATE_CHANGING, csrf_refusal
from ahcore.forwarded import forwarded_refusal, forwarded_refusal_from
from ahcore.jsonutil import json_response
from ahcore.loginpage import login_redirect

if TYPE_CHECKING:
    from ahcore.site import Site

log = logging.getLogger("ahcore.errors")

_BY_CODE: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    405: web.HTTPMethodNotAllowed,
    408: web.HTTPRequestTimeout,
    409: web.HTTPConflict,
    410: web.HTTPGone,
    413: web.HTTPRequestEntityTooLarge,
    415: web.HTTPUnsupportedMediaType,
    429: web.HTTPTooManyRequests,
    500: web.HTTPInternalServerError,
    502: web.HTTPBadGateway,
    503: web.HTTPServiceUnavailable,
    504: web.HTTPGatewayTimeout,
}


def bad_request(message: str) -> NoReturn:
    """Raise 400 with ``message`` (what was wrong with the request)."""
    raise web.HTTPBadRequest(text=message + "\n")


def not_found() -> NoReturn:
    """Raise 404."""
    raise web.HTTPNotFound(text="404: Not Found\n")


def server_error(code: int, text: str | None = None) -> NoReturn:
    """ahserver's ``server_error(code)``: raise the HTTP exception for ``code``."""
    cls = _BY_CODE.get(int(code))
    if cls is None:
        exc = web.HTTPException(text=text)
        exc.set_status(int(code))
        raise exc
    if cls is web.HTTPMethodNotAllowed:
        raise web.HTTPMethodNotAllowed("", [], text=text)
    if cls is web.HTTPRequestEntityTooLarge:
        raise web.HTTPRequestEntityTooLarge(0, 0, text=text)
    raise cls(text=text)


def new_error_id() -> str:
    return secrets.token_hex(6)


# ------------------------------------------------------------------ error bodies
# One place decides what an error looks like (SPEC §16): JSON for a client
# that asks for it and for every data endpoint, an HTML page for a browser,
# plain text for everyone else. The status, and headers such as Allow or
# Retry-After, are the same whatever the body.

#: Headers of an HTTP exception that belong to the answer whatever its body.
_KEPT_HEADERS = (
    "Allow",
    "Retry-After",
    "WWW-Authenticate",
    "Upgrade",
    "Content-Range",
    "X-Error-Id",
    "Location",
    "Connection",
)

_PAGE = (
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>{status} {reason}</title><style>body{{font:16px/1.5 system-ui,sans-serif;"
    "max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}h1{{font-size:1.6rem}}"
    "p{{color:#555}}</style></head><body><h1>{status} {reason}</h1><p>{message}</p>"
    "</body></html>\n"
)


def wants_json(request: web.Request) -> bool:
    """Whether the client prefers JSON: its ``Accept`` names JSON before any HTML."""
    accept = request.headers.get("Accept", "")
    if "json" not in accept:
        return False
    html_at = accept.find("text/html")
    return html_at < 0 or accept.find("json") < html_at


def wants_html(request: web.Request) -> bool:
    """Whether a browser is showing this answer as a page."""
    return request.headers.get("Sec-Fetch-Dest") == "document" or "text/html" in request.headers.get(
        "Accept", ""
    )


def is_data_endpoint(request: web.Request) -> bool:
    """Whether the URL names a data source (a processor with ``data=True``)."""
    site = request.app.get(SITE_KEY)
    if site is None:
        return False
    match = site.processors.match(request.path.rsplit("/", 1)[-1])
    return match is not None and match[1].data


def error_message(exc: web.HTTPException) -> str:
    """The exception's text without its ``"404: "`` prefix."""
    text = (exc.text or exc.reason or "").strip()
    prefix = f"{exc.status}:"
    if text.startswith(prefix):
        text = text[len(prefix):].strip()
    return text or exc.reason


def error_response(
    request: web.Request, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """The answer for an error, in the form this client reads best.

    A 401 on a browser's navigation is a redirect to the site's login page
    instead (:func:`ahcore.loginpage.login_redirect`).
    """
    if status == 401:
        redirect = login_redirect(request, headers)
        if redirect is not None:
            return redirect
    reason = _reason(status)
    if wants_json(request) or is_data_endpoint(request):
        response = json_response({"error": {"status": status, "message": message}}, status=status)
    elif wants_html(request):
        page = _site_page(request, status) or _PAGE.format(
            status=status, reason=html.escape(reason), message=html.escape(message)
        )
        response = web.Response(status=status, text=page, content_type="text/html")
    else:
        response = web.Response(status=status, text=f"{status}: {message}\n")
    if headers:
        response.headers.update(headers)
    return response


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _site_page(request: web.Request, status: int) -> str | None:
    """A site's own page for ``status``: ``/errors/<status>.html`` in its roots, if present."""
    site = request.app.get(SITE_KEY)
    if site is None:
        return None
    found = site.resolve(f"/errors/{status}.html")
    if found is None or found.spec is not None or found.is_dir:
        return None
    try:
        text: str = found.path.read_text(encoding=site.config.website.coding)
    except (OSError, UnicodeDecodeError):
        return None
    return text


def http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response | None:
    """An HTTP error raised anywhere, rendered by :func:`error_response`.

    ``None`` for what is not an error to render — a redirect or success, or
    a 4xx/5xx whose body is already JSON (a plugin's own API answer): the
    caller re-raises those as they are.
    """
    if exc.status < 400 or exc.content_type == "application/json":
        return None
    headers = {k: v for k in _KEPT_HEADERS if (v := exc.headers.get(k)) is not None}
    return error_response(request, exc.status, error_message(exc), headers)


def internal_error_response(exc: BaseException, request: web.Request, debug: bool) -> web.Response:
    """Log ``exc`` with its traceback under a fresh id; answer 500 with the id only."""
    error_id = new_error_id()
    log.error(
        "error %s on %s %s:\n%s",
        error_id,
        request.method,
        request.path_qs,
        "".join(traceback.format_exception(exc)),
    )
    message = f"Internal Server Error (error id {error_id})"
    if debug:  # never in production: the debug page shows source and names
        if wants_html(request) and not wants_json(request):
            page = debugpage.debug_page(exc, request, error_id, request.app.get(SITE_KEY))
            return web.Response(
                status=500, text=page, content_type="text/html", headers={"X-Error-Id": error_id}
            )
        message += "\n\n" + debugpage.debug_text(exc)
    return error_response(request, 500, message, {"X-Error-Id": error_id})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Set on a handler :func:`guard` made, so wrapping it again is a no-op.
_GUARDED = "__ahcore_guarded__"


def guard(handler: Handler, site: Site | None = None) -> Handler:
    """``handler`` behind the one error path every route of an app goes through.

    The guarded handler refuses malformed forwarded headers from a trusted
    proxy (400) and cross-site state changes (CSRF, 403) before ``handler``
    runs, then turns what it raises into the answer: an HTTP error (4xx/5xx,
    raised anywhere below) through :func:`http_error_response`, any other
    exception into a 500 without a traceback (:func:`internal_error_response`).
    Redirects, JSON error bodies of a plugin's own API, cancellation and
    connection resets pass through as they are.

    :func:`ahcore.app.create_app` wraps every route at registration — the
    catch-all, the hot-reload endpoint, each plugin route — so there is no
    middleware layer: an aiohttp middleware adds two calls (the middleware
    and aiohttp's own ``_fix_request_current_app``) to every request.
    Wrapping a guarded handler again returns it unchanged.

    ``site`` is the site of the app the route belongs to: its trusted
    proxies are read from it instead of through ``request.app`` (a chain
    of Python-level lookups on every request). Without it they are looked
    up per request, as for a route of an app that has no site.
    """
    if getattr(handler, _GUARDED, False):
        return handler

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            if site is None:
                bad_forwarding = forwarded_refusal(request)
            else:
                bad_forwarding = forwarded_refusal_from(request, site.snapshot.trusted_proxies)
            if bad_forwarding is not None:
                bad_request(bad_forwarding)
            if request.method in STATE_CHANGING:  # the only ones csrf_refusal checks
                reason = csrf_refusal(request)
                if reason is not None:
                    raise web.HTTPForbidden(text=reason + "\n")
            return await handler(request)
        except web.HTTPException as exc:
            response = http_error_response(request, exc)
            if response is None:
                raise
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            return internal_error_response(exc, request, request.app[SITE_KEY].debug)

    name = getattr(handler, "__name__", None) or getattr(
        getattr(handler, "func", None), "__name__", "handler"
    )
    guarded.__name__ = guarded.__qualname__ = f"guarded_{name}"
    setattr(guarded, _GUARDED, True)
    return guarded


def guard_routes(app: web.Application) -> None:
    """Put every route of ``app`` behind :func:`guard`; guarded routes are left as they are.

    ``create_app`` calls it after the plugins' ``register_routes``, and again
    at start-up (for routes ``init(app)`` added) and after the plugins'
    ``on_startup`` hooks, so a route goes through the same error path
    whenever it was added. A route is re-registered on its own resource with
    the guarded handler (names, order and URL building are unchanged).
    Static folders (``add_static``) and sub-applications keep aiohttp's own
    handlers.
    """
    site = app.get(SITE_KEY)
    for resource in app.router.resources():
        if not isinstance(resource, web.Resource):
            continue
        for route in list(resource):
            if not getattr(route.handler, _GUARDED, False):
                resource.register_route(
                    web.ResourceRoute(
                        route.method,
                        guard(route.handler, site),
                        resource,
                        expect_handler=route.handle_expect_header,
                    )
                )
