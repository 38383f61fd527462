"""Ended sessions: a record per session id, so a replayed cookie stays logged out.

A cookie session carries its whole state, so deleting nothing on the server
would leave a copy of the cookie taken before logout working until its
ticket expires. Every login ticket has a random session id (``sid``);
logging out (or logging in again) records that id here until the ticket
would have expired, and a ticket whose id is recorded is no ticket
(SPEC §14). With Redis sessions the same record also stops a request that
was in flight during the logout from writing the session back.

Where the records live:

- **Redis** when ``website.session_redis`` is configured: one key per id
  with the remaining lifetime as its TTL, shared by every machine.
- Otherwise **a SQLite file in the site** (``conf/.session_revocations.sqlite3``,
  mode 0600; the user data dir when ``conf/`` is not writable). Chosen over a
  file of lines because SQLite already does what the workers of
  ``ahcore serve --workers N`` need from a shared store: atomic writes from
  several processes under its own file lock, a primary-key lookup without
  reading the whole store, and expired records deleted by one statement. It
  is in the standard library, and the rollback journal (not WAL) keeps a
  lookup read-only: it writes nothing, so the site folder does not change
  when a visitor is checked. The file is created at the first logout; until
  then a lookup is one ``stat``.

A lookup happens only for a request whose cookie holds a valid ticket, once
per request, and runs on the event loop; a logout's write goes to a worker
thread. Each worker remembers the ids it found live, tagged with the
store's *file change counter* (bytes 24–27 of a SQLite file, which every
committed write changes in rollback-journal mode): while the counter is
unchanged a known-live id costs one 4-byte ``pread``, and any write by any
worker makes the next lookup ask the database again. If the store cannot
be read the ticket is refused (fail closed) and the error logged: an
unreadable store must not bring revoked sessions back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

import platformdirs

log = logging.getLogger("ahcore.session")

FILENAME = ".session_revocations.sqlite3"
#: Where SQLite keeps its file change counter (see the module doc).
_CHANGE_COUNTER = slice(24, 28)
#: Live ids remembered per worker before the memory is cleared.
_LIVE_CACHE = 10_000
_SCHEMA = "create table if not exists revoked (sid text primary key, until real not null)"


class Revocations(Protocol):
    """Where ended session ids are kept until their tickets would have expired."""

    async def revoke(self, sid: str, until: float) -> None:
        """Record ``sid`` as ended until ``until`` (a ``time.time()`` value)."""

    async def is_revoked(self, sid: str) -> bool:
        """True when ``sid`` has been ended (or the store cannot say)."""

    async def close(self) -> None:
        """Let go of connections."""


class RedisRevocations:
    """One key per ended id, expiring with the ticket: ``<prefix><sid>``."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def revoke(self, sid: str, until: float) -> None:
        ttl = max(1, int(until - time.time()) + 1)
        await self.redis.set(self.prefix + sid, b"1", ex=ttl)

    async def is_revoked(self, sid: str) -> bool:
        return bool(await self.redis.exists(self.prefix + sid))

    async def close(self) -> None:
        """The Redis client belongs to the session storage, which closes it."""


class SqliteRevocations:
    """The site's own store, shared by the workers of one machine (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: sqlite3.Connection | None = None
        self._fd: int | None = None  # the file, for its change counter
        self._version: bytes | None = None
        self._live: set[str] = set()  # ids found not revoked at _version
        self._write_lock = asyncio.Lock()

    async def revoke(self, sid: str, until: float) -> None:
        async with self._write_lock:
            await asyncio.to_thread(self._revoke_sync, sid, until)

    def _revoke_sync(self, sid: str, until: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        con = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            con.execute(_SCHEMA)
            con.execute("begin immediate")
            con.execute("insert or replace into revoked (sid, until) values (?, ?)", (sid, until))
            con.execute("delete from revoked where until < ?", (time.time(),))
            con.execute("commit")
        finally:
            con.close()

    async def is_revoked(self, sid: str) -> bool:
        try:
            return self._lookup(sid)
        except sqlite3.Error as exc:
            log.error("session revocations %s unreadable (%s): refusing the ticket", self.path, exc)
            self._drop_reader()
            return True

    def _lookup(self, sid: str) -> bool:
        reader = self._reader
        if reader is None:
            if not self.path.exists():
                return False  # nobody has logged out yet
            # Read-write, though it only reads: a reader may have to roll back
            # a journal left by a worker that died mid-write.
            reader = self._reader = sqlite3.connect(
                self.path, timeout=2.0, isolation_level=None, check_same_thread=False
            )
            self._fd = os.open(self.path, os.O_RDONLY)
        # Read before the query: a write landing in between changes the
        # counter again, so what the query finds is never cached as newer.
        assert self._fd is not None
        try:
            version = os.pread(self._fd, 4, _CHANGE_COUNTER.start)
        except OSError as exc:
            raise sqlite3.OperationalError(str(exc)) from None
        if version != self._version:
            self._version = version
            self._live.clear()
        elif sid in self._live:
            return False
        try:
            row = reader.execute("select until from revoked where sid = ?", (sid,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            row = None  # created, first record not yet written
        if row is not None and row[0] >= time.time():
            return True
        if len(self._live) >= _LIVE_CACHE:
            self._live.clear()
        self._live.add(sid)
        return False

    def _drop_reader(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(sqlite3.Error):
                self._reader.close()
            self._reader = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        self._version = None
        self._live.clear()

    async def close(self) -> None:
        self._drop_reader()


def sqlite_path(workdir: Path) -> Path:
    """The store's file: the site's private ``conf/`` when writable, else the user data dir."""
    conf = workdir / "conf"
    if os.access(conf, os.W_OK):
        return conf / FILENAME
    digest = hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:16]
    return Path(platformdirs.user_data_dir("ahcore")) / "revocations" / f"{digest}.sqlite3"
