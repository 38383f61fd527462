"""The access log: a line per request, formatted cheaply and written in batches.

aiohttp's own ``AccessLogger`` turns every response into a ``logging``
record (a compiled %-format, a timezone-aware ``datetime``, an ``extra``
dict, a ``LogRecord``, the handler's lock and a ``write`` plus ``flush``):
with ``logger.levelname: "info"``, as real ahserver sites are configured,
that cost up to 60 % of a script endpoint's throughput. Here:

- :class:`BufferedAccessLogger` implements aiohttp's
  :class:`~aiohttp.abc.AbstractAccessLogger`. It formats the Combined Log
  Format plus the duration in seconds with one f-string (the timestamp text
  is made once per second) and appends the line to an :class:`AccessLog`.
- :class:`AccessLog`, one per runner, keeps the lines in a list. The first
  line into an empty list arms a timer (``flush_interval``, 0.5 s); a list
  of ``max_lines`` lines is written at the next turn of the event loop, not
  inside the request that filled it. A batch is one ``write(2)`` on a file
  opened with ``O_APPEND`` (or one ``write`` and ``flush`` on stderr), so
  the workers of one site can share a file without tearing each other's
  lines.
- The batch is written synchronously. Measured on the bench machine, a
  1000-line batch (118 kB) costs about 70 µs to join, encode and write to
  the page cache, the same as one hop to a thread and back (also ~70 µs),
  and much less than a single ``.tmpl`` request. A thread would only pay off
  for a destination that stalls (a full pipe, a hung network file system);
  ``logging`` blocks there as well.
- :meth:`AccessLog.reopen` (``ahcore serve`` calls it on SIGHUP, for
  logrotate) writes what is buffered to the old file and opens the path
  again; :meth:`AccessLog.close` (at the end of the runner's cleanup, after
  the in-flight requests) writes the rest. A line that arrives later is
  written at once, so none is lost at a graceful stop.

Whether lines are made at all is the logger's business: ``enabled`` is
``logger.isEnabledFor(INFO)``, read by aiohttp once per connection, so at
``warning`` aiohttp does not even time the request. Nothing here is
module-level state: the buffer, the open file and the cached timestamp live
on the :class:`AccessLog`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time as _time
from pathlib import Path
from typing import ClassVar, TextIO

from aiohttp import hdrs
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http import HttpVersion10, HttpVersion11
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

# Problems writing the access log are reported here (in the site's log),
# never through the access log itself.
log = logging.getLogger("ahcore.server")

#: Seconds a line may wait in memory before its batch is written.
FLUSH_INTERVAL = 0.5
#: A batch this long is written at the next turn of the loop, not at the timer.
MAX_LINES = 1000
#: ``%t`` of Apache's Common Log Format (local time, with its UTC offset).
STAMP_FORMAT = "[%d/%b/%Y:%H:%M:%S %z]"


def quoted_field(value: str) -> str:
    """``value`` safe between the double quotes of a log field.

    The request target, Referer and User-Agent come from the client: a
    ``"`` or a control character in them could fake a field or a line.
    Like Apache, escape ``"`` and ``\\`` with a backslash and anything
    unprintable as ``\\xNN``/``\\uNNNN``.
    """
    if '"' not in value and "\\" not in value and value.isprintable():
        return value
    out = []
    for ch in value:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


class BufferedAccessLogger(AbstractAccessLogger):
    """aiohttp's access-logger interface, writing to an :class:`AccessLog`.

    aiohttp makes one of these per connection from ``(logger, format)``
    alone, so the log it writes to comes from the class:
    :attr:`AccessLog.logger_class` is a subclass bound to one log. The
    format argument is ignored; the line is always

    ``REMOTE - - [START] "METHOD TARGET HTTP/x.y" STATUS BYTES "REFERER" "USER-AGENT" SECONDS``

    (the Combined Log Format that log analysers read, plus the time taken).
    ``BYTES``, the peer address and ``SECONDS`` are what aiohttp's default
    format shows: ``response.body_length``, ``request.remote`` (the proxy,
    behind one) and the time aiohttp measured on the loop's clock, which
    under uvloop has a resolution of a millisecond.
    """

    # The peer address is the connection's (aiohttp makes one logger per
    # connection), so it is looked up once, not on every request.
    __slots__ = ("_remote",)

    #: The log this class writes to (set on the subclass that ``AccessLog`` makes).
    access_log: ClassVar[AccessLog]

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._remote: str | None = None

    @property
    def enabled(self) -> bool:
        """True when ``logger`` lets INFO through; aiohttp skips the access log otherwise."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        try:
            out = self.access_log
            remote = self._remote
            if remote is None:
                remote = self._remote = request.remote or "-"
            proto = _PROTOCOLS.get(request.version)
            if proto is None:
                version = request.version
                proto = f"HTTP/{version.major}.{version.minor}"
            headers = request.headers
            target = request.raw_path
            referer = headers.get(hdrs.REFERER, "-")
            agent = headers.get(hdrs.USER_AGENT, "-")
            probe = target + referer + agent  # one check for the three client-made fields
            if '"' in probe or "\\" in probe or not probe.isprintable():
                target, referer, agent = quoted_field(target), quoted_field(referer), quoted_field(agent)
            out.append(
                f'{remote} - - {out.stamp(_time.time() - time)} '
                f'"{request.method} {target} {proto}" {response.status} {response.body_length} '
                f'"{referer}" "{agent}" {time:.6f}\n'
            )
        except Exception:  # a log line must never break a response
            log.exception("access log: cannot format a line")


#: The request line's protocol for the versions nearly every request has.
_PROTOCOLS = {HttpVersion11: "HTTP/1.1", HttpVersion10: "HTTP/1.0"}


class AccessLog:
    """One runner's access lines: kept in memory, written to a file or stderr in batches.

    ``path`` is the file (``logger.logfile``), created with its folder if
    needed; without it lines go to ``stream`` (default: ``sys.stderr`` as it
    is when a batch is written). Use it from the event loop's thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        stream: TextIO | None = None,
        flush_interval: float = FLUSH_INTERVAL,
        max_lines: int = MAX_LINES,
    ) -> None:
        self.path = Path(os.path.abspath(path)) if path else None
        self.flush_interval = flush_interval
        self.max_lines = max(1, max_lines)
        #: The ``access_log_class`` for :class:`aiohttp.web.AppRunner`.
        self.logger_class: type[BufferedAccessLogger] = type(
            "BoundAccessLogger", (BufferedAccessLogger,), {"__slots__": (), "access_log": self}
        )
        self._stream = stream
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._fd: int | None = None
        self._closed = False
        self._lost = 0  # lines dropped since writing last failed
        self._second = -1
        self._stamp = ""
        #: Batches written so far (each one ``write``): lines ÷ batches is the batching.
        self.batches = 0

    # ---- per request

    def stamp(self, when: float) -> str:
        """``[day/Mon/year:H:M:S +zone]`` for the epoch time ``when``; one strftime per second."""
        second = int(when)
        if second != self._second:
            self._stamp = _time.strftime(STAMP_FORMAT, _time.localtime(second))
            self._second = second
        return self._stamp

    def append(self, line: str) -> None:
        """Buffer one line (ending in a newline); it is written within ``flush_interval``."""
        lines = self._lines
        lines.append(line)
        n = len(lines)
        if n == 1:
            self._arm()
        elif n == self.max_lines:
            # Not now: the request that filled the buffer is still being answered.
            asyncio.get_running_loop().call_soon(self.flush)

    def _arm(self) -> None:
        if self._closed:  # after close: nobody would run the timer
            self.flush()
            self._close_file()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script using the class directly)
            self.flush()
            return
        self._timer = loop.call_later(self.flush_interval, self.flush)

    # ---- writing

    def flush(self) -> None:
        """Write every buffered line now, as one batch."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines = self._lines
        if not lines:
            return
        self._lines = []
        self._write("".join(lines), len(lines))

    def _write(self, text: str, count: int) -> None:
        try:
            if self.path is None:
                stream = self._stream or sys.stderr
                stream.write(text)
                stream.flush()
            else:
                if self._fd is None:
                    self._fd = self._open()
                data = memoryview(text.encode("utf-8", "backslashreplace"))
                while data:
                    written = os.write(self._fd, data)
                    if not written:
                        raise OSError("write(2) wrote nothing")
                    data = data[written:]
        except (OSError, ValueError) as exc:  # ValueError: a closed stream
            if not self._lost:
                log.error("access log: cannot write to %s: %s", self._where(), exc)
            self._lost += count
            return
        self.batches += 1
        if self._lost:
            log.warning("access log: writing to %s again; %d lines were lost",
                        self._where(), self._lost)
            self._lost = 0

    def _where(self) -> str:
        return str(self.path) if self.path is not None else "stderr"

    def _open(self) -> int:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)

    def _close_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    # ---- lifecycle

    def reopen(self) -> None:
        """Write the buffer to the file as it is, then open ``path`` afresh.

        For logrotate: after it renames the file and sends SIGHUP, the lines
        made before the signal end in the renamed file and later ones in a
        new file at ``path``. If the new file cannot be opened, writing goes
        on to the old one. Nothing to do for stderr or after :meth:`close`.
        """
        self.flush()
        if self.path is None or self._closed:
            return
        try:
            fd = self._open()
        except OSError as exc:
            log.error("access log: cannot reopen %s (still writing to the old file): %s",
                      self.path, exc)
            return
        old, self._fd = self._fd, fd
        if old is not None:
            os.close(old)
        log.info("access log: reopened %s", self.path)

    def close(self) -> None:
        """Write everything buffered and close the file; a later line is written at once."""
        self._closed = True
        self.flush()
        self._close_file()
