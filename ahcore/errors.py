"""HTTP errors: raised where a problem is found, rendered in one place.

Visitors get a short message and, for a 500, an error id; the log gets the
same id with the traceback. Exception text reaches the visitor only in debug
mode.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import traceback
from collections.abc import Awaitable, Callable

from aiohttp import web

from ahcore.csrf import csrf_refusal

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


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message + "\n")


def not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text="404: Not Found\n")


def server_error(code: int, text: str | None = None) -> None:
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
    body = f"500: Internal Server Error (error id {error_id})\n"
    if debug:
        body += "\n" + "".join(traceback.format_exception(exc))
    return web.Response(status=500, text=body, headers={"X-Error-Id": error_id})


async def guard(request: web.Request, handler):
    """Refuse cross-site state changes (CSRF), and turn any unexpected
    exception into a 500 without a traceback for the visitor.

    Every request goes through this once: as a middleware when plugins add
    routes of their own (:data:`error_middleware`), else called directly by
    the catch-all handler, because an aiohttp middleware adds two layers
    (the middleware and aiohttp's own ``_fix_request_current_app``) to every
    request — about a tenth of a small script's cost.
    """
    reason = csrf_refusal(request)
    if reason is not None:
        raise web.HTTPForbidden(text=f"403: {reason}\n")
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        from ahcore.appkeys import get_site

        return internal_error_response(exc, request, get_site(request.app).debug)


error_middleware = web.middleware(guard)


def guarded(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """``handler`` behind :func:`guard`, for a route of an app without middleware."""

    async def guarded_handler(request: web.Request) -> web.StreamResponse:
        return await guard(request, handler)

    guarded_handler.__name__ = f"guarded_{getattr(handler, '__name__', 'handler')}"
    return guarded_handler
