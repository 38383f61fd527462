"""URLs in markdown: which are safe, and how relative ones become absolute.

ahserver rewrote every markdown link to an absolute URL with the scheme,
host and port the visitor used. The host is only known per request while
the rendered page is cached per file, so links are rendered with a
placeholder (*origin token*) in front of the root-relative URL, and each
request swaps the token for its origin with one ``str.replace``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urljoin

# Schemes a link or image may use; any other scheme (javascript:, vbscript:,
# data:, file: …) is replaced by HARMFUL_LINK.
SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel", "ftp", "ftps"})
HARMFUL_LINK = "#harmful-link"

_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
# Browsers drop ASCII whitespace and control characters inside a scheme
# ("java\tscript:"), so they are ignored when looking for one.
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")


def url_scheme(url: str) -> str | None:
    """The lower-cased scheme of ``url`` as a browser would see it, or None when relative.

    Percent-encoding is undone (a few rounds) before looking, so an encoded
    colon cannot hide a scheme; that errs on the side of refusing.
    """
    probe = url
    for _ in range(3):
        decoded = unquote(probe)
        if decoded == probe:
            break
        probe = decoded
    match = _SCHEME.match(_IGNORED_IN_SCHEME.sub("", probe))
    return match.group(1).lower() if match else None


def is_safe_url(url: str) -> bool:
    """True for relative URLs and for the schemes in :data:`SAFE_SCHEMES`."""
    scheme = url_scheme(url)
    return scheme is None or scheme in SAFE_SCHEMES


class LinkRewriter:
    """Turns a URL found in markdown into what the page links to.

    ``base_url`` is the canonical (decoded) URL of the markdown file;
    relative links resolve against its folder as in ahserver. Absolute URLs
    with a safe scheme, protocol-relative URLs and ``#fragment`` links are
    kept; unsafe schemes are neutralised.
    """

    def __init__(self, base_url: str, origin_token: str) -> None:
        self.base = quote(base_url, safe="/")
        self.token = origin_token

    def __call__(self, url: str) -> str:
        if url_scheme(url) is not None:
            return url if is_safe_url(url) else HARMFUL_LINK
        if not url or url.startswith(("#", "//")):
            return url
        if url.startswith("/"):
            return self.token + url
        return self.token + urljoin(self.base, url)


