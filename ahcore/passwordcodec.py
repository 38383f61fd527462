"""ahserver's ``password_encode``: reversible RC4 text, for passwords stored that way.

ahserver sites keep users' passwords in their own tables as
``password_encode(text)`` and log in by comparing encodings, so ahcore must
produce the very same text: base64 of a fixed 16-byte salt followed by the
RC4 keystream (key: SHA-1 of the site's ``password_key`` and the salt)
applied to the UTF-8 bytes (appPublic's ``rc4.password``). The key defaults
to ahserver's built-in one when the config has no ``password_key``.

This is obfuscation, not hashing: anyone with the key recovers every
password. New sites use ahcore-rbac, which hashes passwords with a
memory-hard KDF; this exists so existing sites keep working.
"""

from __future__ import annotations

import base64
import hashlib

#: appPublic's RC4 salt (fixed, despite its name) and ahserver's default key.
SALT = b"AFUqx9WZuI32lnHk"
DEFAULT_KEY = "QRIVSRHrthhwyjy176556332"


def _rc4(data: bytes, key: bytes) -> bytes:
    box = list(range(256))
    j = 0
    for i in range(256):
        j = (j + box[i] + key[i % len(key)]) % 256
        box[i], box[j] = box[j], box[i]
    i = j = 0
    out = bytearray(len(data))
    for n, byte in enumerate(data):
        i = (i + 1) % 256
        j = (j + box[i]) % 256
        box[i], box[j] = box[j], box[i]
        out[n] = byte ^ box[(box[i] + box[j]) % 256]
    return bytes(out)


def _key(key: str) -> bytes:
    return hashlib.sha1(key.encode("iso-8859-1") + SALT, usedforsecurity=False).digest()


def password_encode(text: str, key: str | None = None) -> str:
    """``text`` encoded as ahserver's ``password_encode`` did, with ``key``."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return base64.b64encode(SALT + _rc4(data, _key(key or DEFAULT_KEY))).decode("ascii")


def password_decode(code: str, key: str | None = None) -> str:
    """The text :func:`password_encode` encoded (for tests and migrations)."""
    raw = base64.b64decode(code)
    return _rc4(raw[len(SALT) :], _key(key or DEFAULT_KEY)).decode("utf-8")
