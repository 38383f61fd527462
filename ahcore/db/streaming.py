"""Rows to JSON on the wire, one batch at a time.

:class:`JsonRowsWriter` writes a JSON document whose one large member is a
list of records — ``[…]`` or ``{"total": n, "rows": […]}`` — to an aiohttp
:class:`~aiohttp.web.StreamResponse`: each batch of rows is encoded with
msgspec and written (and drained) before the next is read, so memory holds
one batch whatever the size of the answer.

Headers go out before the first row. An error after that cannot become an
error status any more: :meth:`JsonRowsWriter.abort` closes the connection
without ending the chunked body, so the client sees an incomplete
response, never a short but well-formed one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from ahcore.db.records import row_dicts, row_structs
from ahcore.jsonutil import dumps

log = logging.getLogger("ahcore.db.streaming")


def encode_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """``{…},{…}``: the records of ``rows`` as JSON list items, without the brackets."""
    if not rows:
        return b""
    records = row_structs(columns, rows)
    return dumps(records if records is not None else row_dicts(columns, rows))[1:-1]


class JsonRowsWriter:
    """One streamed JSON answer: ``head``, rows separated by commas, ``tail``."""

    def __init__(
        self,
        request: web.Request,
        *,
        head: bytes = b"[",
        tail: bytes = b"]",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.request = request
        self.head = head
        self.tail = tail
        self.response = web.StreamResponse(headers=dict(headers or {}))
        self.response.content_type = "application/json"
        self.response.charset = "utf-8"
        self.rows_written = 0

    @property
    def started(self) -> bool:
        """Whether the headers have gone out (errors can no longer change the status)."""
        return self.response.prepared

    @property
    def wants_body(self) -> bool:
        """False for HEAD: aiohttp would send whatever is written, so nothing is."""
        return self.request.method != "HEAD"

    async def start(self) -> None:
        """Send the headers and the opening of the document."""
        await self.response.prepare(self.request)
        if self.wants_body:
            await self.response.write(self.head)

    async def write(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Encode and send one batch; waits while the client is slower than the database."""
        if not rows or not self.wants_body:
            return
        chunk = encode_rows(columns, rows)
        if self.rows_written:
            chunk = b"," + chunk
        self.rows_written += len(rows)
        await self.response.write(chunk)

    async def finish(self) -> web.StreamResponse:
        """Close the document; aiohttp ends the chunked body when the handler returns."""
        if self.wants_body:
            await self.response.write(self.tail)
        return self.response

    def abort(self, exc: BaseException) -> web.StreamResponse:
        """Cut the connection after a failure mid-answer, so the client cannot miss it."""
        if isinstance(exc, ConnectionError):
            log.debug("%s: client went away after %d rows", self.request.path, self.rows_written)
        else:
            log.warning(
                "%s: streamed answer stopped after %d rows: %s",
                self.request.path,
                self.rows_written,
                exc,
            )
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        return self.response
