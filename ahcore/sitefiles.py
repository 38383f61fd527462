"""The site's own files for scripts: ahserver's ``openfile``, ``folderInfo`` and ``uriop``.

ahserver let these reach more than it meant to: ``openfile`` joined the URL
to each content root as text, so ``/../conf/config.json`` opened the
config (its prefix check compared the unnormalised path); ``uriop``'s
prefix check let ``/site/wwwroot2`` pass for ``/site/wwwroot``. Here every
name is split into segments first — ``..``, NUL and dot-named segments
(dotfiles, ``.session_secret``) are refused — so a name can only spell a
path inside the site's work directory or one of its content roots. Where
that path leads is then decided as the resolver decides what it serves:
never under ``conf/``; through a symlink the site's owner placed (a module
folder linked into ``wwwroot``) only while ``website.follow_symlinks`` is on
(the default), else the *real* path must stay inside. A file the site runs (a suffix some processor
handles, or ``.py``/``.dspy``/``.sqlds``/``.xlsxds``) can be read but not
written, renamed or deleted through these helpers: a path taken from a
request must not become a way to plant code.

A refusal is :class:`FileOutZone`, which is both a ``PermissionError`` (for
scripts that catch it) and a 403 (for scripts that do not); a name that
finds no file is :class:`SiteFileNotFound`, a ``FileNotFoundError`` and a
404. Nothing is opened or changed when either is raised.
"""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from aiohttp import web

from ahcore.resolver import NEVER_RAW_SUFFIXES

if TYPE_CHECKING:
    from ahcore.site import Site

_MODE_CHARS = frozenset("rwaxbt+")


class FileOutZone(web.HTTPForbidden, PermissionError):
    """A name that leads outside what a script may open (ahserver's class name).

    ``openfilename`` is the name as given (ahserver's attribute); the message
    says why, without the real paths.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.openfilename = name
        self.message = f"{name!r}: not allowed to open ({reason})"
        web.HTTPForbidden.__init__(self, text=f"403: {self.message}\n")

    def __str__(self) -> str:
        return self.message


class SiteFileNotFound(web.HTTPNotFound, FileNotFoundError):
    """A name inside the site that names no file: ``FileNotFoundError`` and 404."""

    def __init__(self, name: str) -> None:
        self.message = f"{name!r}: no such file"
        web.HTTPNotFound.__init__(self, text=f"404: {self.message}\n")

    def __str__(self) -> str:
        return self.message


def check_mode(mode: str) -> bool:
    """Validate an ``open()`` mode; return whether it writes.

    One of ``r``, ``w``, ``a``, ``x``, optionally ``b`` or ``t`` and ``+``,
    each at most once: what ``open`` itself accepts, minus the obsolete
    ``U``. Anything else is a ``ValueError`` (as ``open`` raises).
    """
    if not isinstance(mode, str) or len(set(mode)) != len(mode) or set(mode) - _MODE_CHARS:
        raise ValueError(f"invalid mode: {mode!r}")
    kinds = [c for c in mode if c in "rwax"]
    if len(kinds) != 1 or ("b" in mode and "t" in mode):
        raise ValueError(f"invalid mode: {mode!r}")
    return kinds[0] != "r" or "+" in mode


def segments(name: str) -> tuple[str, ...]:
    """The segments of a ``/``-separated name; ``..``, NUL and dot-names refused.

    Backslashes separate too (a Windows-style name must not hide a ``..``);
    empty and ``.`` segments are dropped.
    """
    if not isinstance(name, str):
        name = os.fspath(name)
    out = []
    for part in name.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == ".." or "\x00" in part:
            raise FileOutZone(name, "a path may not climb out of its folder")
        if part.startswith("."):
            raise FileOutZone(name, "dot-named files and folders are private")
        out.append(part)
    return tuple(out)


def runs_code(site: Site, name: str) -> bool:
    """Whether the site runs files called ``name`` (a processor's suffix, or code)."""
    return site.processor_name(name) is not None or name.endswith(NEVER_RAW_SUFFIXES)


class SiteFiles:
    """Where the helpers may reach on one site: its work directory and content roots.

    Reads the site's current roots on every call, so a config reload that
    changes ``website.paths`` applies at once.
    """

    def __init__(self, site: Site) -> None:
        self.site = site

    def _bases(self) -> list[str]:
        workdir = os.path.realpath(self.site.workdir)
        return [workdir + os.sep, *(root.real for root in self.site.roots)]

    def check(self, name: str, path: str | os.PathLike[str]) -> Path:
        """The real path of ``path`` if a script may reach it, else :class:`FileOutZone`.

        ``path`` is spelt inside the work directory or a content root (the
        caller built it from checked segments); this decides where it leads.
        """
        real = os.path.realpath(path)
        conf = os.path.realpath(self.site.workdir / "conf") + os.sep
        if (real + os.sep).startswith(conf):
            raise FileOutZone(name, "the site's conf/ folder is private")
        for base in self._bases():
            if (real + os.sep).startswith(base):
                rest = real[len(base) :].split(os.sep)
                if any(part.startswith(".") for part in rest):
                    raise FileOutZone(name, "dot-named files and folders are private")
                return Path(real)
        if self.site.config.website.follow_symlinks:
            return Path(real)  # through a link the site's owner placed
        raise FileOutZone(name, "outside the site")

    def locate(self, name: str, *, creating: bool = False) -> Path:
        """The file ``name`` names, checked.

        ``/a/b.txt`` is a site URL, looked up in the content roots in order
        (as ahserver's ``abspath`` did); ``a/b.txt`` is relative to the work
        directory. With ``creating``, a name that does not exist yet is placed
        in the first candidate whose folder exists.
        """
        parts = segments(name)
        if not parts:
            raise FileOutZone(name, "names a folder, not a file")
        if str(name).startswith(("/", "\\")):
            candidates = [
                Path(root.real).joinpath(*parts[len(root.prefix) :])
                for root in self.site.roots
                if parts[: len(root.prefix)] == root.prefix and len(parts) > len(root.prefix)
            ]
        else:
            candidates = [Path(self.site.workdir).joinpath(*parts)]
        for candidate in candidates:
            if os.path.lexists(candidate):
                return self.check(name, candidate)
        if creating:
            for candidate in candidates:
                if candidate.parent.is_dir():
                    return self.check(name, candidate)
        raise SiteFileNotFound(name)

    def open(self, name: str, mode: str = "r", encoding: str | None = None) -> IO[Any]:
        """ahserver's ``openfile(url, mode)``: open a file of the site (see the module doc)."""
        writing = check_mode(mode)
        path = self.locate(name, creating=writing and "r" not in mode)
        if path.is_dir():
            raise FileOutZone(name, "names a folder, not a file")
        if writing and runs_code(self.site, path.name):
            raise FileOutZone(name, "files the site runs are not written by scripts")
        # The caller closes the file, as with open().
        if "b" in mode:
            return open(path, mode)
        return open(path, mode, encoding=encoding or self.site.config.website.coding)


# ---------------------------------------------------------------- folderInfo


def segments_allowing_dots(uri: str) -> list[str]:
    """Segments of ``uri`` for a listing: ``..`` and NUL refused, dot-names allowed."""
    out = []
    for part in uri.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == ".." or "\x00" in part:
            raise FileOutZone(uri, "a path may not climb out of its folder")
        out.append(part)
    return out


def _mtime(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def folder_info(root: str | os.PathLike[str], uri: str = "") -> list[dict[str, Any]]:
    """ahserver's ``folderInfo(root, uri)``: the folders and files in ``root``/``uri``.

    Each entry is ``{id, name, path, type ('dir'|'file'), size, mtime}`` with
    ``id = relpath + '/' + name`` and ``path = relpath``, where ``relpath``
    is ``uri`` as ahserver kept it (one leading ``/`` of ``//x`` dropped).
    Sorted by name (ahserver: directory order); entries that are neither a
    folder nor a regular file, or that vanish meanwhile, are left out. ``uri``
    may not climb out of ``root`` (:class:`FileOutZone`).
    """
    relpath = "" if uri in ("", "/") else (uri[1:] if uri[1:2] == "/" else uri)
    path = os.path.join(os.fspath(root), *segments_allowing_dots(uri))
    out = []
    for name in sorted(os.listdir(path)):
        try:
            st = os.stat(os.path.join(path, name))
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            kind = "dir"
        elif stat.S_ISREG(st.st_mode):
            kind = "file"
        else:
            continue
        out.append(
            {
                "id": relpath + "/" + name,
                "name": name,
                "path": relpath,
                "type": kind,
                "size": st.st_size,
                "mtime": _mtime(st.st_mtime),
            }
        )
    return out


# ---------------------------------------------------------------- uriop


class URIopException(FileOutZone):
    """ahserver's error of :class:`URIOp` (``errtype``, ``errmsg``); a 403."""

    def __init__(self, errtype: str, errmsg: str) -> None:
        self.errtype = errtype
        self.errmsg = errmsg
        super().__init__(str(errmsg), errtype)

    def __str__(self) -> str:
        return f"errtype={self.errtype},errmsg={self.errmsg}"


class URIOp:
    """ahserver's ``uriop()``: file operations under the site's web root.

    The root is ``website.root`` from the config when set (ahserver's key),
    else the first content root. Every operation takes a URI relative to
    that root, checked as in :class:`SiteFiles` (a URI spelling a path
    outside it, into a dot-named or ``conf/`` path, or — with
    ``website.follow_symlinks: false`` — leading out of it through a link, is
    a :class:`URIopException`); files the site runs are not changed.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        root = site.config.raw.get("website", {}).get("root")
        if isinstance(root, str) and root:
            folder = site.workdir / root
        else:
            folder = site.roots[0].folder
        self.realPath = os.path.realpath(folder)

    def abspath(self, uri: str | None = None) -> str:
        """The real path of ``uri`` under the root (it need not exist)."""
        try:
            parts = segments(uri or "")
        except FileOutZone:
            raise URIopException("url scope error", uri or "") from None
        real = os.path.realpath(os.path.join(self.realPath, *parts))
        conf = os.path.realpath(self.site.workdir / "conf") + os.sep
        inside = (real + os.sep).startswith(self.realPath.rstrip(os.sep) + os.sep)
        if not inside and self.site.config.website.follow_symlinks:
            inside = True  # a link the site's owner placed under the root, as served
        if not inside or (real + os.sep).startswith(conf):
            raise URIopException("url scope error", uri or "")
        return real

    def _changeable(self, uri: str) -> str:
        path = self.abspath(uri)
        if runs_code(self.site, os.path.basename(path)):
            raise URIopException("not allowed", f"{uri}: files the site runs are not changed")
        return path

    def fileList(self, uri: str = "") -> dict[str, Any]:
        """``{total, rows}`` of :func:`folder_info` entries, shaped for a tree view."""
        self.abspath(uri)
        rows = folder_info(self.realPath, uri)
        for row in rows:
            if row["type"] == "dir":
                row["state"] = "closed"
            row["id"] = "_#_".join(row["id"].split("/"))
        return {"total": len(rows), "rows": rows}

    def mkdir(self, at_uri: str, name: str) -> None:
        os.mkdir(os.path.join(self.abspath(at_uri), _single(name)))

    def rename(self, uri: str, newname: str) -> None:
        """Rename ``uri`` to ``newname`` in the same folder.

        (ahserver joined the new name *under* the old path, which fails for
        every file; the folder is clearly what was meant.)
        """
        path = self._changeable(uri)
        target = os.path.join(os.path.dirname(path), _single(newname))
        if runs_code(self.site, os.path.basename(target)):
            raise URIopException("not allowed", f"{newname}: files the site runs are not changed")
        os.rename(path, target)

    def delete(self, uri: str) -> None:
        os.remove(self._changeable(uri))

    def save(self, uri: str, data: str) -> None:
        with open(self._changeable(uri), "w", encoding=self.site.config.website.coding) as f:
            f.write(data)

    write = save

    def read(self, uri: str) -> str:
        with open(self.abspath(uri), encoding=self.site.config.website.coding) as f:
            return f.read()


def _single(name: str) -> str:
    """A name for one new file or folder: no separators, not ``..``, not dot-named."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or "\x00" in name:
        raise URIopException("bad name", str(name))
    if name.startswith("."):
        raise URIopException("bad name", name)
    return name
