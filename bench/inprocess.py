"""One server's work per request without sockets, and what each ahcore feature adds to it.

``bench/run.py`` measures the wall clock through the loopback, where the
kernel's socket work, wrk and the VM's neighbours are in every figure;
``bench/callgrind.py`` counts instructions one request at a time, where
nothing is shared between requests. This script is the third view: the
server's own protocol objects (ahcore behind its slow-client guard, or
``bench/plain_server.py`` on aiohttp's ``AppRunner``) are fed raw requests
over in-memory transports, 32 connections with one request each per round
(as ``wrk -c32`` keeps them busy), on uvloop, in one process. Everything
from aiohttp's parser to the bytes of the answer runs; no system call does.

    python bench/inprocess.py                          # µs per request, ahcore and plain
    python bench/inprocess.py --callgrind              # instructions per request (valgrind)
    python bench/inprocess.py --callgrind --without access-log --without watchdog
    python bench/inprocess.py --path /page.tmpl --conns 1

``--callgrind`` runs each server twice under ``valgrind --tool=callgrind``
(1024 and 5120 requests) and divides the difference of the event loop
thread's instruction counts by the difference in requests (4096 at 32
connections): start-up and warm-up cancel out, and other threads are not
counted. Counts repeat to about ±1 %. Under valgrind SQLite reads outlast
their 1 ms loop-read deadline and move to a thread, so for ``.sqlds`` and
``sqlExe`` use ``bench/callgrind.py``, which scales that budget.

``--without FEATURE`` switches a piece of ahcore off, to see what it
costs; a site served so is not a correct ahcore site, so this is for
measuring only:

- ``access-log``: no access line (as ``logger.levelname: "warning"``);
- ``response-prepare``: no ``on_response_prepare`` handler (no session save
  check, no security headers, aiohttp's own ``Server`` header);
- ``namespace-hooks``: no plugin's ``request_namespace`` values and no
  session lookup for ``user`` (the kernel's ``terminalType`` and
  ``ref_real_path`` are set inline and stay);
- ``watchdog``: no ``.dspy`` time limit;
- ``guard``: no slow-client guard (aiohttp's protocol alone).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import benchsite  # noqa: E402

FEATURES = ("access-log", "response-prepare", "namespace-hooks", "watchdog", "guard")
SMALL, LARGE = 1024, 5120  # requests of the two callgrind runs


class MemoryTransport(asyncio.Transport):
    """A connection whose bytes go nowhere; ``answered`` is set by the answer's last write."""

    def __init__(self) -> None:
        super().__init__()
        self.answered: asyncio.Future[None] | None = None
        self.sent = 0
        self.closing = False
        self.status_lines: list[bytes] = []  # of every answer, to check what was measured

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("127.0.0.1", 40000)
        if name == "sockname":
            return ("127.0.0.1", 8080)
        return default

    def write(self, data: Any) -> None:
        self._head(bytes(data[:16]))
        self.sent += len(data)
        self._answered()

    def writelines(self, chunks: Any) -> None:
        chunks = list(chunks)
        if chunks:
            self._head(bytes(chunks[0][:16]))
        for chunk in chunks:
            self.sent += len(chunk)
        self._answered()

    def _head(self, start: bytes) -> None:
        if start.startswith(b"HTTP/"):
            self.status_lines.append(start.split(b"\r\n", 1)[0])

    def _answered(self) -> None:
        if self.answered is not None and not self.answered.done():
            self.answered.set_result(None)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True


def switch_off(app: Any, running: Any, features: list[str]) -> Any:
    """Take ``features`` out of a started ahcore app; returns the protocol factory to use.

    (``response-prepare`` is taken out before start-up, in :func:`serve`.)
    """
    from ahcore.appkeys import SITE_KEY

    site = app[SITE_KEY]
    factory = running.guard
    for feature in features:
        if feature == "access-log":
            logging.getLogger("ahcore.access").setLevel(logging.WARNING)
        elif feature == "namespace-hooks":
            site.request_namespace_hook = None  # no plugin's names
            site.request_user = lambda context: None  # and no session lookup for ``user``
        elif feature == "watchdog":
            import ahcore_dspy.watchdog as watchdog

            def watch(self: Any, seconds: float, unwatched: set[Any] = set()) -> Any:  # noqa: B006
                return None, unwatched

            watchdog.Watchdog.watch = watch  # type: ignore[method-assign]
            watchdog.Watchdog.release = lambda self, task, bucket: False  # type: ignore[method-assign]
        elif feature == "guard":
            server = running.guard.server
            server.request_handler = running.guard._handler  # noqa: SLF001 - measuring only
            factory = server
    return factory


async def serve(server: str, root: Path, path: str, requests: int, conns: int,
                without: list[str]) -> tuple[float, float, int]:
    """(wall µs, CPU µs, bytes) per request for ``requests`` requests after a warm-up."""
    if server == "plain":
        import plain_server
        from aiohttp import web

        runner = web.AppRunner(plain_server.make_app(root), access_log=None)
        await runner.setup()
        factory: Any = runner.server
        close = runner.cleanup
    else:
        from ahcore.app import create_app
        from ahcore.config import load_config
        from ahcore.server.logs import configure_logging
        from ahcore.server.runner import start_site

        config = load_config(root)
        configure_logging(config, False)
        app = create_app(root, config=config)
        if "response-prepare" in without:  # before start-up freezes the signal
            app.on_response_prepare.clear()
        running = await start_site(app, "127.0.0.1", 0)
        factory = switch_off(app, running, without)
        close = running.close
    loop = asyncio.get_running_loop()
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n".encode()
    connections = []
    for _ in range(conns):
        transport = MemoryTransport()
        protocol = factory()
        protocol.connection_made(transport)
        connections.append((transport, protocol))

    async def one_round() -> None:
        waiting = []
        for transport, protocol in connections:
            transport.answered = loop.create_future()
            waiting.append(transport.answered)
            protocol.data_received(head)
        await asyncio.gather(*waiting)

    warmup = max(1, 2000 // conns)
    for _ in range(warmup):
        await one_round()
    rounds = max(1, requests // conns)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        await one_round()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sent = connections[0][0].sent // (warmup + rounds)
    statuses = {line for transport, _ in connections for line in transport.status_lines}
    answers = sum(len(transport.status_lines) for transport, _ in connections)
    for _, protocol in connections:
        protocol.connection_lost(None)
    await close()
    n = rounds * conns
    # Only answers that are what the benchmark means count: a 404 or a 500
    # would be measured just as fast.
    if answers != (warmup + rounds) * conns or not all(
        line.split()[1:2] == [b"200"] for line in statuses
    ):
        raise SystemExit(f"{server} {path}: expected {(warmup + rounds) * conns} answers 200, "
                         f"got {answers}: {sorted(statuses)}")
    return 1e6 * wall / n, 1e6 * cpu / n, sent


def run_here(args: argparse.Namespace, server: str, root: Path) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    wall, cpu, sent = asyncio.run(
        serve(server, root, args.path, args.requests, args.conns, args.without)
    )
    print(f"{server}: {wall:.2f} µs/request wall, {cpu:.2f} µs CPU, {sent} bytes per answer",
          flush=True)


def main_thread_instructions(out: Path) -> int:
    """Instructions of the first thread (the event loop's) in a ``--separate-threads`` dump."""
    dumps = sorted(out.parent.glob(out.name + ".*-01"))
    if not dumps:
        raise SystemExit(f"no callgrind dump {out}.*-01")
    text = dumps[0].read_text()
    m = re.search(r"^(?:totals|summary):\s+(\d+)", text, re.M)
    if m is None:
        raise SystemExit(f"no totals in {dumps[0]}")
    return int(m.group(1))


def count(args: argparse.Namespace, server: str, root: Path, tmp: Path) -> float:
    counts = []
    for n in (SMALL, LARGE):
        out = tmp / f"{server}-{n}"
        argv = [
            "valgrind", "--tool=callgrind", "--separate-threads=yes",
            f"--callgrind-out-file={out}.%p", sys.executable, __file__, "--server", server,
            "--root", str(root), "--path", args.path, "--requests", str(n),
            "--conns", str(args.conns), *[f"--without={w}" for w in args.without],
        ]
        # A fixed hash seed: the same dict layouts in both runs.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        counts.append(main_thread_instructions(out))
    per_request = (counts[1] - counts[0]) / ((LARGE // args.conns - SMALL // args.conns) * args.conns)
    print(f"{server}{' without ' + ', '.join(args.without) if args.without and server != 'plain' else ''}: "
          f"{per_request / 1000:.1f} k instructions per request", flush=True)
    return per_request


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", choices=("ahcore", "plain"), action="append",
                    help="default: both")
    ap.add_argument("--path", default="/data.dspy")
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--without", action="append", default=[], choices=FEATURES)
    ap.add_argument("--callgrind", action="store_true", help="count instructions (valgrind)")
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)  # the site, when re-run
    args = ap.parse_args()
    servers = args.server or ["ahcore", "plain"]
    tmp = Path(tempfile.mkdtemp(prefix="ahcore-inprocess-"))
    try:
        root = args.root or benchsite.build_site(tmp / "site", with_sqlds=True)
        if not args.callgrind:
            for server in servers:
                run_here(args, server, root)
            return 0
        if shutil.which("valgrind") is None:
            raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")
        found = {server: count(args, server, root, tmp) for server in servers}
        if "ahcore" in found and "plain" in found:
            print(f"ahcore ÷ plain: {found['ahcore'] / found['plain']:.3f}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
