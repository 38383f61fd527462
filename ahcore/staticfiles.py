"""Small static files answered from memory, validated by the resolver's stat.

aiohttp's :class:`~aiohttp.web.FileResponse` does a ``stat`` and an ``open``
in the default thread executor for every request, then ``sendfile``: a
thread hop (a futex wake-up and two context switches) per answer, on top of
the ``stat`` ahcore's resolver has already made on the loop. For a small file
the hop costs more than the bytes. :class:`StaticCache` keeps the bytes of
small regular files, keyed by real path and validated by the stamp
``(st_mtime_ns, st_size, st_ino, st_ctime_ns)`` of that ``stat`` (what
:class:`ahcore.processor.ProcessorCache` keys processors by, plus the
change time, so a ``chmod`` or ``chown`` that makes FileResponse answer 403
is seen too), and answers with a
:class:`~aiohttp.web.Response` carrying what FileResponse would send: the same
``ETag`` (``"<mtime_ns hex>-<size hex>"``), ``Last-Modified``,
``Content-Type`` (guessed by aiohttp's own table), ``Accept-Ranges``, 304
for ``If-None-Match`` / ``If-Modified-Since``, and no body for ``HEAD``.

Everything else goes to FileResponse as before: files over
:data:`FILE_LIMIT`, empty files, ``Range`` and ``If-Range`` requests,
``If-Match`` / ``If-Unmodified-Since`` (the 412 cases), a request whose
``Accept-Encoding`` would let FileResponse pick an existing ``.br``/``.gz``
sibling, the first request for a file (its bytes are read meanwhile in the
default executor, off the loop) and a file modified within
:data:`RACY_NS` (see there).
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

from aiohttp import hdrs, web
from aiohttp.helpers import ETAG_ANY, ETag
from aiohttp.web_fileresponse import CONTENT_TYPES, ENCODING_EXTENSIONS, FALLBACK_CONTENT_TYPE

#: Largest file kept in memory, in bytes. Below this the per-request thread
#: hop of FileResponse (stat + open in the executor) costs more than copying
#: the bytes into the socket from memory; above it ``sendfile`` (no copy
#: through user space) starts to pay, and a few large files would crowd
#: the many small ones (CSS, JS, icons, small pages) out of the cache.
FILE_LIMIT = 64 * 1024

#: Default cap on the bytes of all cached files of one site: 128 files at
#: :data:`FILE_LIMIT`, or thousands of typical small assets, per worker.
#: Least recently used files go first when a new one would exceed it.
TOTAL_LIMIT = 8 * 1024 * 1024

#: A file modified less than this long ago (2 s, in nanoseconds) is not
#: cached. A second write within one tick of the file system's clock, with
#: the same size, leaves the stamp unchanged: cached bytes read between the
#: two writes would be served until the next change ("racy git"). Two
#: seconds covers the coarsest common mtime resolution (FAT's); such a file
#: is served by FileResponse, and cached once it has been left alone.
RACY_NS = 2_000_000_000

Stamp = tuple[int, int, int, int]  # mtime_ns, size, inode, ctime_ns


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


class Entry(NamedTuple):
    """One cached file: its stamp, bytes and the headers of a 200 answer."""

    stamp: Stamp
    body: bytes
    mtime: float  # st_mtime, compared with If-Modified-Since as FileResponse does
    etag: str  # unquoted, as ETag.value
    headers: dict[str, str]  # Content-Type, ETag, Last-Modified, Accept-Ranges


def guess_content_type(path: Path) -> str:
    """The Content-Type FileResponse sends for ``path`` (aiohttp's own table)."""
    if sys.version_info >= (3, 13):
        return CONTENT_TYPES.guess_file_type(path)[0] or FALLBACK_CONTENT_TYPE
    return CONTENT_TYPES.guess_type(path)[0] or FALLBACK_CONTENT_TYPE


def make_entry(path: Path, st: os.stat_result, body: bytes) -> Entry:
    """An entry for ``body``, read from ``path`` whose stat is ``st``."""
    etag = f"{st.st_mtime_ns:x}-{st.st_size:x}"
    # Let aiohttp format ETag and Last-Modified, so they match FileResponse's.
    probe = web.StreamResponse()
    probe.etag = etag
    probe.last_modified = st.st_mtime
    headers: dict[str, str] = {
        hdrs.CONTENT_TYPE: guess_content_type(path),
        hdrs.ETAG: probe.headers[hdrs.ETAG],
        hdrs.LAST_MODIFIED: probe.headers[hdrs.LAST_MODIFIED],
        hdrs.ACCEPT_RANGES: "bytes",
    }
    return Entry(stamp_of(st), body, st.st_mtime, etag, headers)


def read_stamped(path: str, stamp: Stamp) -> bytes | None:
    """The bytes of ``path`` if the file read is the one ``stamp`` describes.

    Runs in a thread. ``fstat`` after the read confirms that the file opened
    is the stamped one and was not changed while it was read.
    """
    with open(path, "rb") as f:
        data = f.read(stamp[1] + 1)
        st = os.fstat(f.fileno())
    if stamp_of(st) != stamp or len(data) != stamp[1]:
        return None
    return data


def _etag_match(etag: str, etags: tuple[ETag, ...]) -> bool:
    """If-None-Match's weak comparison, as FileResponse makes it."""
    if len(etags) == 1 and etags[0].value == ETAG_ANY:
        return True
    return any(e.value == etag for e in etags)


class StaticCache:
    """The bytes of a site's small static files, LRU, at most ``total_limit`` bytes.

    One per :class:`ahcore.site.Site`. Only the event loop's thread touches
    the dict; reads run in the default executor and land through a done
    callback. Entries are never trusted without the current stamp: a
    changed file (new mtime, size, inode or change time) misses and is
    read again.
    """

    def __init__(self, total_limit: int = TOTAL_LIMIT, file_limit: int = FILE_LIMIT) -> None:
        self.total_limit = total_limit
        self.file_limit = min(file_limit, total_limit)
        self.size = 0  # bytes held
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._pending: dict[str, asyncio.Future[bytes | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return str(path) in self._entries

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0

    def respond(self, request: web.Request, path: Path, st: os.stat_result) -> web.StreamResponse:
        """The answer to a GET or HEAD of the regular file ``path`` (stat ``st``)."""
        headers = request.headers
        if (
            hdrs.RANGE in headers
            or hdrs.IF_RANGE in headers
            or hdrs.IF_MATCH in headers
            or hdrs.IF_UNMODIFIED_SINCE in headers
        ):
            return web.FileResponse(path)
        key = str(path)
        entry = self._entries.get(key)
        if entry is None or entry.stamp != stamp_of(st):
            self._miss(key, path, st)
            return web.FileResponse(path)
        accept = headers.get(hdrs.ACCEPT_ENCODING)
        if accept and self._sibling_served(key, accept.lower()):
            return web.FileResponse(path)
        self._entries.move_to_end(key)
        if hdrs.IF_NONE_MATCH in headers or hdrs.IF_MODIFIED_SINCE in headers:
            if self._not_modified(request, entry):
                h = entry.headers
                return web.Response(
                    status=304,
                    headers={hdrs.ETAG: h[hdrs.ETAG], hdrs.LAST_MODIFIED: h[hdrs.LAST_MODIFIED]},
                )
        return web.Response(body=entry.body, headers=entry.headers)

    @staticmethod
    def _sibling_served(key: str, accept: str) -> bool:
        """Whether FileResponse would send a precompressed ``.br``/``.gz`` sibling."""
        for extension, encoding in ENCODING_EXTENSIONS.items():
            if encoding in accept:
                try:
                    if stat.S_ISREG(os.lstat(key + extension).st_mode):
                        return True
                except (OSError, ValueError):
                    pass
        return False

    @staticmethod
    def _not_modified(request: web.Request, entry: Entry) -> bool:
        """FileResponse's 304 test (RFC 9110 §13.1.2, §13.1.3)."""
        if (none_match := request.if_none_match) is not None:
            return _etag_match(entry.etag, none_match)
        since = request.if_modified_since
        return since is not None and entry.mtime <= since.timestamp()

    def _miss(self, key: str, path: Path, st: os.stat_result) -> None:
        """Start reading the file in the executor, if it may be cached."""
        size = st.st_size
        if not 0 < size <= self.file_limit or key in self._pending:
            return
        if time.time_ns() - st.st_mtime_ns < RACY_NS:
            return
        stamp = stamp_of(st)
        future = asyncio.get_running_loop().run_in_executor(None, read_stamped, key, stamp)
        self._pending[key] = future
        future.add_done_callback(lambda f: self._landed(key, path, st, f))

    def _landed(
        self, key: str, path: Path, st: os.stat_result, future: asyncio.Future[bytes | None]
    ) -> None:
        del self._pending[key]
        if future.cancelled() or future.exception() is not None:
            return  # gone or unreadable: FileResponse answers (404/403) as before
        body = future.result()
        if body is None:
            return  # changed meanwhile: the next request reads it again
        self.put(make_entry(path, st, body), key)

    def put(self, entry: Entry, key: str) -> None:
        """Store ``entry`` for ``key``, evicting least recently used files over the cap."""
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        self._entries[key] = entry
        self.size += len(entry.body)
        while self.size > self.total_limit:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted.body)

    async def load(self, path: Path, st: os.stat_result) -> bool:
        """Read ``path`` into the cache now (or wait for the read under way).

        What a miss in :meth:`respond` starts; for tests and warm-up.
        True when the file is cached afterwards.
        """
        key = str(path)
        if key not in self._pending:
            self._miss(key, path, st)
        pending = self._pending.get(key)
        if pending is not None:
            await asyncio.wait([pending])
            await asyncio.sleep(0)  # let the done callback run
        entry = self._entries.get(key)
        return entry is not None and entry.stamp == stamp_of(st)
