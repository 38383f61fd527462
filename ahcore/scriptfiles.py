"""ahserver's file names for scripts, confined to the site.

``file_response``, ``file_download``, ``path_download``, ``FileStorage``,
``b64media2url``, ``downloadfile2url`` and ``hex2base64`` take the calls and
give the results ahserver 1.2.0 did, without what made them unsafe there:

- ``file_response(request, path)`` sent any file of the machine. Here the
  file must be inside ``filesroot`` or a content root (the path as spelt,
  ``..`` normalised away first); never under ``conf/``, never a dot-named
  file or folder, never a file the site runs (a processor's source, ``.py``)
  — :class:`~ahcore.sitefiles.FileOutZone` (403) otherwise, and a missing
  file is :class:`~ahcore.sitefiles.SiteFileNotFound` (404). With
  ``website.follow_symlinks: false`` the real path must stay inside too.
- ``FileStorage`` used the temp folder when there was no ``filesroot`` and
  joined names to its root as text; here it needs ``filesroot`` and every
  name goes through :meth:`ahcore.uploads.UploadStore.realpath` (400 outside).
  Stored files get random names (ahserver kept the client's).
- A download names its file with :func:`ahcore.headers.content_disposition`
  (quoted by the standard library; no header can be added through a name).
- Data URLs and downloaded files are bounded by ``uploads.max_file_size``
  (413) and written as ``.part`` files renamed when whole.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import os
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ahcore.context import current_context
from ahcore.errors import bad_request
from ahcore.forwarded import request_origin
from ahcore.headers import content_disposition, stored_file_headers
from ahcore.sitefiles import FileOutZone, SiteFileNotFound, runs_code

if TYPE_CHECKING:
    from ahcore.site import Site
    from ahcore.uploads import UploadStore

log = logging.getLogger("ahcore.scriptfiles")

#: Longest text ``b64media2url`` takes for a file's web path (ahserver's limit).
MEDIA_PATH_LIMIT = 8000
CHUNK = 64 * 1024


# ---------------------------------------------------------------- confinement


def _bases(site: Site) -> list[tuple[str, str]]:
    """(as configured, real) folder pairs, each with a trailing separator."""
    folders: list[str | Path] = []
    if site.uploads is not None:
        folders.append(site.uploads.root)
    folders.extend(root.folder for root in site.roots)
    out = []
    for folder in folders:
        spelt = os.path.abspath(folder).rstrip(os.sep) + os.sep  # already under the workdir
        out.append((spelt, os.path.realpath(spelt).rstrip(os.sep) + os.sep))
    return out


def servable_file(site: Site, filepath: str | os.PathLike[str]) -> Path:
    """The real path of ``filepath`` if a script may send it to a visitor (see the module doc).

    A relative path is taken from the work directory (ahserver's current
    folder).
    """
    name = os.fspath(filepath)
    if "\x00" in name:
        raise FileOutZone(name, "a path may not contain NUL")
    spelt = os.path.abspath(os.path.join(site.workdir, name))
    real = os.path.realpath(spelt)
    conf = os.path.realpath(site.workdir / "conf") + os.sep
    for spelt_base, real_base in _bases(site):
        base = next((b for b in (spelt_base, real_base) if (spelt + os.sep).startswith(b)), None)
        if base is None or spelt + os.sep == base:
            continue
        if any(part.startswith(".") for part in spelt[len(base) :].split(os.sep)):
            raise FileOutZone(name, "dot-named files and folders are private")
        inside = (real + os.sep).startswith(real_base)
        if not inside and not site.config.website.follow_symlinks:
            raise FileOutZone(name, "outside the site")
        if inside and any(part.startswith(".") for part in real[len(real_base) :].split(os.sep)):
            raise FileOutZone(name, "dot-named files and folders are private")
        if (real + os.sep).startswith(conf):
            raise FileOutZone(name, "the site's conf/ folder is private")
        if runs_code(site, os.path.basename(real)) or runs_code(site, os.path.basename(spelt)):
            raise FileOutZone(name, "files the site runs are never sent as they are")
        if not os.path.isfile(real):
            raise SiteFileNotFound(name)
        return Path(real)
    raise FileOutZone(name, "only files under filesroot or a content root can be sent")


# ---------------------------------------------------------------- responses


def _is_upload(site: Site, path: Path) -> bool:
    """Whether the real ``path`` is a stored upload (under ``filesroot``)."""
    return site.uploads is not None and path.is_relative_to(os.path.realpath(site.uploads.root))


async def file_response(
    request: web.Request, filepath: str | os.PathLike[str], download: bool = False
) -> web.FileResponse:
    """ahserver's ``file_response(request, filepath, download=False)``: send a file of the site.

    With ``download`` the browser is told to save it under its own name.
    """
    site = current_context().site
    path = servable_file(site, filepath)
    if _is_upload(site, path):
        # A visitor's upload: sandboxed like /idfile sends it.
        headers = stored_file_headers(path.name, download)
    else:
        headers = {"Content-Disposition": content_disposition(path.name)} if download else {}
    return web.FileResponse(path, headers=headers)


async def file_download(request: web.Request, filepath: str | os.PathLike[str]) -> web.FileResponse:
    """ahserver's ``file_download(request, filepath)``: ``file_response`` as an attachment."""
    return await file_response(request, filepath, download=True)


async def path_download(request: web.Request, params_kw: Any, *params: Any, **kw: Any) -> web.FileResponse:
    """ahserver's ``path_download``: the stored upload ``params_kw.path`` (``download`` to save)."""
    from ahcore.functions import send_upload

    return await send_upload(request, params_kw)


# ---------------------------------------------------------------- FileStorage


def _uploads() -> UploadStore:
    uploads = current_context().site.uploads
    if uploads is None:
        raise RuntimeError("FileStorage needs 'filesroot' in the site config")
    return uploads


def _too_large(limit: int, size: int) -> web.HTTPRequestEntityTooLarge:
    return web.HTTPRequestEntityTooLarge(
        limit, size, text=f"413: the file is larger than uploads.max_file_size ({limit} bytes)\n"
    )


def decode_data_url(text: str, limit: int) -> tuple[bytes, str]:
    """The bytes and media type of a ``data:`` URL (or of bare base64), bounded by ``limit``.

    Decoded by the standard library's ``data:`` handler; bad base64 (a
    character outside the alphabet, wrong padding) is a 400.
    """
    if len(text) * 3 // 4 > limit + 3:
        raise _too_large(limit, len(text) * 3 // 4)
    import urllib.request  # ~20 ms of imports: only when a data URL comes

    try:
        if text.startswith("data:"):
            head, _, payload = text.partition(",")
            if head.lower().endswith(";base64"):
                # The handler silently drops characters that are not base64.
                base64.b64decode("".join(urllib.parse.unquote(payload).split()), validate=True)
            with urllib.request.DataHandler().data_open(urllib.request.Request(text)) as resp:
                return resp.read(), resp.headers.get_content_type()
        return base64.b64decode(text, validate=True), "application/octet-stream"
    except ValueError as exc:
        raise bad_request(f"not a base64 data URL: {exc}") from None


def _suffix(media_type: str) -> str:
    return mimetypes.guess_extension(media_type) or ""


class FileStorage:
    """ahserver's ``FileStorage()``: the site's ``filesroot``.

    ``realPath(path)`` and ``webpath(realpath)`` convert between stored
    paths (``/2026/01/31/<hex>.png``, what ``save`` returns) and real paths,
    never leaving ``filesroot``; ``await save(name, data_or_read)``,
    ``save_base64_file(b64)``, ``remove(path)`` and ``streaming_read(request,
    path)`` (honouring ``Range``) work on it.
    """

    def __init__(self) -> None:
        self._store = _uploads()
        self.root = os.path.realpath(self._store.root)

    def realPath(self, path: str) -> str:
        return str(self._store.realpath(path))

    def webpath(self, path: str) -> str | None:
        real = os.path.realpath(path)
        if (real + os.sep).startswith(self.root + os.sep) and real != self.root:
            return real[len(self.root) :].replace(os.sep, "/")
        return None

    def _name2path(self, name: str, userid: Any = None) -> str:
        """A fresh real path (folders made) for a file called ``name``; ``userid`` is ignored."""
        path = self._store.realpath(self._store.new_subpath(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    def save_base64_file(self, b64str: str) -> str:
        """Store a ``data:`` URL's bytes; the stored file's real path."""
        data, media_type = decode_data_url(b64str, self._store.max_file_size)
        return self.realPath(self._store.store_bytes(data, "x" + _suffix(media_type)))

    def remove(self, path: str) -> None:
        try:
            os.remove(self.realPath(path))
        except OSError as exc:
            log.error("FileStorage.remove(%r) failed: %s", path, exc)

    async def streaming_read(self, request: web.Request, webpath: str, buf_size: int = 8096) -> AsyncIterator[bytes]:
        fp = self.realPath(webpath)
        size = os.stat(fp).st_size
        start, stop = 0, size
        if request.headers.get("Range"):
            wanted = request.http_range  # aiohttp's parser; ValueError for a bad header
            start, stop, _ = wanted.indices(size)
        with open(fp, "rb") as f:  # noqa: ASYNC230 - reads of a local file, chunked
            f.seek(start)
            pos = start
            while pos < stop:
                b = f.read(min(buf_size, stop - pos))
                if not b:
                    break
                pos += len(b)
                yield b

    async def save(
        self, name: str, read_data: str | bytes | Callable[[], Awaitable[bytes]], userid: Any = None
    ) -> str:
        """Store text, bytes, or what ``await read_data()`` gives until empty; the stored path."""
        store = self._store
        if isinstance(read_data, (str, bytes)):
            data = read_data.encode("utf-8") if isinstance(read_data, str) else read_data
            if len(data) > store.max_file_size:
                raise _too_large(store.max_file_size, len(data))
            return "/" + store.store_bytes(data, name)

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                d = await read_data()
                if not d:
                    return
                yield d

        return "/" + await store_stream(store, chunks(), name)


async def store_stream(store: UploadStore, chunks: AsyncIterator[bytes], name: str) -> str:
    """Write ``chunks`` to a fresh stored file, bounded by ``max_file_size``; its subpath."""
    subpath = store.new_subpath(name)
    target = store.realpath(subpath)
    partial = target.with_name(target.name + ".part")
    size = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as fh:  # noqa: ASYNC230 - chunks land in the page cache
            async for chunk in chunks:
                size += len(chunk)
                if size > store.max_file_size:
                    raise _too_large(store.max_file_size, size)
                fh.write(chunk)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return subpath


# ---------------------------------------------------------------- media URLs


def get_baseurl() -> str | None:
    """ahserver's ``get_baseurl()``: the ``BASEURL`` environment variable."""
    return os.environ.get("BASEURL")


def _idfile_url(webpath: str) -> str:
    origin = request_origin(current_context().request)  # as entire_url builds it
    return origin + "/idfile?path=" + urllib.parse.quote(webpath)


async def b64media2url(request: web.Request | None, mediafile: str) -> str:
    """ahserver's ``b64media2url(request, mediafile)``: a URL for a media value.

    An ``http(s)://`` URL is returned as it is; a ``data:`` URL is stored
    under ``filesroot`` and its ``/idfile?path=…`` URL returned; other text is
    taken as a stored file's path (``''`` when longer than 8000 characters).
    Without a request the URL starts with ``BASEURL`` (or is relative).
    """
    if mediafile.startswith(("http://", "https://")):
        return mediafile
    webpath = mediafile
    if mediafile.startswith("data:"):
        fs = FileStorage()
        webpath = fs.webpath(fs.save_base64_file(mediafile)) or ""
    elif len(mediafile) > MEDIA_PATH_LIMIT:
        log.error("b64media2url: the text given is not a media file (%d characters)", len(mediafile))
        return ""
    if request is not None:
        return _idfile_url(webpath)
    baseurl = get_baseurl()
    return f"{baseurl or ''}/idfile?path={urllib.parse.quote(webpath)}"


async def downloadfile2url(
    request: web.Request,
    url: str,
    headers: Any = None,
    params: Any = None,
    data: Any = None,
    method: str = "GET",
) -> str:
    """ahserver's ``downloadfile2url``: fetch ``url`` into ``filesroot``; its ``/idfile`` URL.

    The file keeps the URL's suffix under a random name, is bounded by
    ``uploads.max_file_size`` (413) and an error status raises
    :class:`aiohttp.ClientResponseError`. Scripts are trusted: check a URL
    that came from a visitor before passing it (see :mod:`ahcore.outbound`).
    """
    from ahcore.outbound import _current_session

    store = _uploads()
    filename = url.split("?", 1)[0].rsplit("/", 1)[-1]
    session = _current_session()
    args: dict[str, Any] = {"headers": headers, "params": params}
    if data:
        args["data"] = data
    async with session.request(method, url, **args) as resp:
        resp.raise_for_status()
        subpath = await store_stream(store, resp.content.iter_chunked(CHUNK), filename)
    return _idfile_url("/" + subpath)


#: Media types ``hex2base64`` names in its data URL (appPublic's list: pictures, sound, video).
_MEDIA = ("image/", "audio/", "video/")


def hex2base64(hex_str: str, typ: str) -> str:
    """appPublic's ``hex2base64(hex, typ)``: base64 of the bytes, a data URL for a media suffix.

    ``typ`` is a file suffix (``'png'``, ``'mp3'`` …); for a picture, sound or
    video suffix the result is ``data:<type>;base64,…``, else bare base64.
    A ``0x`` prefix is allowed; text that is not hex is a ``ValueError``.
    """
    if hex_str.startswith(("0x", "0X")):
        hex_str = hex_str[2:]
    text = base64.b64encode(bytes.fromhex(hex_str)).decode("ascii")
    media_type = mimetypes.guess_type(f"x.{typ}", strict=False)[0]
    if media_type and media_type.startswith(_MEDIA):
        return f"data:{media_type};base64,{text}"
    return text
