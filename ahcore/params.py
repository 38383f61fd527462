"""``params_kw``: query string, urlencoded or multipart form and JSON body in one dict.

Repeated names become lists. A JSON object body is merged in; any other JSON
value is kept under ``_json``. Malformed JSON is a 400 that says so; a body
over ``client_max_size`` is a 413 (aiohttp enforces the limit while reading).
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from multidict import MultiMapping

from ahcore.dictobject import DictObject
from ahcore.errors import bad_request

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_JSON_DEPTH = 64


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


async def read_params(request: web.Request, uploads: Any = None) -> DictObject:
    """Collect the request's parameters into a fresh DictObject.

    ``uploads`` is the site's upload store (``ahcore.uploads.UploadStore``);
    multipart file parts are streamed to it and ``params_kw`` gets the
    stored subpath, as ahserver did.
    """
    params = DictObject()
    if request.method in BODY_METHODS and request.body_exists:
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
            await uploads.read_multipart(request, params)
        elif ctype == "application/x-www-form-urlencoded":
            try:
                form = await request.post()
            except ValueError as exc:
                raise bad_request(f"malformed form body: {exc}") from None
            merge_multidict(params, form)
    merge_multidict(params, request.query)
    return params
