"""``params_kw``: query string, urlencoded or multipart form and JSON body in one dict.

Repeated names become lists. A JSON object body is merged in; any other JSON
value is kept under ``_json``. Malformed JSON is a 400 that says so; a body
over ``client_max_size`` is a 413 (aiohttp enforces the limit while reading).
A body not read within ``website.request_timeout`` seconds (counted from
when reading starts) is a 408; the files of an upload cut off that way are
deleted like on any other failure (``ahcore/uploads.py``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from multidict import MultiMapping

from ahcore.dictobject import DictObject
from ahcore.errors import bad_request

if sys.version_info >= (3, 11):
    from asyncio import timeout as _deadline
else:  # pragma: no cover - aiohttp depends on async-timeout before 3.11
    from async_timeout import timeout as _deadline

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Parameters ahserver 1.2.0 hands to scripts as ints when their text is one
#: (``change_fixvalues`` in its ``processorResource.getArgs``): bricks' page
#: flags and sizes, and the paging pair.
INT_PARAMS = ("_webbricks_", "_is_mobile", "_width", "_height", "page", "rows")
MAX_JSON_DEPTH = 64
#: Seconds to read a body when the request's app is not an ahcore site.
DEFAULT_BODY_TIMEOUT = 60.0


def merge_multidict(target: dict[str, Any], items: MultiMapping[Any]) -> None:
    for key in items:
        if key in target:
            continue
        values = items.getall(key)
        target[key] = values[0] if len(values) == 1 else list(values)


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise bad_request(f"malformed JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        for v in value.values():
            _check_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(v, depth + 1)


def body_timeout(request: web.Request) -> float:
    """The site's ``website.request_timeout``: seconds allowed for reading a body."""
    from ahcore.appkeys import SITE_KEY

    site = request.app.get(SITE_KEY)
    return DEFAULT_BODY_TIMEOUT if site is None else site.config.website.request_timeout


def body_timeout_error(seconds: float) -> web.HTTPRequestTimeout:
    """408 for a body that did not arrive in time; the connection is closed after it."""
    exc = web.HTTPRequestTimeout(text=f"408: request body not received within {seconds:g} s\n")
    exc.force_close()
    return exc


_Params = TypeVar("_Params", bound=dict[str, Any])


def ahserver_ints(params: _Params) -> _Params:
    """Turn the :data:`INT_PARAMS` values that are text of an int into ints, in place.

    Exactly ahserver's rule: a ``str`` value becomes ``int(value)`` when
    Python's ``int()`` accepts it (``" 7 "``, ``"+3"``, ``"-1"``, ``"1_000"``);
    anything else — other text, a repeated parameter (a list), a JSON
    number — is left as it is.
    """
    for key in INT_PARAMS:
        value = params.get(key)
        if isinstance(value, str):
            try:
                params[key] = int(value)
            except ValueError:
                pass
    return params


async def read_params(
    request: web.Request, uploads: Any = None, *, timeout: float | None = None
) -> DictObject:
    """Collect the request's parameters into a fresh DictObject.

    ``uploads`` is the site's upload store (``ahcore.uploads.UploadStore``);
    multipart file parts are streamed to it and ``params_kw`` gets the
    stored subpath, as ahserver did. Reading the body must finish within
    ``timeout`` seconds (default: the site's ``website.request_timeout``),
    else 408.
    """
    params = DictObject()
    if request.method in BODY_METHODS and request.body_exists:
        if request.content.is_eof():
            # The whole body is already buffered: reading cannot wait.
            await _read_body(request, uploads, params)
        else:
            seconds = body_timeout(request) if timeout is None else timeout
            try:
                async with _deadline(seconds):
                    await _read_body(request, uploads, params)
            except asyncio.TimeoutError:
                raise body_timeout_error(seconds) from None
    if request.query_string:
        merge_multidict(params, request.query)
    return params


async def _read_body(request: web.Request, uploads: Any, params: DictObject) -> None:
    ctype = request.content_type
    if ctype == "application/json" or ctype.endswith("+json"):
        body = await request.read()
        if body.strip():
            try:
                data = msgspec.json.decode(body)
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                raise bad_request(f"malformed JSON body: {exc}") from None
            except RecursionError:
                raise bad_request(
                    f"malformed JSON body: nested deeper than {MAX_JSON_DEPTH} levels"
                ) from None
            _check_depth(data)
            if isinstance(data, dict):
                params.update(data)
            else:
                params["_json"] = data
    elif ctype == "multipart/form-data":
        if uploads is None:
            raise web.HTTPUnsupportedMediaType(text="uploads are not enabled on this site\n")
        # Cancelled at the deadline: read_multipart deletes what it stored.
        await uploads.read_multipart(request, params)
    elif ctype == "application/x-www-form-urlencoded":
        try:
            form = await request.post()
        except ValueError as exc:
            raise bad_request(f"malformed form body: {exc}") from None
        merge_multidict(params, form)
