"""Time limits for many short scripts at the price of a set insertion.

``asyncio.timeout`` makes a timer, a context object and several Python-level
calls per use. A ``.dspy`` request runs for milliseconds against a limit of
seconds, so nearly every timer is made only to be cancelled. The watchdog
instead files each running script's task in a *bucket* of deadlines
``GRAIN`` seconds wide; one timer per bucket fires when the bucket's time has
come and cancels the tasks still in it. A script that finishes takes its
task out of its bucket. A limit is therefore enforced up to ``GRAIN`` late,
never early.

One watchdog per application (the plugin keeps it under an app key), never
one per module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


def _uncancel(task: asyncio.Task[Any]) -> int:
    """``task.uncancel()``; Python 3.10 does not count cancellations (0 then)."""
    uncancel = getattr(task, "uncancel", None)
    return uncancel() if uncancel is not None else 0


class TimeLimitExceeded(Exception):
    """The script ran past its time limit (as opposed to its own TimeoutError)."""


class Watchdog:
    """Cancels tasks that outlive their deadline, ``GRAIN`` seconds at a time."""

    GRAIN = 0.1

    def __init__(self) -> None:
        self._buckets: dict[int, set[asyncio.Task[Any]]] = {}
        self._fired: set[asyncio.Task[Any]] = set()
        # The loop of the last task watched. asyncio.current_task(loop) makes
        # no get_running_loop call, which on Python 3.11 is a getpid(2)
        # system call per script; another loop's task is found the slow way.
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, seconds: float) -> tuple[asyncio.Task[Any], set[asyncio.Task[Any]]]:
        """File the current task under its deadline; give both to :meth:`release` after.

        :meth:`run` without its coroutine layer, for a caller that awaits the
        work itself (the ``.dspy`` processor, on every request).
        """
        loop = self._loop
        task = asyncio.current_task(loop) if loop is not None else None
        if task is None or loop is None:  # the first use, or a task of another loop
            task = asyncio.current_task()
            assert task is not None, "Watchdog.watch needs a running task"
            loop = self._loop = task.get_loop()
        slot = int((loop.time() + seconds) / self.GRAIN) + 1
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = set()
            loop.call_at(slot * self.GRAIN, self._expire, slot)
        bucket.add(task)
        return task, bucket

    def release(self, task: asyncio.Task[Any], bucket: set[asyncio.Task[Any]]) -> bool:
        """Take ``task`` out of the watch, withdrawing the watchdog's cancellation if it made one.

        True when the time limit cancelled the task and nobody else did
        (``uncancel`` leaves no cancellation pending): the caller's
        ``CancelledError`` is then the watchdog's, not its own.
        """
        bucket.discard(task)
        fired = self._fired
        if task in fired:  # the watchdog had cancelled it
            fired.discard(task)
            return _uncancel(task) == 0
        return False

    async def run(self, work: Awaitable[T], seconds: float) -> T:
        """Await ``work`` in the current task; TimeLimitExceeded after ``seconds``.

        A TimeoutError or cancellation that is not the watchdog's own passes
        through unchanged, as with ``asyncio.timeout``.
        """
        task, bucket = self.watch(seconds)
        try:
            result = await work
        except asyncio.CancelledError:
            if self.release(task, bucket):
                raise TimeLimitExceeded from None
            raise
        except BaseException:
            self.release(task, bucket)
            raise
        self.release(task, bucket)  # the work swallowed our cancellation
        return result

    def _expire(self, slot: int) -> None:
        for task in self._buckets.pop(slot, ()):
            if not task.done():
                self._fired.add(task)
                task.cancel()
