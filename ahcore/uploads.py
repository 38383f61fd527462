"""Uploads: multipart files streamed to ``filesroot`` under generated names.

The client's file name is kept only as metadata; the stored name is random,
inside a dated folder. Each file is bounded by ``max_file_size``, the
whole body by ``client_max_size`` and its number of parts by ``max_parts``
(each a 413); a partial file is removed on any failure
(client gone, limit hit, body deadline — ``website.request_timeout``,
enforced around this by ``ahcore.params.read_params`` — disk full) before
the error propagates.

A part may declare ``Content-Transfer-Encoding`` (RFC 7578 §4.7 deprecates
it, but old clients send it). ``base64`` is decoded — text fields and files
alike; a file is stored decoded, chunk by chunk (aiohttp hands out chunks
cut at base64 quartets), its decoded size bounded by ``max_file_size`` and
its encoded size by what is left of ``client_max_size``. ``7bit``, ``8bit``
and ``binary`` are the bytes as sent. ``quoted-printable`` is decoded for
text fields but refused for files, and any other encoding is refused: a 400
that names it, with nothing stored. Before, a base64 file was stored
undecoded: the site got the encoded text under a name saying it was a file.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import datetime
import errno
import logging
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from ahcore.errors import bad_request
from ahcore.params import RESERVED_PARAMS

CHUNK = 64 * 1024
PART_SUFFIX = ".part"
#: Content-Transfer-Encoding values whose bytes are stored as sent.
IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})
#: ... and those a text field may use (aiohttp decodes them).
TEXT_ENCODINGS = IDENTITY_ENCODINGS | {"base64", "quoted-printable"}
log = logging.getLogger("ahcore.uploads")

# The disk (or the user's quota) is full: 507 Insufficient Storage, as
# WebDAV servers answer. Any other OSError stays a 500 with an error id.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


@contextlib.contextmanager
def no_space_is_507(root: Path) -> Iterator[None]:
    """Turn "no space left" while storing a file into a 507 that names no path."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        log.error("upload refused: no space left in %s: %s", root, exc)
        raise web.HTTPInsufficientStorage(
            text="507: not enough storage left for the upload; nothing was stored\n"
        ) from None


class UploadStore:
    def __init__(
        self, filesroot: Path, *, max_file_size: int, max_body_size: int, max_parts: int = 100
    ) -> None:
        self.root = filesroot
        self.max_file_size = max_file_size
        self.max_body_size = max_body_size
        self.max_parts = max_parts

    def new_subpath(self, original: str = "") -> str:
        """A fresh random subpath (``YYYY/MM/DD/<hex><ext>``) for a stored file."""
        ext = os.path.splitext(os.path.basename(original.replace("\\", "/")))[1].lower()
        if not (ext[1:].isalnum() and len(ext) <= 10):
            ext = ""
        day = datetime.date.today()
        return f"{day:%Y/%m/%d}/{secrets.token_hex(16)}{ext}"

    def realpath(self, subpath: str) -> Path:
        """The file for a stored subpath; never outside ``filesroot`` (else 400)."""
        root = os.path.realpath(self.root)
        real = os.path.realpath(os.path.join(root, subpath.lstrip("/\\")))
        if not (real + os.sep).startswith(root + os.sep) or real == root:
            bad_request("bad file path: outside the files root")
        return Path(real)

    async def save_bytes(self, data: bytes, filename: str = "") -> str:
        return self.store_bytes(data, filename)

    def store_bytes(self, data: bytes, filename: str = "") -> str:
        """Store ``data`` under a fresh random name (keeping ``filename``'s suffix); its subpath.

        Written as ``NAME.part`` and renamed, so the final name is always whole.
        """
        subpath = self.new_subpath(filename)
        target = self.realpath(subpath)
        tmp = target.with_name(target.name + PART_SUFFIX)
        try:
            with no_space_is_507(self.root):
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(data)
                os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return subpath

    async def read_multipart(self, request: web.Request, params: dict[str, Any]) -> None:
        try:
            reader = await request.multipart()
        except (ValueError, AssertionError) as exc:
            bad_request(f"malformed multipart body: {exc}")
        stored: list[Path] = []
        total = 0
        parts = 0
        try:
            while True:
                try:
                    part = await reader.next()
                except (ValueError, BadHttpMessage) as exc:
                    bad_request(f"malformed multipart body: {exc}")
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    bad_request("malformed multipart body: nested multipart")
                parts += 1
                if parts > self.max_parts:
                    # Too large a body, counted in parts: 413, like the byte limits.
                    raise web.HTTPRequestEntityTooLarge(
                        self.max_parts,
                        parts,
                        text=f"413: too many form parts (limit {self.max_parts})\n",
                    )
                name = part.name
                if not name:
                    bad_request("malformed multipart body: a part has no name")
                if name in RESERVED_PARAMS:  # set by the kernel only
                    bad_request(f"malformed multipart body: the part name {name!r} is reserved")
                encoding = _transfer_encoding(part)
                if part.filename is None:
                    if encoding not in TEXT_ENCODINGS:
                        bad_request(_unsupported(name, encoding))
                    try:
                        raw = await part.read(decode=True)
                    except (binascii.Error, ValueError) as exc:
                        bad_request(
                            f"malformed multipart body: part {name!r} is not valid {encoding}: {exc}"
                        )
                    total += len(raw)
                    if total > self.max_body_size:
                        raise web.HTTPRequestEntityTooLarge(self.max_body_size, total)
                    value: Any = raw.decode(part.get_charset("utf-8"), "replace")
                else:
                    if encoding not in IDENTITY_ENCODINGS and encoding != "base64":
                        bad_request(_unsupported(name, encoding, file=True))
                    subpath, size, sent = await self._store_part(
                        part, stored, self.max_body_size - total, base64=encoding == "base64"
                    )
                    total += sent
                    value = subpath
                    params.setdefault("_files", {})[name] = {
                        "filename": os.path.basename(part.filename.replace("\\", "/"))[:255],
                        "subpath": subpath,
                        "size": size,
                        "content_type": part.headers.get("Content-Type", ""),
                    }
                if name in params:
                    prev = params[name]
                    params[name] = (prev if isinstance(prev, list) else [prev]) + [value]
                else:
                    params[name] = value
        except BaseException:
            for p in stored:
                p.unlink(missing_ok=True)
            raise

    async def _store_part(
        self, part: BodyPartReader, stored: list[Path], budget: int, *, base64: bool = False
    ) -> tuple[str, int, int]:
        """Stream one file part to disk, stopping at the per-file cap or the body budget.

        Returns the subpath, the stored (decoded) size and the bytes read.
        """
        limit = min(self.max_file_size, budget)
        subpath = self.new_subpath(part.filename or "")
        target = self.realpath(subpath)
        size = 0
        sent = 0
        # Written as NAME.part and renamed when complete: a file under its
        # final name is always whole, and a crash leaves only .part files,
        # which the janitor removes.
        partial = target.with_name(target.name + PART_SUFFIX)
        stored.extend((target, partial))
        # The caller removes both names on any failure, a full disk included.
        with no_space_is_507(self.root):
            target.parent.mkdir(parents=True, exist_ok=True)
            # Plain writes: 64 KiB chunks land in the page cache; a thread hop
            # per chunk would cost more than it saves.
            with open(partial, "wb") as fh:  # noqa: ASYNC230
                while True:
                    chunk = await part.read_chunk(CHUNK)
                    if not chunk:
                        break
                    sent += len(chunk)
                    if sent > budget:
                        raise web.HTTPRequestEntityTooLarge(budget, sent)
                    if base64:
                        chunk = _decode_base64(part, chunk)
                    size += len(chunk)
                    if size > limit:
                        raise web.HTTPRequestEntityTooLarge(limit, size)
                    fh.write(chunk)
            os.replace(partial, target)
        return subpath, size, sent

    def sweep(self, max_age: float, now: float | None = None) -> int:
        """Remove ``.part`` files older than ``max_age`` seconds (left by crashes); return how many."""
        now = time.time() if now is None else now
        removed = 0
        if not self.root.is_dir():
            return 0
        for dirpath, _, files in os.walk(self.root):
            for name in files:
                if not name.endswith(PART_SUFFIX):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    if now - os.stat(path).st_mtime > max_age:
                        os.unlink(path)
                        removed += 1
                except OSError:
                    continue
        return removed


def _transfer_encoding(part: BodyPartReader) -> str:
    return part.headers.get("Content-Transfer-Encoding", "").strip().lower()


def _unsupported(name: str, encoding: str, *, file: bool = False) -> str:
    what = "file part" if file else "part"
    return (
        f"unsupported Content-Transfer-Encoding {encoding[:40]!r} in {what} {name!r} "
        "(send the bytes as they are, or base64)"
    )


def _decode_base64(part: BodyPartReader, chunk: bytes) -> bytes:
    """One chunk of a base64 file part, decoded (whole quartets: aiohttp aligns chunks)."""
    try:
        return bytes(part.decode(chunk))
    except (binascii.Error, ValueError) as exc:
        bad_request(
            f"malformed multipart body: file part {part.name!r} is not valid base64: {exc}"
        )


async def janitor(store: UploadStore, max_age: float, every: float) -> None:
    """Sweep stale partial uploads at start-up and then every ``every`` seconds."""
    while True:
        removed = await asyncio.to_thread(store.sweep, max_age)
        if removed:
            log.info("removed %d stale partial upload(s) from %s", removed, store.root)
        await asyncio.sleep(every)
