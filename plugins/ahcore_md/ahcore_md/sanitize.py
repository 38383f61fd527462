"""An allow-list HTML sanitizer for sites that allow raw HTML in markdown.

With ``plugins.md.allow_html: true`` authors may write HTML in their
markdown, but a page must still never run script: the rendered page is
parsed and written out again keeping only known-harmless tags and
attributes. ``<script>``, ``<style>``, ``<iframe>`` and their kin are dropped
with their content; other unknown tags are dropped but their text kept;
event handlers (``on*=``), ``style`` (except the table alignment mistune
writes) and URLs with a scheme outside :data:`ahcore_md.urls.SAFE_SCHEMES`
are removed. The parser decodes character references before the checks,
so ``jav&#x61;script:`` is caught too.

It runs once per change of the file (the result is cached), so its cost
does not matter per request.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from ahcore_md.urls import is_safe_url

ALLOWED_TAGS = frozenset(
    """a abbr b bdi bdo blockquote br caption center cite code col colgroup dd del details dfn
    div dl dt em figcaption figure h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p picture pre
    q rp rt ruby s samp small source span strike strong sub summary sup table tbody td tfoot th
    thead time tr u ul var wbr""".split()
)

# Dropped together with everything inside them.
DROPPED_WITH_CONTENT = frozenset(
    """script style iframe object applet template noscript noembed noframes frameset
    svg math textarea select title xmp plaintext""".split()
)

VOID_TAGS = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()
)

GLOBAL_ATTRS = frozenset({"id", "class", "title", "lang", "dir", "role"})
TAG_ATTRS: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "name", "target", "rel"}),
    "img": frozenset({"src", "alt", "width", "height", "loading"}),
    "source": frozenset({"src", "type", "media"}),
    "td": frozenset({"colspan", "rowspan", "align"}),
    "th": frozenset({"colspan", "rowspan", "align", "scope"}),
    "col": frozenset({"span"}),
    "colgroup": frozenset({"span"}),
    "ol": frozenset({"start", "type", "reversed"}),
    "li": frozenset({"value"}),
    "details": frozenset({"open"}),
    "time": frozenset({"datetime"}),
    "del": frozenset({"cite", "datetime"}),
    "ins": frozenset({"cite", "datetime"}),
    "q": frozenset({"cite"}),
    "blockquote": frozenset({"cite"}),
    "p": frozenset({"align"}),
    "div": frozenset({"align"}),
}
URL_ATTRS = frozenset({"href", "src", "cite"})
# The only inline style kept: mistune's table-column alignment.
_SAFE_STYLE = re.compile(r"\s*text-align\s*:\s*(left|right|center)\s*;?\s*", re.IGNORECASE)


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._dropping: str | None = None  # tag whose content is being dropped
        self._depth = 0  # nesting of that tag inside itself

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> None:
        if self._dropping is not None:
            if tag == self._dropping and not self_closing:
                self._depth += 1
            return
        if tag in DROPPED_WITH_CONTENT:
            if not self_closing and tag not in VOID_TAGS:
                self._dropping, self._depth = tag, 1
            return
        if tag not in ALLOWED_TAGS:
            return
        kept = "".join(
            f' {name}="{html.escape(clean, quote=True)}"'
            for name, value in attrs
            if (clean := _clean_attr(tag, name, value)) is not None
        )
        self.out.append(f"<{tag}{kept}{' /' if self_closing or tag in VOID_TAGS else ''}>")

    def handle_endtag(self, tag: str) -> None:
        if self._dropping is not None:
            if tag == self._dropping:
                self._depth -= 1
                if self._depth == 0:
                    self._dropping = None
            return
        if tag in ALLOWED_TAGS and tag not in VOID_TAGS:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self._dropping is None:
            self.out.append(html.escape(data, quote=False))

    # Comments, doctypes, processing instructions and CDATA are dropped:
    # HTMLParser's default handlers for them do nothing.


def _clean_attr(tag: str, name: str, value: str | None) -> str | None:
    """The value to keep for attribute ``name`` of ``tag``, or None to drop it."""
    if name == "style":
        return value if value is not None and _SAFE_STYLE.fullmatch(value) else None
    if name not in GLOBAL_ATTRS and name not in TAG_ATTRS.get(tag, ()):
        return None  # includes every on* event handler
    if value is None:
        return name if name in ("open", "reversed") else ""
    if name in URL_ATTRS and not is_safe_url(value):
        return None
    return value


def sanitize_html(fragment: str) -> str:
    """``fragment`` with everything that could run script removed."""
    parser = _Sanitizer()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.out)
