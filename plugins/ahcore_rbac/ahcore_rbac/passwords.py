"""Password and API-key hashing.

Passwords use argon2id (memory-hard, salted, self-describing hashes) through
argon2-cffi. Hashing takes tens of milliseconds of CPU on purpose, so the
async callers run it off the event loop — in the site's own small thread
pool (``plugins.rbac.hash_workers`` threads, SPEC §16), not the loop's
default executor: that one has up to ``cpu_count + 4`` threads, so ten
concurrent logins would keep every CPU busy hashing and static files would
wait behind them. With a bounded pool a burst of logins queues for a thread
while the event loop keeps a CPU. On Linux the hashing threads also run at
a lower scheduling priority (``nice`` +10, a per-thread setting there), so
when CPUs are short the event loop is served first. The pool is started with the site and
shut down with it (``start``/``shutdown``, called from the plugin's
``on_startup``/``on_shutdown``), and belongs to the site's rbac state — no
module-level executor.

API keys are long random strings, not guessable passwords, so a fast sha256
is enough and keeps bearer auth cheap per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_PASSWORD_LENGTH = 1024
#: How much lower the hashing threads' scheduling priority is (Linux ``nice``).
HASH_NICENESS = 10


def _lower_priority() -> None:
    """Run in each hashing thread as it starts: yield the CPU to the event loop first.

    Linux gives every thread its own nice value (``setpriority`` on its
    thread id); elsewhere this would renice the whole process, so it is done
    on Linux only. Raising one's own niceness needs no privilege.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + HASH_NICENESS)


class Passwords:
    """One hasher per site (its argon2 parameters come from the settings)."""

    def __init__(self, params: Mapping[str, int] | None = None, workers: int = 2) -> None:
        kdf: dict[str, Any] = dict(params or {})
        self.hasher = PasswordHasher(**kdf)
        self.workers = workers
        self._dummy: str | None = None
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Create the hashing threads' pool (at the site's start)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.workers,
                thread_name_prefix="ahcore-rbac-hash",
                initializer=_lower_priority,
            )

    def shutdown(self) -> None:
        """Stop the pool (at the site's shutdown); queued work is dropped, running work ends."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def _off_loop(self, func: Callable[..., Any], *args: Any) -> Any:
        if self._executor is None:
            raise RuntimeError("password hashing has not started (the rbac plugin's on_startup)")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

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
        """Hash in the hashing pool, off the event loop."""
        result: str = await self._off_loop(self.hash_sync, password)
        return result

    async def verify(self, stored: str | None, password: str) -> bool:
        """Verify in the hashing pool, off the event loop."""
        result: bool = await self._off_loop(self.verify_sync, stored, password)
        return result


def new_api_key() -> str:
    """A fresh API key (shown once; only its hash is stored)."""
    return "ahk_" + secrets.token_urlsafe(32)


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
