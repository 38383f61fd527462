"""One sqlite3 connection and the one thread that may use it.

A sqlite3 connection belongs to the thread that opened it. The embedded
driver gives each pooled connection its own one-thread executor: every job
(open, statements, cursor steps, close) runs there, in submission order, and
the event loop waits for none of them. That is aiosqlite's model, written
with public APIs only (``concurrent.futures`` and ``loop.run_in_executor``)
so the driver no longer reaches into aiosqlite's private queue and
connection attributes: :meth:`run` awaits a job, :meth:`submit` queues one
without waiting (it still runs before any job submitted after it).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class ConnectionClosed(Exception):
    """A job was given to a connection that is closed (or was never opened)."""


class ConnectionThread:
    """A sqlite3 connection confined to its own worker thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ahcore-sqlite-{name}")
        self._db: sqlite3.Connection | None = None
        self._closed = False

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for code running *on this thread* (a job passed to :meth:`run`)."""
        if self._db is None:
            raise ConnectionClosed(f"sqlite connection of {self.name!r} is not open")
        return self._db

    async def open(self, path: str, *, uri: bool = False) -> None:
        """Open the database on the connection's thread (autocommit: the driver sends BEGIN)."""
        self._db = await self.run(functools.partial(sqlite3.connect, path, isolation_level=None, uri=uri))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the connection's thread and return its result."""
        if self._closed:
            raise ConnectionClosed(f"sqlite connection of {self.name!r} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def submit(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn()`` without waiting; it runs before any job submitted later."""
        if self._closed:
            raise ConnectionClosed(f"sqlite connection of {self.name!r} is closed")
        self._executor.submit(fn)

    def interrupt(self) -> None:
        """Abort the statement running on the connection's thread (safe from any thread)."""
        if self._db is not None:
            self._db.interrupt()

    async def close(self) -> None:
        """Close the connection on its thread, then let the thread end."""
        if self._closed:
            return
        try:
            if self._db is not None:
                await self.run(self._db.close)
        finally:
            self._closed = True
            self._db = None
            self._executor.shutdown(wait=False)
