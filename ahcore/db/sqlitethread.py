"""One sqlite3 connection and the one thread that runs its slow work.

A sqlite3 connection must not be used by two threads at once. The embedded
driver gives each pooled connection its own thread: jobs (open, statements,
cursor steps, close) run there, in submission order, and the event loop
waits for none of them. That is aiosqlite's model, written with public APIs
only: :meth:`run` awaits a job, :meth:`submit` queues one without waiting
(it still runs before any job submitted after it).

The thread takes its jobs from a :class:`queue.SimpleQueue` (C code, no
Python lock) and hands each result back with
:meth:`~asyncio.AbstractEventLoop.call_soon_threadsafe`. It was a
one-worker :class:`~concurrent.futures.ThreadPoolExecutor`, whose
``submit`` and worker loop go through a ``threading.Semaphore`` (a Python
``Condition``) on both threads for every job: with the connection's thread
and the loop's sharing a CPU, that made every statement on the thread cost
about 150 µs of CPU more than aiosqlite's (docs/performance.md, seventh
round). As with the executor, a job whose caller was cancelled before it
started does not run.

The driver may also run a short read on the event loop's own thread
(:mod:`ahcore.db.sqlite`), but only while :attr:`ConnectionThread.idle`
says no job is queued or running, so the connection is never used by two
threads at once. The connection is opened with ``check_same_thread=False``
for that; the rule above, not sqlite3's check, keeps it single-threaded.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("ahcore.db.sqlite")


class ConnectionClosed(Exception):
    """A job was given to a connection that is closed (or was never opened)."""


class _Job:
    """One job for the thread; ``done`` is set there once it ran (or was skipped)."""

    __slots__ = ("fn", "args", "future", "done")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], future: asyncio.Future[Any] | None
    ) -> None:
        self.fn = fn
        self.args = args
        self.future = future
        self.done = False


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    # On the loop's thread: the caller may have been cancelled meanwhile.
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class ConnectionThread:
    """A sqlite3 connection whose jobs run on its own thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._closed = False
        # The last job handed to the thread; jobs run in order, so when it is
        # done the thread holds no job and the connection is free.
        self._last: _Job | None = None
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
            # ``done`` is set on the thread after the job's last use of the
            # connection; once set it stays, so forget the job.
            if not last.done:
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

    # ---- the thread

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            future = job.future
            # A caller cancelled before its job started: skip it (as
            # concurrent.futures does), so a cancelled BEGIN never runs
            # after the connection went back to the pool.
            if future is not None and future.cancelled():
                job.done = True
                continue
            result: Any = None
            error: BaseException | None = None
            try:
                before = self.before_job
                if before is not None and self._db is not None:
                    before()
                result = job.fn(*job.args)
            except BaseException as exc:  # handed to the caller, not raised here
                error = exc
            job.done = True
            if future is None:
                if error is not None:
                    log.warning("sqlite %r: a queued job failed: %s", self.name, error)
                continue
            try:
                # The loop of the caller that awaits it, whichever that is.
                future.get_loop().call_soon_threadsafe(_deliver, future, result, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass
            del job, future, result, error

    def _queue(self, fn: Callable[..., Any], args: tuple[Any, ...],
               future: asyncio.Future[Any] | None) -> None:
        if self._closed:
            raise ConnectionClosed(f"sqlite connection of {self.name!r} is closed")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name=f"ahcore-sqlite-{self.name}", daemon=True,
            )
            self._thread.start()
        job = _Job(fn, args, future)
        self._last = job
        self._jobs.put(job)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the connection's thread and return its result."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue(fn, args, future)
        return await future

    def submit(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn()`` without waiting; it runs before any job submitted later."""
        self._queue(fn, (), None)

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
            if self._thread is not None:
                self._jobs.put(None)  # after every job queued: the thread ends there
