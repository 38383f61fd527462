"""What each ahcore feature costs in the wall clock: real servers, real sockets, wrk.

``bench/inprocess.py --without FEATURE`` counts what a feature costs in
instructions, with no sockets. Instructions are not time: on the bench VM
ahcore's take longer each than plain aiohttp's (docs/performance.md, fifth
round), and at 32 connections the requests of one loop turn share warm
caches in-process far more than through the loopback. This script asks the
question the SPEC's ratios are about, in their own terms: served on a real
port and loaded with ``wrk -t1 -c32`` (server on CPU 0, wrk on CPU 1), how
many requests per second, and how much CPU per request, does ahcore give
with one feature switched off, or all of them, next to plain aiohttp?

    python bench/ablation.py                          # /data.dspy: each feature off, then all
    python bench/ablation.py --path "/sqlexe.dspy?id=7" --repeat 5
    python bench/ablation.py --variant all --variant none --duration 3

Every server gets the same site (``benchsite.build_site``, ``info``
logging) and is started before the first run; the runs go round the
servers ``--repeat`` times, so a slow minute of the VM hits all of them
alike. Each row is the median over the rounds of that server's req/s, of
its ratio to plain's run *in the same round*, and of its CPU time per
request (user + system, from ``/proc/PID/stat`` around the wrk run).

A variant is ``ahcore serve``'s own server (``serve``), the same app built
here and served with every feature (``full``: it must agree with
``serve``), one feature of ``bench/inprocess.py``'s list switched off
(its name), or all of them (``all``). A site served without a feature is
not a correct ahcore site: this is for measuring only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import benchsite  # noqa: E402
from inprocess import FEATURES  # noqa: E402
from run import LOAD_CPU, SERVER_CPU, Servers, ensure_wrk, parse_wrk, pinned, wait_ready  # noqa: E402

#: The variants run by default, in this order.
DEFAULT_VARIANTS = ("plain", "serve", "full", *FEATURES, "all")


@dataclass
class Measured:
    """One server's runs: req/s, ratio to plain in the same round, CPU µs per request."""

    rps: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)


def cpu_ticks(pid: int) -> int:
    """User + system time of process ``pid`` (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))


async def serve_variant(root: Path, port: int, without: list[str]) -> None:
    """Serve ``root`` on ``port`` as ``ahcore serve`` builds it, minus ``without`` (until killed)."""
    from inprocess import switch_off

    from ahcore.app import create_app
    from ahcore.config import load_config
    from ahcore.server.logs import configure_logging
    from ahcore.server.runner import start_site

    config = load_config(root)
    configure_logging(config, False)
    app = create_app(root, config=config)
    if "response-prepare" in without:  # before start-up freezes the signal
        app.on_response_prepare.clear()
    # start_site listens on a port of its own choosing; the measured port is
    # served by the protocol factory switch_off leaves (the slow-client
    # guard, or aiohttp's own server without it).
    running = await start_site(app, "127.0.0.1", 0)
    factory = switch_off(app, running, without)
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", port)
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
        await running.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(servers: Servers, variant: str, root: Path, port: int) -> subprocess.Popen[bytes]:
    if variant == "plain":
        argv = [sys.executable, str(HERE / "plain_server.py"), str(root), str(port)]
    elif variant == "serve":
        argv = [sys.executable, "-m", "ahcore", "serve", "-w", str(root), "-p", str(port)]
    else:
        without = list(FEATURES) if variant == "all" else [] if variant == "full" else [variant]
        argv = [sys.executable, __file__, "--serve", str(port), "--root", str(root),
                *[f"--without={w}" for w in without]]
    proc = servers.start(argv, SERVER_CPU, variant)
    wait_ready(f"http://127.0.0.1:{port}/static.html", proc)
    return proc


def load(wrk: str, url: str, seconds: int, pid: int) -> tuple[float, float]:
    """(req/s, CPU µs per request of ``pid``) of one ``wrk -t1 -c32`` run."""
    before = cpu_ticks(pid)
    out = subprocess.run(
        pinned(LOAD_CPU, [wrk, "-t1", "-c32", f"-d{seconds}s", url]),
        capture_output=True, text=True, check=True,
    ).stdout
    used = cpu_ticks(pid) - before
    run = parse_wrk(out)
    if run.errors:
        raise SystemExit(f"{url}: {run.errors} errors or non-2xx answers:\n{out}")
    requests = run.rps * seconds
    return run.rps, used / os.sysconf("SC_CLK_TCK") * 1e6 / max(requests, 1)


def measure(args: argparse.Namespace, root: Path, logs: Path) -> dict[str, Measured]:
    wrk = ensure_wrk()
    servers = Servers(logs)
    variants = args.variant or list(DEFAULT_VARIANTS)
    if "plain" not in variants:
        variants.insert(0, "plain")
    try:
        procs = {}
        for variant in variants:
            port = free_port()
            procs[variant] = (start(servers, variant, root, port), port)
        found = {variant: Measured() for variant in variants}
        for variant, (_, port) in procs.items():  # warm-up: imports, caches, the JIT-less rest
            load(wrk, f"http://127.0.0.1:{port}{args.path}", 1, procs[variant][0].pid)
        for _ in range(args.repeat):
            rps_plain = None
            for variant, (proc, port) in procs.items():
                rps, cpu = load(wrk, f"http://127.0.0.1:{port}{args.path}", args.duration, proc.pid)
                if variant == "plain":
                    rps_plain = rps
                m = found[variant]
                m.rps.append(rps)
                m.cpu_us.append(cpu)
                assert rps_plain is not None  # plain runs first in every round
                m.ratio.append(rps / rps_plain)
        return found
    finally:
        servers.close()


def report(args: argparse.Namespace, found: dict[str, Measured]) -> None:
    full = found.get("full") or found.get("serve")
    full_cpu = statistics.median(full.cpu_us) if full else None
    print(f"\n{args.path}, wrk -t1 -c32, {args.duration} s × {args.repeat} rounds "
          "(medians; ratio to plain in the same round)\n")
    print("| variant | req/s | ÷ plain | CPU µs/request | µs saved vs full |")
    print("|---|---:|---:|---:|---:|")
    for variant, m in found.items():
        cpu = statistics.median(m.cpu_us)
        saved = "" if full_cpu is None or variant in ("plain", "serve", "full") else (
            f"{full_cpu - cpu:.1f}")
        label = {"plain": "plain aiohttp", "serve": "`ahcore serve`", "full": "ahcore, every feature",
                 "all": "ahcore without all five"}.get(variant, f"without `{variant}`")
        print(f"| {label} | {statistics.median(m.rps):.0f} | {statistics.median(m.ratio):.2f} "
              f"| {cpu:.1f} | {saved} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", default="/data.dspy")
    ap.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds over the servers (default 3)")
    ap.add_argument("--variant", action="append",
                    choices=("plain", "serve", "full", *FEATURES, "all"),
                    help="servers to run (repeatable; default: all of them); plain always runs")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # a variant's server process
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--without", action="append", default=[], choices=FEATURES,
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        try:
            import uvloop
        except ImportError:  # pragma: no cover
            pass
        else:
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.run(serve_variant(args.root, args.serve, args.without))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="ahcore-ablation-"))
    try:
        root = benchsite.build_site(tmp / "site", with_sqlds=True)
        report(args, measure(args, root, tmp))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
