"""JSON encoding for responses and scripts (msgspec, JSON-safe conversions)."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import msgspec
from aiohttp import web


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        return float(obj) if obj != obj.to_integral_value() else int(obj)
    if isinstance(obj, (datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise NotImplementedError(f"cannot encode {type(obj).__name__} as JSON")


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook, decimal_format="number")


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as JSON bytes; dates become ISO strings, decimals numbers."""
    return _encoder.encode(obj)


#: The Content-Type of every JSON answer, as one header: giving aiohttp the
#: finished header skips its content-type and charset parsing per response.
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def json_response(obj: Any, *, status: int = 200) -> web.Response:
    """``obj`` as a JSON answer (``application/json; charset=utf-8``)."""
    return web.Response(body=_encoder.encode(obj), status=status, headers=JSON_HEADERS)
