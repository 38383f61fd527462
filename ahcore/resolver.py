"""URL → file: the only place a request path touches the filesystem.

The raw request path is split into segments and each segment is
percent-decoded exactly once. A segment that decodes to ``..``, that holds a
slash, a backslash or a NUL, that is not valid UTF-8 or that starts with a
dot (a dotfile) names no file: 404, the same answer as a missing file, so a
refused path tells a prober nothing. Dot-segments (``.``) and empty segments
(``//``) are dropped. These lexical checks come first, before any lookup.

The remaining segments are looked up in each content root in order.
Symlinks the site's owner placed in a root are followed, as ahserver and
nginx do: module-based ahserver sites mount ``wwwroot/<module>`` as a link to
the module's own folder elsewhere on disk. With ``website.follow_symlinks:
false`` the *real* path (symlinks resolved) must stay inside the root's real
path. Either way, nothing under the site's ``conf/`` folder, no dotfile and
nothing but regular files and folders (no FIFO, socket or device: they are
``stat``-ed, never opened) is ever served, and the source of a processor's
file is never sent raw.

The result carries the canonical URL of what is served, which is what access
control decides on: the URL of the real file when it lies inside the root
(a link inside the root is checked as its target), else the URL the visitor
used (a followed link out of the root is checked where it was placed).
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

from ahcore.errors import not_found
from ahcore.processor import ProcessorRegistry, ProcessorSpec

# Suffixes whose files carry code, SQL or credentials: never sent raw, even
# when no plugin for them is installed. The site adds every suffix an
# installed processor claims (ahcore.site.Site._never_raw).
NEVER_RAW_SUFFIXES = (".dspy", ".sqlds", ".xlsxds", ".py", ".pyc")


@dataclass(frozen=True)
class Root:
    """One ``website.paths`` entry: a folder served under a URL prefix."""

    folder: Path  # as configured
    real: str  # realpath of folder, with a trailing separator for prefix checks
    prefix: tuple[str, ...]  # URL prefix segments

    @classmethod
    def make(cls, folder: str | Path, prefix: str) -> Root:
        real = os.path.realpath(folder)
        return cls(Path(folder), real.rstrip(os.sep) + os.sep, split_segments(prefix))


class Resolved(NamedTuple):
    """What a URL names: a file (maybe via an index) or a directory to list.

    Immutable, and a named tuple rather than a frozen dataclass: one is made
    per request, and a frozen dataclass sets each field through
    ``object.__setattr__``.
    """

    path: Path  # real path on disk
    url: str  # canonical URL path of what is served
    root: Root
    stat: os.stat_result
    is_dir: bool = False
    spec: ProcessorSpec | None = None
    suffix: str = ""


class _Trail:
    """The paths one successful lookup went through; see :meth:`Resolver._revalidate`."""

    __slots__ = ("missing", "passed", "found")

    def __init__(self) -> None:
        self.missing: list[str] = []  # paths that must still not exist
        self.passed: list[tuple[str, tuple[int, int]]] = []  # path, (st_dev, st_ino)
        self.found: Resolved | None = None


class RedirectToSlash(Exception):
    """A directory was asked for without its trailing slash."""

    def __init__(self, url: str) -> None:
        self.url = url


def split_segments(raw_path: str) -> tuple[str, ...]:
    """Decode a raw URL path into safe segments, or raise 404.

    A path that cannot name a servable file — traversal (``..``, encoded
    ``/`` or ``\\``, NUL) in any encoding, invalid UTF-8, a dotfile — is
    answered like a missing file. Query strings and fragments are ignored.
    """
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    out: list[str] = []
    for part in path.split("/"):
        if not part or part == ".":
            continue
        try:
            seg = unquote(part, errors="strict") if "%" in part else part
        except UnicodeDecodeError:
            not_found()
        if seg == ".":
            continue
        if seg == ".." or "/" in seg or "\\" in seg or "\x00" in seg or seg.startswith("."):
            not_found()
        out.append(seg)
    return tuple(out)


class Resolver:
    """Finds the file a URL names across the site's content roots."""

    REAL_CACHE_SIZE = 4096
    #: Longest raw path whose split is remembered (:meth:`segments`).
    SPLIT_CACHE_PATH = 256

    def __init__(
        self,
        roots: list[Root],
        indexes: list[str],
        processors: ProcessorRegistry,
        forbidden_dirs: list[str],
        allow_listing: bool,
        never_raw: tuple[str, ...] = NEVER_RAW_SUFFIXES,
        follow_symlinks: bool = True,
    ) -> None:
        """``never_raw``: lower-case suffixes whose files are never sent as
        static files; ``follow_symlinks``: whether links in a root may lead
        out of it (``website.follow_symlinks``)."""
        self.roots = roots
        self.indexes = indexes
        self.processors = processors
        # Real paths (with trailing separator) that are never served.
        self.forbidden = tuple(os.path.realpath(d).rstrip(os.sep) + os.sep for d in forbidden_dirs)
        self.allow_listing = allow_listing
        self.never_raw = tuple(s.lower() for s in never_raw)
        self.follow_symlinks = follow_symlinks
        # candidate path -> (real path, (st_dev, st_ino)); see _real_stat.
        self._real_cache: dict[str, tuple[str, tuple[int, int]]] = {}
        self._paths: dict[str, Path] = {}  # real path -> Path, built once
        # real path outside its root (a followed link) -> the URL it was
        # found under, for file_url; cleared together with _found.
        self._urls: dict[str, str] = {}
        # (segments, want_slash) -> how a file was found; see _revalidate.
        self._found: dict[tuple[tuple[str, ...], bool], _Trail] = {}
        # raw request path -> (segments, ends in "/"); see segments().
        self._split: dict[str, tuple[tuple[str, ...], bool]] = {}
        # (segments, want_slash) -> the page found in this turn of the event
        # loop; emptied at the next turn. See resolve_page().
        self._this_turn: dict[tuple[tuple[str, ...], bool], Resolved] = {}

    def segments(self, raw_path: str) -> tuple[tuple[str, ...], bool]:
        """:func:`split_segments` of a request's raw path, and whether it ends in ``/``.

        Remembered per raw path (a site answers the same few URLs over and
        over): the split is a pure function of the text, so the cache needs
        no validation. A path that is refused (404) is never remembered.
        """
        known = self._split.get(raw_path)
        if known is None:
            known = (split_segments(raw_path), raw_path.endswith("/"))
            if len(raw_path) <= self.SPLIT_CACHE_PATH:  # a prober's long paths take no memory
                if len(self._split) >= self.REAL_CACHE_SIZE:
                    self._split.clear()
                self._split[raw_path] = known
        return known

    def canonical(self, segments: tuple[str, ...], trailing_slash: bool = False) -> str:
        url = "/" + "/".join(segments)
        return url + "/" if trailing_slash and segments else url

    def resolve(self, segments: tuple[str, ...], want_slash: bool) -> Resolved | None:
        """The file for ``segments``, or None when no root has it.

        ``want_slash`` says the request path ended in ``/``; a directory asked
        for without it raises :class:`RedirectToSlash`.
        """
        key = (segments, want_slash)
        trail = self._found.get(key)
        if trail is not None:
            found = self._revalidate(trail)
            if found is not None:
                return found
        trail = _Trail()
        for root in self.roots:
            n = len(root.prefix)
            if segments[:n] != root.prefix:
                continue
            rel = segments[n:]
            candidate = os.path.join(root.real, *rel) if rel else root.real
            found = self._lookup(root, candidate, want_slash, segments, trail)
            if found is not None:
                if not found.is_dir:
                    if len(self._found) >= self.REAL_CACHE_SIZE:
                        self._found.clear()
                        self._urls.clear()
                    trail.found = found
                    self._found[key] = trail
                return found
        return None

    @staticmethod
    def _revalidate(trail: _Trail) -> Resolved | None:
        """The cached answer with a fresh stat, if every path on its trail is unchanged.

        A lookup that found a file is remembered with the paths it tried:
        those that did not exist (an earlier root, a missing index name) and
        those it went through (the candidate, the index file) with their
        inodes. Serving it again costs one ``stat`` per path instead of the
        whole search: any path that appeared, vanished or now leads to
        another inode sends the request down the full lookup, so a file
        added to an earlier root, a replaced file or a re-pointed symlink is
        seen at once.
        """
        for path in trail.missing:
            try:
                os.stat(path)
            except (OSError, ValueError):
                continue
            return None
        st = None
        for path, identity in trail.passed:
            try:
                st = os.stat(path)
            except (OSError, ValueError):
                return None
            if (st.st_dev, st.st_ino) != identity:
                return None
        f = trail.found
        if st is None or f is None:
            return None
        return Resolved(f.path, f.url, f.root, st, False, f.spec, f.suffix)

    def _real_stat(
        self, candidate: str, root: Root, trail: _Trail | None = None
    ) -> tuple[str, os.stat_result] | None:
        """The real path and stat of ``candidate`` if it exists inside ``root``.

        ``realpath`` costs an ``lstat`` per path component, so the answer is
        cached per candidate and re-validated on every call with one
        ``os.stat`` (which follows symlinks): the cached real path is used
        only while the candidate still leads to the same inode. A symlink
        re-pointed elsewhere leads to another inode and is resolved and
        checked afresh, so nothing outside the root is ever served.
        """
        try:
            st = os.stat(candidate)
        except (OSError, ValueError):
            if trail is not None:
                trail.missing.append(candidate)
            return None
        identity = (st.st_dev, st.st_ino)
        cached = self._real_cache.get(candidate)
        if cached is not None and cached[1] == identity:
            real = cached[0]
        else:
            real = os.path.realpath(candidate)
            if not self._allowed(real + os.sep, root):
                if trail is not None:
                    trail.missing.append(candidate)  # exists: never revalidates
                return None
            if len(self._real_cache) >= self.REAL_CACHE_SIZE:
                self._real_cache.clear()
            self._real_cache[candidate] = (real, identity)
        if trail is not None:
            trail.passed.append((candidate, identity))
        return real, st

    def _lookup(
        self,
        root: Root,
        candidate: str,
        want_slash: bool,
        segments: tuple[str, ...],
        trail: _Trail | None = None,
    ) -> Resolved | None:
        found = self._real_stat(candidate, root, trail)
        if found is None:
            return None
        real, st = found
        if stat.S_ISDIR(st.st_mode):
            if not want_slash and segments:
                raise RedirectToSlash(self.canonical(segments, True))
            for index in self.indexes:
                indexed = self._real_stat(os.path.join(real, index), root, trail)
                if indexed is not None and stat.S_ISREG(indexed[1].st_mode):
                    return self._file(root, *indexed, (*segments, index))
                if indexed is not None and trail is not None:
                    # An index name that is not a regular file: never cache.
                    trail.missing.append(os.path.join(real, index))
            if self.allow_listing:
                url = (
                    self._url_of(root, real + os.sep)
                    if self._in_root(real, root)
                    else self.canonical(segments, True)
                )
                return Resolved(Path(real), url, root, st, is_dir=True)
            return None
        if not stat.S_ISREG(st.st_mode):
            return None  # a FIFO, socket or device: stat-ed, never opened
        return self._file(root, real, st, segments)

    def _allowed(self, real_with_sep: str, root: Root) -> bool:
        """Whether a real path may be served from ``root``: never under ``conf/``;
        outside the root only through a followed link."""
        if any(real_with_sep.startswith(f) for f in self.forbidden):
            return False
        return self.follow_symlinks or real_with_sep.startswith(root.real)

    @staticmethod
    def _in_root(real: str, root: Root) -> bool:
        return (real + os.sep).startswith(root.real)

    def _url_of(self, root: Root, real: str) -> str:
        rel = real[len(root.real) :].replace(os.sep, "/")
        prefix = "/".join(root.prefix)
        url = "/" + "/".join(p for p in (prefix, rel) if p)
        if real.endswith(os.sep) and not url.endswith("/"):
            url += "/"
        return url

    def _path(self, real: str) -> Path:
        path = self._paths.get(real)
        if path is None:
            if len(self._paths) >= self.REAL_CACHE_SIZE:
                self._paths.clear()
            path = self._paths[real] = Path(real)
        return path

    def _file(
        self, root: Root, real: str, st: os.stat_result, segments: tuple[str, ...]
    ) -> Resolved | None:
        """The answer for a regular file; ``segments`` is the URL it was asked by.

        The real file's name picks the processor (a link named ``x.txt`` to a
        script is still a script) and decides what is never sent raw.
        """
        name = os.path.basename(real)
        if name.startswith("."):
            return None
        match = self.processors.match(name)
        if self._in_root(real, root):
            url = self._url_of(root, real)
        else:  # reached through a followed link
            url = self.canonical(segments)
            self._urls[real] = url
        if match is None:
            # Case-insensitive: on macOS or Windows /x.DSPY opens x.dspy.
            if name.lower().endswith(self.never_raw):
                return None
            return Resolved(self._path(real), url, root, st)
        suffix, spec = match
        return Resolved(self._path(real), url, root, st, spec=spec, suffix=suffix)

    def walk(self, root: Root) -> Iterator[tuple[tuple[str, ...], str]]:
        """``(URL segments, real path)`` of every regular file a URL could reach in ``root``.

        Follows links as lookups do (``follow_symlinks``), skips what a URL
        can never name (dotfiles, ``conf/``, FIFOs, sockets, devices: only
        ``stat``-ed) and visits each real folder once, so a link loop ends.
        For ``ahcore check``; whether a file is *served* is still up to
        :meth:`resolve` (indexes, processors, source never sent raw).
        """
        try:
            top = os.stat(root.real)
        except OSError:
            return
        seen = {(top.st_dev, top.st_ino)}

        def visit(folder: str, segments: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
            try:
                names = sorted(entry.name for entry in os.scandir(folder))
            except OSError:
                return
            for name in names:
                if name.startswith(".") or "\\" in name:
                    continue
                path = os.path.join(folder, name)
                try:
                    st = os.stat(path)
                except OSError:  # dangling link, link loop
                    continue
                real = os.path.realpath(path)
                if not self._allowed(real + os.sep, root):
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        yield from visit(path, (*segments, name))
                elif stat.S_ISREG(st.st_mode):
                    yield (*segments, name), real

        yield from visit(root.real.rstrip(os.sep) or os.sep, root.prefix)

    def file_url(self, path: str | Path) -> str | None:
        """The URL under which a filesystem path is served (ahserver's ``webpath``).

        A file inside a root's real folder has its URL there. A file reached
        through a followed link (a module folder linked into the root) has
        the URL a lookup found it under, or, for a path written through the
        link (``wwwroot/module/page.tmpl``), the URL that path spells.
        """
        real = os.path.realpath(path)
        url = self._urls.get(real)
        if url is not None:
            return url
        for root in self.roots:
            if self._in_root(real, root):
                return self._url_of(root, real)
        if not self.follow_symlinks:
            return None
        lexical = os.path.abspath(path)
        for root in self.roots:
            folder = os.path.abspath(root.folder).rstrip(os.sep) + os.sep
            if lexical.startswith(folder):
                rel = tuple(p for p in lexical[len(folder) :].split(os.sep) if p)
                return self.canonical((*root.prefix, *rel))
        return None

    def resolve_page(self, segments: tuple[str, ...], want_slash: bool) -> Resolved | None:
        """:meth:`resolve` for a request from outside: a partial is no page (``None``: 404).

        Templates (``include``, ``extends``), ``path_call`` and
        ``SiteView.resolve`` use :meth:`resolve` and still find partials.

        A page found is remembered until the event loop's next turn: the
        other requests for it in the same turn (a busy site gets dozens)
        are answered without the ``stat`` calls of :meth:`resolve`. That
        changes nothing a client can see. Every request looked up in a turn
        had been read from its socket before the turn began, so before the
        remembered ``stat`` was made: serving it as of that ``stat`` is
        serving it a moment earlier, which its client cannot tell from
        network delay. A request read after a file was saved is looked up
        in a later turn and sees the new file. Lookups from inside a
        request (:meth:`resolve`: ``include``, ``path_call``) are never
        remembered, so a script that writes a file and then runs it gets
        the new one.
        """
        key = (segments, want_slash)
        found = self._this_turn.get(key)
        if found is not None:
            return found
        found = self.resolve(segments, want_slash)
        if found is None or is_partial(found):
            return None
        if not found.is_dir and self._remember_this_turn():
            self._this_turn[key] = found
        return found

    def _remember_this_turn(self) -> bool:
        """Whether a page may be remembered now: there is a running loop to forget it."""
        if not self._this_turn:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a check, a test): nothing is remembered
                return False
            loop.call_soon(self._this_turn.clear)
        return True


PARTIAL_PREFIX = "_"


def is_partial(found: Resolved) -> bool:
    """Whether ``found`` is a partial: a processor's file whose name starts with ``_``.

    A partial (``_layout.tmpl``, ``_header.tmpl``, a ``_helpers.dspy``) is a
    part of other pages: templates include and extend it, ``path_call`` runs
    it, but a request never gets it as a page (404), so a layout is never
    shown half-rendered. Only files a processor serves count: static files
    keep their names (documentation generators put ``_static/_x.js`` on the
    web), and so do folders. The name is the canonical one (the real file's,
    so a symlink to a partial is a partial too).
    """
    if found.spec is None or found.is_dir:
        return False
    return found.url.rsplit("/", 1)[-1].startswith(PARTIAL_PREFIX)
