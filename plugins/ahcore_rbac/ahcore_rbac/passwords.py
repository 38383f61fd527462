"""Password and API-key hashing.

Passwords use argon2id (memory-hard, salted, self-describing hashes) through
argon2-cffi. Hashing takes tens of milliseconds of CPU on purpose, so the
async callers run it in a worker thread (``asyncio.to_thread``) and the event
loop keeps serving. API keys are long random strings, not guessable
passwords, so a fast sha256 is enough and keeps bearer auth cheap per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_PASSWORD_LENGTH = 1024


class Passwords:
    """One hasher per site (its argon2 parameters come from the settings)."""

    def __init__(self, params: Mapping[str, int] | None = None) -> None:
        kdf: dict[str, Any] = dict(params or {})
        self.hasher = PasswordHasher(**kdf)
        self._dummy: str | None = None

    def hash_sync(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify_sync(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored``; an unknown user still costs one verify.

        Verifying against a dummy hash for a missing user keeps the answer
        time the same, so response timing does not reveal which names exist.
        """
        if stored is None:
            if self._dummy is None:
                self._dummy = self.hasher.hash(secrets.token_hex(16))
            stored = self._dummy
            password = password + "\0"  # never matches
        try:
            return self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    async def hash(self, password: str) -> str:
        """Hash off the event loop."""
        return await asyncio.to_thread(self.hash_sync, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Verify off the event loop."""
        return await asyncio.to_thread(self.verify_sync, stored, password)


def new_api_key() -> str:
    """A fresh API key (shown once; only its hash is stored)."""
    return "ahk_" + secrets.token_urlsafe(32)


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
