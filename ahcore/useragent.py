"""ahserver's ``terminalType``: what kind of device a User-Agent names.

Its own module because the request context sets it on every script and
template namespace (:mod:`ahcore.context`), below the modules that offer
the other names.
"""

from __future__ import annotations

import functools

#: ahserver's ``clientkeys``, in its order: the first text found in the
#: User-Agent (case-sensitive) names the terminal; anything else is ``'pc'``.
#: (Its last rule, ``Windows NT…Win64; x64``, also answers ``'pc'``.)
TERMINAL_TYPES = (
    ("iPhone", "iphone"),
    ("iPad", "ipad"),
    ("Android", "androidpad"),
    ("Windows Phone", "winphone"),
)


@functools.lru_cache(maxsize=512)  # a pure function of the header: memoised, bounded
def terminal_type(user_agent: str) -> str:
    """ahserver's ``terminalType``: ``'iphone'``, ``'ipad'``, ``'androidpad'``, ``'winphone'`` or ``'pc'``.

    Every script and template request asks, and a site sees a few hundred
    distinct User-Agents: the answer is remembered per text (a pure
    function's memo, bounded; no request or site state in it).
    """
    for needle, kind in TERMINAL_TYPES:
        if needle in user_agent:
            return kind
    return "pc"
