"""``params_kw``: query string, urlencoded or multipart form and JSON body in one dict.

Repeated names become lists. A JSON object body is merged in; any other JSON
value is kept under ``_json``. Malformed JSON is a 400 that says so; a body
over ``client_max_size`` is a 413 (aiohttp enforces the limit while reading).
A body not read within ``website.request_timeout`` seconds (counted from
when reading starts) is a 408; the files of an upload cut off that way are
deleted like on any other failure (``ahcore/uploads.py``).

:func:`read_body` is the one body reader of the kernel and of every plugin
(SPEC §16): ``params`` (what ``params_kw`` holds), ``fields`` (the body's
form fields or JSON object, where a JSON value that is not an object is a
400) and ``raw`` (the bytes). Every mode is bound by the same size limit and
read time limit; :func:`read_params` is its ``params`` mode.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Literal, TypeVar, cast, overload

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

#: What :func:`read_body` returns: see its docstring.
BodyMode = Literal["params", "fields", "raw"]
_MODES = frozenset({"params", "fields", "raw"})


def merge_multidict(target: dict[str, Any], items: MultiMapping[Any]) -> None:
    for key in items:
        if key in target:
            continue
        values = items.getall(key)
        target[key] = values[0] if len(values) == 1 else list(values)


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        bad_request(f"malformed JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
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
    """Collect the request's parameters into a fresh DictObject (``read_body``'s ``params`` mode).

    ``uploads`` is the site's upload store (``ahcore.uploads.UploadStore``);
    multipart file parts are streamed to it and ``params_kw`` gets the
    stored subpath, as ahserver did. Reading the body must finish within
    ``timeout`` seconds (default: the site's ``website.request_timeout``),
    else 408.
    """
    return await read_body(request, "params", uploads=uploads, timeout=timeout)


@overload
async def read_body(
    request: web.Request, mode: Literal["raw"], *, timeout: float | None = None
) -> bytes: ...


@overload
async def read_body(
    request: web.Request,
    mode: Literal["params", "fields"] = "params",
    *,
    uploads: Any = None,
    timeout: float | None = None,
) -> DictObject: ...


async def read_body(
    request: web.Request,
    mode: BodyMode = "params",
    *,
    uploads: Any = None,
    timeout: float | None = None,
) -> DictObject | bytes:
    """Read the request's body: the one reader, bound by the site's limits.

    Every mode stops at ``website.client_max_size`` (413) and must finish
    within ``timeout`` seconds (default ``website.request_timeout``, counted
    from when reading starts), else 408 and the connection is closed — so a
    client trickling its body one byte at a time cannot hold a connection.

    - ``"params"``: ``params_kw`` — the query string, and for POST, PUT,
      PATCH and DELETE the urlencoded or multipart form or the JSON body (an
      object is merged in, any other JSON value kept under ``_json``).
    - ``"fields"``: the body alone (no query string), as form fields or a
      JSON **object**: a JSON body such as ``[1, 2]`` or ``42`` is a 400
      ("a JSON object is expected"), another content type with a body a 415.
      For a login form or a JSON API.
    - ``"raw"``: the body's bytes (``b""`` without a body).

    Malformed JSON or forms are a 400 that says so. ``uploads`` (the site's
    :class:`~ahcore.uploads.UploadStore`, ``get_site(app).uploads``) lets
    ``params`` and ``fields`` accept multipart uploads (else 415).
    """
    if mode not in _MODES:
        raise ValueError(f"read_body: unknown mode {mode!r} (expected one of {sorted(_MODES)})")
    if mode == "raw":
        if not request.body_exists:
            return b""
        return cast("DictObject | bytes", await _within_deadline(request, timeout, _read_raw(request)))
    params = DictObject()
    query = request.query if mode == "params" and request.query_string else None
    if query is not None:
        _refuse_reserved(query, "query string")  # before a body is read (and uploads stored)
    if request.body_exists and (mode == "fields" or request.method in BODY_METHODS):
        await _within_deadline(
            request, timeout, _read_body(request, uploads, params, fields=mode == "fields")
        )
    if query is not None:
        merge_multidict(params, query)
    return params


#: Names only the kernel sets in ``params_kw``: ``_files`` describes the
#: stored uploads (a script may trust its ``subpath``), ``_json`` holds a
#: JSON body that is not an object. A client sending either is refused.
RESERVED_PARAMS = ("_files", "_json")


def _refuse_reserved(names: Any, where: str) -> None:
    for name in RESERVED_PARAMS:
        if name in names:
            bad_request(f"the parameter name {name!r} is reserved (in the {where})")


async def _read_raw(request: web.Request) -> bytes:
    # aiohttp stops at client_max_size with a 413 while reading.
    return await request.read()


async def _within_deadline(request: web.Request, timeout: float | None, reading: Any) -> Any:
    """Await ``reading`` (a coroutine reading the body) within the body deadline."""
    if request.content.is_eof():
        # The whole body is already buffered: reading cannot wait.
        return await reading
    seconds = body_timeout(request) if timeout is None else timeout
    try:
        async with _deadline(seconds):
            return await reading
    except asyncio.TimeoutError:
        raise body_timeout_error(seconds) from None


async def _read_body(
    request: web.Request, uploads: Any, params: DictObject, *, fields: bool = False
) -> None:
    """Read the body into ``params``; with ``fields``, JSON must be an object."""
    ctype = request.content_type
    if ctype == "application/json" or ctype.endswith("+json"):
        body = await request.read()
        if body.strip():
            try:
                data = msgspec.json.decode(body)
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                bad_request(f"malformed JSON body: {exc}")
            except RecursionError:
                bad_request(
                    f"malformed JSON body: nested deeper than {MAX_JSON_DEPTH} levels"
                )
            _check_depth(data)
            if isinstance(data, dict):
                _refuse_reserved(data, "JSON body")
                params.update(data)
            elif fields:
                bad_request(f"a JSON object is expected, got {_json_kind(data)}")
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
            bad_request(f"malformed form body: {exc}")
        _refuse_reserved(form, "form")
        merge_multidict(params, form)
    elif fields:
        if await request.content.read(1):
            raise web.HTTPUnsupportedMediaType(
                text=f"415: expected a form or a JSON object, got {ctype or 'no content type'}\n"
            )


def _json_kind(value: Any) -> str:
    """How a 400 names a JSON value that is not an object."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
