"""Template names are URLs: a Jinja2 loader that finds them through the site's resolver.

``{% include "part.tmpl" %}`` in ``/docs/guide/page.tmpl`` is looked for at
``/docs/guide/part.tmpl``, then ``/docs/part.tmpl``, then ``/part.tmpl`` (so a
site can keep shared layouts at the top and override them in a folder), then
under every other content root's URL prefix (``/other/part.tmpl``). A name
starting with ``/`` is a URL and is looked up as it is.

Every candidate goes through :func:`ahcore.api.url_segments` and the site's
:meth:`~ahcore.api.SiteView.resolve`, the same code that serves requests:
``..`` in any encoding is refused, dotfiles and ``conf/`` are invisible, and
nothing outside the content roots can be read. A template may only read
files that are served raw (``header.html``) or that are templates
themselves; the source of another processor's file (a ``.dspy`` script, an
``.sqlds`` query) is never readable through ``include``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import jinja2
from aiohttp import web

from ahcore.api import Resolved, SiteView, url_segments

# The processor whose files may be used as templates (besides raw files).
PROCESSOR_NAME = "tmpl"


class TemplateNameRefused(jinja2.TemplateNotFound):
    """A template name that tries to leave the content roots (``..``, bad encoding).

    A subclass of :class:`jinja2.TemplateNotFound`, so the page fails as for a
    missing template and the visitor learns nothing about the filesystem.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name, f"template name {name!r} refused: it leaves the content roots")


class UrlLoader(jinja2.BaseLoader):
    """Loads templates by URL from a site's content roots.

    Holds only the site's view, never its roots or resolver: each lookup
    asks the site as it is now, so after a reload that changes
    ``website.paths`` an include resolves against the new roots. Shared by
    every request of the site.
    """

    def __init__(self, site: SiteView, processor_name: str = PROCESSOR_NAME) -> None:
        self.site = site
        self.processor_name = processor_name

    @property
    def encoding(self) -> str:
        """The site's file encoding (``website.coding``), as currently configured."""
        return self.site.config.website.coding

    # ------------------------------------------------------------ names

    def join(self, name: str, parent: str | None) -> str:
        """The canonical URL that ``name`` means inside template ``parent``.

        Tries the candidates of :meth:`candidates` in order and returns the
        first that exists. Called by Jinja2 for every ``include``/``extends``
        at render time, so a file added closer to the page is found at once.
        """
        for segments in self.candidates(name, parent):
            found = self.find(segments)
            if found is not None:
                return found.url
        raise jinja2.TemplateNotFound(name)

    def candidates(self, name: str, parent: str | None) -> Iterator[tuple[str, ...]]:
        """URL segments to try for ``name``: its folder, the folders above, the other roots."""
        segments = self._segments(name)
        if not segments:
            raise jinja2.TemplateNotFound(name)
        if name.startswith("/") or parent is None:
            yield segments
            return
        folder = self._segments(parent)[:-1]
        seen: set[tuple[str, ...]] = set()
        for depth in range(len(folder), -1, -1):
            candidate = folder[:depth] + segments
            seen.add(candidate)
            yield candidate
        for root in self.site.roots:
            candidate = root.prefix + segments
            if candidate not in seen:
                seen.add(candidate)
                yield candidate

    def find(self, segments: tuple[str, ...]) -> Resolved | None:
        """The file a URL names, if a template may read it."""
        found = self.site.resolve("/" + "/".join(segments))
        if found is None or found.is_dir:  # missing, refused, or a folder
            return None
        if found.spec is not None and found.spec.name != self.processor_name:
            return None
        return found

    @staticmethod
    def _segments(name: str) -> tuple[str, ...]:
        try:
            return url_segments(name)
        except web.HTTPException:  # 400 for traversal or bad encoding, 404 for dotfiles
            raise TemplateNameRefused(name) from None

    # ------------------------------------------------------------ loading

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        """Read a template by URL; ``uptodate`` lets Jinja2 recompile it after a change."""
        found = self.find(self._segments(template))
        if found is None:
            raise jinja2.TemplateNotFound(template)
        path = found.path
        # Stamp taken before reading: a change racing the read makes the
        # template look stale, never fresh.
        stamp = (found.stat.st_mtime_ns, found.stat.st_size, found.stat.st_ino)
        try:
            source = path.read_text(encoding=self.encoding)
        except OSError:
            raise jinja2.TemplateNotFound(template) from None

        # A template is keyed to the config it was found under: a reload that
        # changes the roots may map the same name to another file.
        config = self.site.config

        def uptodate() -> bool:
            if self.site.config is not config:
                return False
            try:
                st = os.stat(path)
            except OSError:
                return False
            return (st.st_mtime_ns, st.st_size, st.st_ino) == stamp

        return source, str(path), uptodate
