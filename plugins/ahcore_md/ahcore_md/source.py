"""The markdown source with its link URLs made absolute, for clients that render it.

ahserver answered every ``.md`` request with the file's text, each
``[text](url)`` rewritten to an absolute URL, and left rendering to the page
that fetched it (the bricks ``MarkdownViewer``). Its rewrite was one greedy
regular expression over the whole text: on a line with two links only the
last was rewritten (and the text between them became the first link's
label), links inside code were changed, ``#anchor`` links broke. Here the
text is scanned:

- inline links and images ``[text](url "title")``, ``![alt](<url>)`` and
  reference definitions ``[id]: url`` have their URL rewritten by the same
  :class:`~ahcore_md.urls.LinkRewriter` as rendered pages (relative →
  origin token + site path; ``#anchor``, ``//host`` and safe absolute URLs
  kept; ``javascript:`` and other unsafe schemes → ``#harmful-link``);
- fenced code blocks and code spans are left exactly as written;
- everything else is the file's own text, byte for byte.
"""

from __future__ import annotations

import re

from ahcore_md.urls import LinkRewriter

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_REFERENCE = re.compile(r"^( {0,3}\[(?:[^\]\\\n]|\\.)+\]:[ \t]*)(<[^>\n]*>|\S+)")


def rewrite_source(text: str, rewrite: LinkRewriter) -> str:
    """``text`` (markdown) with the URLs of its links and images passed through ``rewrite``."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        opener = _FENCE.match(line)
        if fence is not None:
            # Inside a fenced block: only a closing fence of the same kind ends it.
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                if not line[opener.end() :].strip():
                    fence = None
            out.append(line)
            continue
        if opener:
            fence = opener.group(1)
            out.append(line)
            continue
        ref = _REFERENCE.match(line)
        if ref:
            out.append(ref.group(1) + _destination(ref.group(2), rewrite) + line[ref.end() :])
            continue
        out.append(_inline(line, rewrite))
    return "".join(out)


def _destination(dest: str, rewrite: LinkRewriter) -> str:
    if dest.startswith("<") and dest.endswith(">"):
        return "<" + rewrite(dest[1:-1]) + ">"
    return rewrite(dest)


def _inline(line: str, rewrite: LinkRewriter) -> str:
    """Rewrite the destinations of ``[…](…)`` in one line, outside code spans."""
    out: list[str] = []
    i, n = 0, len(line)
    depth = 0  # open '[' not yet closed
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n:
            out.append(line[i : i + 2])
            i += 2
            continue
        if c == "`":
            run = len(line) - len(line[i:].lstrip("`"))
            ticks = line[i : i + run]
            close = line.find(ticks, i + run)
            while close != -1 and line[close + run : close + run + 1] == "`":
                close = line.find(ticks, close + run + 1)
            if close == -1:  # no closing run: the backticks are text
                out.append(ticks)
                i += run
                continue
            out.append(line[i : close + run])
            i = close + run
            continue
        if c == "[":
            depth += 1
        elif c == "]" and depth:
            depth -= 1
            if line[i + 1 : i + 2] == "(":
                end = _link_end(line, i + 2)
                if end is not None:
                    dest_start, dest_end, close = end
                    out.append("](" + line[i + 2 : dest_start])
                    out.append(_destination(line[dest_start:dest_end], rewrite))
                    out.append(line[dest_end : close + 1])
                    i = close + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def _link_end(line: str, start: int) -> tuple[int, int, int] | None:
    """Where the destination of a link starting at ``start`` (after ``(``) lies.

    Returns (destination start, destination end, index of the closing
    ``)``), or None when this is not a link destination.
    """
    n = len(line)
    i = start
    while i < n and line[i] in " \t":
        i += 1
    dest_start = i
    if i < n and line[i] == "<":
        close = line.find(">", i)
        if close == -1:
            return None
        i = close + 1
    else:
        parens = 0
        while i < n and not line[i].isspace():
            ch = line[i]
            if ch == "\\" and i + 1 < n:
                i += 2
                continue
            if ch == "(":
                parens += 1
            elif ch == ")":
                if parens == 0:
                    break
                parens -= 1
            i += 1
    dest_end = i
    # An optional title, then the closing parenthesis.
    while i < n and line[i] in " \t":
        i += 1
    if i < n and line[i] in "\"'(":
        quote = ")" if line[i] == "(" else line[i]
        close_title = line.find(quote, i + 1)
        if close_title == -1:
            return None
        i = close_title + 1
        while i < n and line[i] in " \t":
            i += 1
    if i < n and line[i] == ")":
        return dest_start, dest_end, i
    return None
