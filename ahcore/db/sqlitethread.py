"""One sqlite3 connection and the one thread that runs its slow work.

A sqlite3 connection must not be used by two threads at once. The embedded
driver gives each pooled connection its own one-thread executor: jobs
(open, statements, cursor steps, close) run there, in submission order, and
the event loop waits for none of them. That is aiosqlite's model, written
with public APIs only (``concurrent.futures``): :meth:`run` awaits a job,
:meth:`submit` queues one without waiting (it still runs before any job
submitted after it).

The driver may also run a short read on the event loop's own thread
(:mod:`ahcore.db.sqlite`), but only while :attr:`ConnectionThread.idle`
says no job is queued or running, so the connection is never used by two
threads at once. The connection is opened with ``check_same_thread=False``
for that; the rule above, not sqlite3's check, keeps it single-threaded.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class ConnectionClosed(Exception):
    """A job was given to a connection that is closed (or was never opened)."""


class ConnectionThread:
    """A sqlite3 connection whose jobs run on its own worker thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ahcore-sqlite-{name}")
        self._db: sqlite3.Connection | None = None
        self._closed = False
        # The last job handed to the thread; jobs run in order, so when it is
        # done the thread holds no job and the connection is free.
        self._last: Future[Any] | None = None
        #: Called on the thread before each job (the driver restores settings there).
        self.before_job: Callable[[], None] | None = None

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for a job on the thread, or on the loop while :attr:`idle`."""
        if self._db is None:
            raise ConnectionClosed(f"sqlite connection of {self.name!r} is not open")
        return self._db

    @property
    def idle(self) -> bool:
        """No job is queued or running on the thread (the loop may use :attr:`db`)."""
        last = self._last
        if last is not None:
            # Future.done() takes the future's lock; once done it stays done,
            # so forget it and the next check (most of them) is a plain test.
            if not last.done():
                return False
            self._last = None
        return self._db is not None and not self._closed

    async def open(self, path: str, *, uri: bool = False) -> None:
        """Open the database on the connection's thread (autocommit: the driver sends BEGIN)."""
        self._db = await self.run(
            functools.partial(
                sqlite3.connect, path, isolation_level=None, uri=uri, check_same_thread=False
            )
        )

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        before = self.before_job
        if before is not None and self._db is not None:
            before()
        return fn(*args)

    def _queue(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Future[Any]:
        if self._closed:
            raise ConnectionClosed(f"sqlite connection of {self.name!r} is closed")
        future = self._executor.submit(self._call, fn, args)
        self._last = future
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the connection's thread and return its result."""
        result: T = await asyncio.wrap_future(self._queue(fn, args))
        return result

    def submit(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn()`` without waiting; it runs before any job submitted later."""
        self._queue(fn, ())

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
