"""Translations: ``i18n/<lang>/*.txt`` files of ``key:translation`` lines.

The visitor's language comes from ``Accept-Language`` (quality values
honoured), each tag mapped through ``langMapping`` (case-insensitive), then
tried as is and by its primary subtag (``en-GB`` → ``en``). A missing
translation falls back to the text itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("ahcore.i18n")


#: appPublic's ``convert_pairs``: how a ``msg.txt`` line writes a colon or a line break.
_ESCAPES = (("\\x3A", ":"), ("\\x0A", "\n"), ("\\x0D", "\r"))


def unescape(text: str) -> str:
    """A ``msg.txt`` key or translation as appPublic's ``charDecode`` read it.

    ``\\x3A`` is a colon (the first bare colon ends the key), ``\\x0A`` and
    ``\\x0D`` line breaks, ``\\\\`` one backslash.
    """
    if "\\" not in text:
        return text
    for escaped, char in _ESCAPES:
        text = text.replace(escaped, char)
    return text.replace("\\\\", "\\")


def parse_accept_language(header: str) -> list[str]:
    """Language tags from an ``Accept-Language`` header, best first (q=0 dropped)."""
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")):
        parts = item.strip().split(";")
        tag = parts[0].strip()
        if not tag or tag == "*" or len(tag) > 35:
            continue
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            weighted.append((-q, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


class Translations:
    """All languages of one site, loaded from disk; reloaded as a whole."""

    def __init__(self, folder: Path, mapping: Mapping[str, str], default: str | None = None) -> None:
        self.folder = folder
        self.mapping = {k.lower(): v for k, v in mapping.items()}
        self.default = default
        self.messages: dict[str, dict[str, str]] = {}
        self.load()

    def load(self) -> None:
        messages: dict[str, dict[str, str]] = {}
        if self.folder.is_dir():
            for lang_dir in sorted(self.folder.iterdir()):
                if not lang_dir.is_dir() or lang_dir.name.startswith("."):
                    continue
                table: dict[str, str] = {}
                for file in sorted(lang_dir.glob("*.txt")):
                    table.update(self._read(file))
                messages[lang_dir.name.lower()] = table
        self.messages = messages

    @staticmethod
    def _read(file: Path) -> dict[str, str]:
        table = {}
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read translations %s: %s", file, exc)
            return {}
        for line in text.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition(":")
            if sep:
                table[unescape(key.strip())] = unescape(value.strip())
        return table

    def signature(self) -> tuple[tuple[str, int, int], ...]:
        """What changes when any translation file changes (for the hot-reload watcher)."""
        if not self.folder.is_dir():
            return ()
        items = []
        for dirpath, _, files in os.walk(self.folder):
            for name in files:
                if name.endswith(".txt"):
                    path = os.path.join(dirpath, name)
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    items.append((path, st.st_mtime_ns, st.st_size))
        return tuple(sorted(items))

    def language_for(self, accept_language: str | None) -> str | None:
        """The best available language for a request, or the default."""
        for tag in parse_accept_language(accept_language or ""):
            lowered = tag.lower()
            for candidate in (self.mapping.get(lowered), lowered, lowered.split("-")[0]):
                if candidate and candidate.lower() in self.messages:
                    return candidate.lower()
        return self.default.lower() if self.default else None

    def table(self, lang: str | None) -> dict[str, str]:
        return self.messages.get(lang or "", {})

    def translate(self, lang: str | None, text: str) -> str:
        return self.table(lang).get(text, text)
