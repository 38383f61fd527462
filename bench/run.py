"""ahcore against plain aiohttp doing the same work (SPEC §12).

    python bench/run.py                 # 5 s per run, 2 runs per server and endpoint
    python bench/run.py --quick         # short smoke run (1 s, 1 run)
    python bench/run.py --duration 10 --repeat 3 --workers-check

Builds the benchmark site in a temporary folder, starts ``python -m ahcore
serve`` (one worker) and ``bench/plain_server.py`` as subprocesses pinned to
core 0, and loads each endpoint with wrk (``-t1 -c32 --latency``) pinned to
core 1, alternating the two servers. Prints req/s, p50, p99, the ratio
against its target and the worker's resident memory; exits 1 when a target
is missed. Everything listens on 127.0.0.1 and every process started here is
stopped before exit.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchsite import build_site  # noqa: E402

SERVER_CPU = "0"
LOAD_CPU = "1"
P99_FACTOR = 1.2  # p99 of ahcore ≤ 1.2 × plain's, where the throughput target is parity-like
RSS_LIMIT_MB = 60.0


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    target: float  # minimum ahcore/plain req/s ratio
    check_p99: bool  # p99 ≤ 1.2× plain applies (not to cached-vs-recomputed pages)
    needs_sqlds: bool = False


ENDPOINTS = [
    Endpoint("static", "/static.html", 0.9, True),
    Endpoint(".dspy JSON", "/data.dspy", 0.85, True),
    Endpoint(".tmpl", "/page.tmpl", 0.9, True),
    Endpoint(".md", "/page.md", 2.0, False),
    Endpoint(".sqlds 20 rows", "/items.sqlds", 0.9, True, needs_sqlds=True),
    Endpoint(".xlsxds", "/book.xlsxds", 20.0, False),
]


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found; installing it with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        rc = subprocess.call(["apt-get", "install", "-y", "wrk"], env=env)
        if rc != 0:
            subprocess.call(["apt-get", "update"], env=env)
            subprocess.call(["apt-get", "install", "-y", "wrk"], env=env)
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit("bench: wrk is needed (apt-get install wrk, as root); not found")


def pinned(cpu: str, argv: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", cpu, *argv]
    return argv


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}"
                               " (its log is in the site's parent folder; use --keep-site)")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} within {timeout:.0f} s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_wrk(out: str) -> Run:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = 0
    for m in re.finditer(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    if not rps:
        raise RuntimeError("could not parse wrk output:\n" + out)
    return Run(
        float(rps.group(1)),
        _ms(p50.group(1)) if p50 else float("nan"),
        _ms(p99.group(1)) if p99 else float("nan"),
        errors,
    )


def load(wrk: str, url: str, duration: float, connections: int) -> Run:
    argv = pinned(LOAD_CPU, [wrk, "-t1", f"-c{connections}", f"-d{duration:g}s",
                             "--timeout", "10s", "--latency", url])
    out = subprocess.run(argv, capture_output=True, text=True,
                         timeout=duration + 30, check=True).stdout
    return parse_wrk(out)


def best(runs: list[Run]) -> Run:
    """The run with the median req/s (the better of two when there are two)."""
    ordered = sorted(runs, key=lambda r: r.rps, reverse=True)
    return ordered[(len(ordered) - 1) // 2]


class Servers:
    """The subprocesses started here; all stopped in ``close``."""

    def __init__(self, logdir: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logdir = logdir

    def start(self, argv: list[str], cpu: str | None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            pinned(cpu, argv) if cpu else argv,
            stdout=subprocess.DEVNULL,
            stderr=open(self.logdir / f"server-{len(self.procs)}.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            self.stop(proc)
        self.procs.clear()


def start_ahcore(servers: Servers, site: Path, port: int, workers: int = 1,
                 cpu: str | None = SERVER_CPU) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "ahcore", "serve", "-w", str(site), "-p", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc = servers.start(argv, cpu)
    wait_ready(f"http://127.0.0.1:{port}/static.html", proc)
    return proc


def fmt_ms(v: float) -> str:
    return f"{v:.2f}" if v == v else "-"


def workers_check(servers: Servers, wrk: str, site: Path, args: argparse.Namespace) -> float:
    """req/s of static with 2 workers over 1 worker (servers unpinned, wrk too)."""
    results = {}
    for workers in (1, 2):
        port = free_port()
        proc = start_ahcore(servers, site, port, workers, cpu=None)
        try:
            url = f"http://127.0.0.1:{port}/static.html"
            load(wrk, url, 1, args.connections)  # warm-up
            runs = [load(wrk, url, args.duration, args.connections) for _ in range(args.repeat)]
            results[workers] = best(runs).rps
        finally:
            servers.stop(proc)
    print(f"\nworkers: 1 → {results[1]:.0f} req/s, 2 → {results[2]:.0f} req/s "
          f"(ratio {results[2] / results[1]:.2f}, target ≥ 1.70; wrk shares the 2 cores)")
    return results[2] / results[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per server and endpoint (default 2)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 s, 1 run each")
    ap.add_argument("--only", action="append", help="endpoint name(s) to run (e.g. .md)")
    ap.add_argument("--workers-check", action="store_true", help="also 2 workers vs 1 on static")
    ap.add_argument("--keep-site", action="store_true", help="print and keep the site folder")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.repeat = 1.0, 1

    wrk = ensure_wrk()
    with_sqlds = importlib.util.find_spec("ahcore_sqlds") is not None
    endpoints = [e for e in ENDPOINTS if with_sqlds or not e.needs_sqlds]
    if args.only:
        endpoints = [e for e in endpoints if e.name in args.only or e.path in args.only]

    tmp = Path(tempfile.mkdtemp(prefix="ahcore-bench-"))
    servers = Servers(tmp)
    rows = []
    failed = []
    try:
        site = build_site(tmp / "site", with_sqlds)
        ah_port, pl_port = free_port(), free_port()
        ahcore = start_ahcore(servers, site, ah_port)
        plain = servers.start([sys.executable, str(HERE / "plain_server.py"), str(site), str(pl_port)],
                              SERVER_CPU)
        wait_ready(f"http://127.0.0.1:{pl_port}/static.html", plain)
        time.sleep(1.0)
        idle_rss = rss_mb(ahcore.pid)
        plain_idle_rss = rss_mb(plain.pid)
        print(f"wrk -t1 -c{args.connections} -d{args.duration:g}s --latency, {args.repeat} run(s) "
              f"per server and endpoint, servers on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}; "
              f"sqlds {'included' if with_sqlds else 'skipped (ahcore_sqlds not importable)'}",
              flush=True)
        bases = {"ahcore": f"http://127.0.0.1:{ah_port}", "plain": f"http://127.0.0.1:{pl_port}"}
        for ep in endpoints:
            runs: dict[str, list[Run]] = {"ahcore": [], "plain": []}
            for base in bases.values():  # warm-up: compile, fill caches, open pools
                load(wrk, base + ep.path, min(1.0, args.duration), args.connections)
            for i in range(args.repeat):
                order = ["ahcore", "plain"] if i % 2 == 0 else ["plain", "ahcore"]
                for who in order:
                    runs[who].append(load(wrk, bases[who] + ep.path, args.duration, args.connections))
            a, p = best(runs["ahcore"]), best(runs["plain"])
            ratio = a.rps / p.rps if p.rps else float("inf")
            ok = ratio >= ep.target
            p99_ok = (not ep.check_p99) or a.p99_ms <= P99_FACTOR * p.p99_ms
            errs = sum(r.errors for rs in runs.values() for r in rs)
            verdict = "PASS" if ok and p99_ok and not errs else "MISS"
            notes = []
            if not ok:
                notes.append("ratio")
            if not p99_ok:
                notes.append("p99")
            if errs:
                notes.append(f"{errs} errors")
            if verdict == "MISS":
                failed.append(ep.name)
            spread = {w: [round(r.rps) for r in rs] for w, rs in runs.items()}
            rows.append((ep, a, p, ratio, verdict, notes, spread))
            print(f"  {ep.name:<15} ahcore {a.rps:9.0f}  plain {p.rps:9.0f}  ratio {ratio:6.2f}  "
                  f"{verdict} {' '.join(notes)}  runs {spread}", flush=True)
        loaded_rss = rss_mb(ahcore.pid)
        plain_loaded_rss = rss_mb(plain.pid)

        print()
        head = (f"| {'endpoint':<15} | {'ahcore req/s':>12} | {'plain req/s':>11} | {'ratio':>6} | "
                f"{'ahcore p50/p99 ms':>17} | {'plain p50/p99 ms':>16} | {'target':>16} | result |")
        print(head)
        print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
        for ep, a, p, ratio, verdict, notes, _ in rows:
            target = f"≥{ep.target:g}×" + (", p99≤1.2×" if ep.check_p99 else "")
            print(f"| {ep.name:<15} | {a.rps:12.0f} | {p.rps:11.0f} | {ratio:6.2f} | "
                  f"{fmt_ms(a.p50_ms) + ' / ' + fmt_ms(a.p99_ms):>17} | "
                  f"{fmt_ms(p.p50_ms) + ' / ' + fmt_ms(p.p99_ms):>16} | {target:>16} | "
                  f"{verdict + (' (' + ', '.join(notes) + ')' if notes else ''):<6} |")
        rss_ok = idle_rss <= RSS_LIMIT_MB
        print(f"\nahcore worker RSS: idle {idle_rss:.1f} MB (target ≤ {RSS_LIMIT_MB:g} MB: "
              f"{'PASS' if rss_ok else 'MISS'}), after load {loaded_rss:.1f} MB; "
              f"plain server: idle {plain_idle_rss:.1f} MB, after load {plain_loaded_rss:.1f} MB")
        if not rss_ok:
            failed.append("idle RSS")
        servers.close()
        if args.workers_check:
            if workers_check(servers, wrk, site, args) < 1.7:
                failed.append("2 workers")
    finally:
        servers.close()
        if args.keep_site:
            print(f"site kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        print(f"\nMISSED: {', '.join(failed)}")
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
