"""What scaling over workers depends on, measured where throughput cannot show it.

    python bench/scaling.py                 # ≈ 8 min: CPU per request (1, 2 workers), spread
    python bench/scaling.py --quick         # ≈ 2-3 min smoke run
    python bench/scaling.py --no-spread     # CPU per request only
    python bench/scaling.py --spread-workers 2,4,16 --spread-runs 5

On a 2-CPU machine two workers against one cannot be judged by req/s (wrk
needs a CPU too). So this script measures the inputs of the throughput
model instead (docs/performance.md, "Scaling"):

1. **CPU time per request**, with ``--workers 1`` and ``--workers 2``, on the
   bench site at ``logger.levelname: "info"`` (an access line per request, as
   real sites run): for each endpoint (static, ``.dspy`` JSON, ``.sqlds``,
   and a ``.dspy`` script that inserts one SQLite row) each server process's
   user+system time is read from ``/proc/PID/stat`` before and after a wrk
   run, and divided by the number of requests wrk counted. The supervisor,
   multiprocessing's resource tracker and wrk itself (``wait4`` rusage) are
   reported apart. The ``.dspy`` JSON endpoint is also run on the same site
   at ``warning`` (no access log): the difference is the log's cost.
2. **How SO_REUSEPORT spreads connections**: with W workers (default 2 and
   16: the spread does not need a CPU per worker) and N wrk connections
   (16, 64, 256), the established sockets of the port are read from
   ``/proc/net/tcp`` mid-run and matched to each worker through the socket
   inodes in ``/proc/PID/fd``; requests per worker come from the bytes each
   worker read (``rchar`` in ``/proc/PID/io``: every request wrk sends is the
   same bytes), scaled so they add up to wrk's count. Nothing is added to
   the server, so production pays nothing for it. Each count is compared
   with what uniform random hashing gives (the kernel picks the listener
   from a hash of the connection's addresses and ports).
3. **A shared cost**: the time one SQLite write transaction holds the
   database's write lock (``BEGIN IMMEDIATE``, one insert, ``COMMIT``, in WAL
   mode with ``synchronous = NORMAL``, as ahcore's driver opens SQLite), which
   bounds the writes per second of all workers together.

Nothing is pinned. CPU time per request hardly depends on other load, but
the figures come from a shared machine. Prints tables and writes
``bench/results/scaling.json``. Everything listens on 127.0.0.1 and every
process started here is stopped before exit. Exit status 0 unless something
could not be measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import benchsite  # noqa: E402
from run import Servers, ensure_wrk, free_port, http_get, machine, wait_ready  # noqa: E402

RESULTS = HERE / "results" / "scaling.json"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

WRITE_DSPY = (
    "async with get_sor_context(request._run_ns, 'db1') as sor:\n"
    "    await sor.sqlExe('insert into hits (n) values (${n}$)', {'n': 1})\n"
    "return {'ok': True}\n"
)

#: (name, path) of the endpoints whose CPU per request is measured.
ENDPOINTS = [
    ("static", "/static.html"),
    (".dspy JSON", "/data.dspy"),
    (".sqlds 20 rows", "/items.sqlds"),
    (".dspy SQLite insert", "/write.dspy"),
]
LOG_COST_ENDPOINT = ".dspy JSON"


# ------------------------------------------------------------------ /proc readers


@dataclass(frozen=True)
class CpuTimes:
    """A process's CPU seconds from ``/proc/PID/stat``: its own, and its waited-for children's."""

    user: float = 0.0
    system: float = 0.0
    children_user: float = 0.0
    children_system: float = 0.0

    @property
    def own(self) -> float:
        return self.user + self.system

    @property
    def total(self) -> float:
        """Own time plus that of children it has waited for."""
        return self.own + self.children_user + self.children_system

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.user - other.user, self.system - other.system,
                        self.children_user - other.children_user,
                        self.children_system - other.children_system)


def parse_stat(text: str, clk_tck: int = CLK_TCK) -> CpuTimes:
    """Fields 14-17 (utime, stime, cutime, cstime) of a ``/proc/PID/stat`` line, in seconds.

    The second field is the command name in parentheses and may itself
    contain spaces and parentheses, so the fields are counted after the
    last ``)``.
    """
    rest = text[text.rindex(")") + 2:].split()
    # rest[0] is field 3 (state): utime is field 14, i.e. rest[11].
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return CpuTimes(utime / clk_tck, stime / clk_tck, cutime / clk_tck, cstime / clk_tck)


def cpu_times(pid: int) -> CpuTimes:
    """CPU seconds of ``pid`` (all its threads) so far; zeros if it is gone."""
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError):
        return CpuTimes()


def sched_seconds(pid: int) -> float:
    """CPU seconds of ``pid``'s live threads from ``/proc/PID/task/*/schedstat`` (ns resolution).

    Finer than ``/proc/PID/stat`` (clock ticks, 10 ms), which matters for a
    process as quiet as the supervisor; threads that have exited are not
    counted, so it is used for single-threaded processes and idle readings.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def io_counters(pid: int) -> dict[str, int]:
    """``/proc/PID/io`` as a dict (``rchar``, ``wchar``, ``syscr``, ...); empty if unreadable."""
    try:
        lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if value.strip().isdigit():
            out[key.strip()] = int(value)
    return out


def parse_net_tcp(text: str, port: int) -> set[int]:
    """Socket inodes of the ESTABLISHED connections whose local port is ``port``.

    ``text`` is ``/proc/net/tcp`` or ``/proc/net/tcp6``: after a header, one
    line per socket, ``local_address`` as ``HEXADDR:HEXPORT``, the state in
    hex (``01`` = ESTABLISHED) and the inode in the tenth column.
    """
    inodes = set()
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10:
            continue
        local, state, inode = cols[1], cols[3], cols[9]
        if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
            inodes.add(int(inode))
    return inodes


def established(port: int) -> set[int]:
    """Inodes of the server-side sockets of established connections to ``port``."""
    inodes: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            inodes |= parse_net_tcp(Path(f"/proc/net/{name}").read_text(), port)
        except OSError:
            continue
    return inodes


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets ``pid`` holds open (``/proc/PID/fd/*`` -> ``socket:[INODE]``)."""
    out: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def connections_by_pid(pids: list[int], port: int) -> dict[int, int]:
    """How many established connections to ``port`` each process in ``pids`` serves."""
    live = established(port)
    return {pid: len(socket_inodes(pid) & live) for pid in pids}


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (``/proc/PID/task/*/children``)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(kids))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ------------------------------------------------------------------ statistics


@dataclass(frozen=True)
class Spread:
    """How evenly a total is shared: per-worker counts and their summary."""

    counts: tuple[int, ...]
    minimum: int
    maximum: int
    mean: float
    stdev: float  # population standard deviation over the workers
    max_over_mean: float  # the busiest worker's load relative to an even share


def spread(counts: list[int]) -> Spread:
    """Summarise per-worker ``counts`` (at least one)."""
    if not counts:
        raise ValueError("spread of no workers")
    mean = sum(counts) / len(counts)
    return Spread(tuple(counts), min(counts), max(counts), mean, statistics.pstdev(counts),
                  max(counts) / mean if mean else float("nan"))


def random_hashing(n: int, workers: int, trials: int = 4000, seed: int = 17) -> tuple[float, float]:
    """Mean per-worker stdev and mean max/mean when ``n`` connections pick a worker uniformly.

    The model of SO_REUSEPORT for TCP: the listener is chosen from a hash of
    the connection's 4-tuple, so each connection lands on any of the
    ``workers`` sockets with the same probability, independently.
    """
    rng = random.Random(seed)
    sd = worst = 0.0
    for _ in range(trials):
        counts = [0] * workers
        for _ in range(n):
            counts[rng.randrange(workers)] += 1
        s = spread(counts)
        sd += s.stdev
        worst += s.max_over_mean
    return sd / trials, worst / trials


def idle_workers(n: int, workers: int) -> float:
    """Expected number of workers that get none of ``n`` uniformly hashed connections."""
    return workers * (1 - 1 / workers) ** n


def share_counts(weights: list[float], total: int) -> list[int]:
    """``total`` split in proportion to ``weights``, rounded so the parts add up to it."""
    wsum = sum(weights)
    if wsum <= 0:
        return [0] * len(weights)
    raw = [w * total / wsum for w in weights]
    parts = [math.floor(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)[: total - sum(parts)]:
        parts[i] += 1
    return parts


# ------------------------------------------------------------------ processes and wrk


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: int
    cpu: float  # wrk's own user+system seconds


def parse_wrk_count(out: str) -> tuple[int, float, int]:
    """(requests, seconds, errors) from wrk's summary."""
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if not m:
        raise RuntimeError("could not parse wrk output:\n" + out)
    secs = float(m.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(3)]
    errors = 0
    for e in re.finditer(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in e.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    return int(m.group(1)), secs, errors


def wrk_start(wrk: str, url: str, connections: int, seconds: int,
              headers: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    for h in headers:
        argv += ["-H", h]
    return subprocess.Popen([*argv, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def wrk_finish(proc: subprocess.Popen[str]) -> WrkResult:
    """Read wrk's output and reap it with ``wait4``, for its own CPU time."""
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}:\n{out}")
    requests, secs, errors = parse_wrk_count(out)
    return WrkResult(requests, secs, errors, usage.ru_utime + usage.ru_stime)


@dataclass
class Server:
    """``ahcore serve`` with its processes by role."""

    proc: subprocess.Popen[bytes]
    port: int
    workers: list[int]
    supervisor: int | None
    others: dict[str, int] = field(default_factory=dict)  # e.g. the resource tracker

    def roles(self) -> dict[str, int]:
        out = {f"worker {i + 1}": pid for i, pid in enumerate(self.workers)}
        if self.supervisor is not None:
            out["supervisor"] = self.supervisor
        return out | self.others


def start_server(servers: Servers, site: Path, workers: int, name: str) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "ahcore", "serve", "-w", str(site), "-p", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc = servers.start(argv, None, name)
    wait_ready(f"http://127.0.0.1:{port}/static.html", proc, timeout=30 + 10 * workers)
    if workers == 1:
        return Server(proc, port, [proc.pid], None)
    deadline = time.monotonic() + 30 + 10 * workers
    while True:
        kids = children(proc.pid)
        tracker = [p for p in kids if "resource_tracker" in cmdline(p)]
        pids = [p for p in kids if p not in tracker]
        # Each worker prints "serving" once it answers; all of them listening
        # means the kernel has W sockets to choose from.
        listening = [p for p in pids if _listens(p, port)]
        if len(listening) >= workers or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    if len(listening) < workers:
        raise RuntimeError(f"only {len(listening)} of {workers} workers listen on {port}")
    return Server(proc, port, sorted(listening), proc.pid,
                  {"resource tracker": tracker[0]} if tracker else {})


def _listens(pid: int, port: int) -> bool:
    """Whether ``pid`` holds a socket listening on ``port`` (state 0A)."""
    mine = socket_inodes(pid)
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if (len(cols) >= 10 and cols[3] == "0A"
                    and int(cols[1].rsplit(":", 1)[1], 16) == port and int(cols[9]) in mine):
                return True
    return False


def snapshot(pids: dict[str, int]) -> dict[str, CpuTimes]:
    return {role: cpu_times(pid) for role, pid in pids.items()}


# ------------------------------------------------------------------ measurements


@dataclass
class CpuRun:
    requests: int
    seconds: float
    errors: int
    cpu_us: dict[str, float]  # role -> CPU µs per request (workers, supervisor, ...)
    worker_share: list[float]  # each worker's share of the workers' CPU
    wrk_us: float
    supervisor_ms_s: float = math.nan  # the supervisor's CPU ms per second of the run
    reference_ms: float = math.nan  # reference_cpu() just before the run

    @property
    def workers_us(self) -> float:
        return sum(v for k, v in self.cpu_us.items() if k.startswith("worker"))


def measure_cpu(wrk: str, server: Server, path: str, connections: int, seconds: int,
                settle: float) -> CpuRun:
    """One wrk run; each process's CPU per request over it (plus the tail's log flush)."""
    roles = server.roles()
    sup0 = sched_seconds(server.supervisor) if server.supervisor else 0.0
    before = snapshot(roles)
    res = wrk_finish(wrk_start(wrk, f"http://127.0.0.1:{server.port}{path}", connections, seconds))
    time.sleep(settle)  # the access log's last batch is written on a 0.5 s timer
    after = snapshot(roles)
    sup1 = sched_seconds(server.supervisor) if server.supervisor else 0.0
    n = max(res.requests, 1)
    per = {role: (after[role] - before[role]).total * 1e6 / n for role in roles}
    wcpu = [(after[r] - before[r]).total for r in roles if r.startswith("worker")]
    total = sum(wcpu) or 1.0
    sup = math.nan
    if server.supervisor:
        sup = (sup1 - sup0) * 1e3 / (res.seconds + settle)
    return CpuRun(res.requests, res.seconds, res.errors, per, [c / total for c in wcpu],
                  res.cpu * 1e6 / n, sup)


def reference_cpu(loops: int = 3_000_000) -> float:
    """CPU ms of a fixed pure-Python loop in this process: how fast the machine is right now.

    On a shared VM the same work takes more CPU time while other processes
    share the caches and cores; this number, taken before each run, shows
    by how much (its lowest value in a run is the least disturbed).
    """
    t0 = time.process_time()
    total = 0
    for i in range(loops):
        total += i
    return (time.process_time() - t0) * 1e3


def idle_cpu(server: Server, seconds: float) -> dict[str, float]:
    """CPU milliseconds per second of each process while nothing is asked of it."""
    roles = server.roles()
    before = {role: sched_seconds(pid) for role, pid in roles.items()}
    time.sleep(seconds)
    return {role: (sched_seconds(pid) - before[role]) * 1e3 / seconds for role, pid in roles.items()}


@dataclass
class SpreadRun:
    workers: int
    connections: int
    conn: Spread
    req: Spread
    requests: int
    keepalive: bool
    read_per_request: float  # bytes the workers read per request (constant if the count is honest)


def measure_spread(wrk: str, server: Server, path: str, connections: int, seconds: int,
                   keepalive: bool = True) -> SpreadRun:
    """Connections per worker mid-run (/proc), requests per worker from bytes read."""
    before = {pid: io_counters(pid).get("rchar", 0) for pid in server.workers}
    headers = () if keepalive else ("Connection: close",)
    proc = wrk_start(wrk, f"http://127.0.0.1:{server.port}{path}", connections, seconds, headers)
    try:
        time.sleep(seconds / 2)
        conns = connections_by_pid(server.workers, server.port)
    finally:
        res = wrk_finish(proc)
    time.sleep(0.3)
    after = {pid: io_counters(pid).get("rchar", 0) for pid in server.workers}
    reads = [float(after[p] - before[p]) for p in server.workers]
    return SpreadRun(len(server.workers), connections, spread([conns[p] for p in server.workers]),
                     spread(share_counts(reads, res.requests)), res.requests, keepalive,
                     sum(reads) / max(res.requests, 1))


def sqlite_write_lock(path: Path, writes: int = 2000) -> dict[str, float]:
    """µs one write transaction holds SQLite's write lock (WAL, synchronous NORMAL)."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        times = []
        for _ in range(writes):
            t0 = time.perf_counter()
            con.execute("BEGIN IMMEDIATE")
            con.execute("insert into hits (n) values (?)", (1,))
            con.execute("COMMIT")
            times.append(time.perf_counter() - t0)
    finally:
        con.close()
    times.sort()
    return {"median_us": statistics.median(times) * 1e6,
            "p90_us": times[int(len(times) * 0.9)] * 1e6,
            "mean_us": statistics.fmean(times) * 1e6}


def _writer(path: str, seconds: float, out: Any) -> None:
    con = sqlite3.connect(path, isolation_level=None, timeout=5.0)  # busy timeout, as ahcore's
    con.execute("PRAGMA synchronous = NORMAL")
    done = slow = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.execute("insert into hits (n) values (?)", (2,))
        con.execute("COMMIT")
        done += 1
        slow += time.perf_counter() - t0 > 0.001
    con.close()
    out.put((done, slow))


def sqlite_writers(path: Path, procs: int, seconds: float) -> dict[str, float]:
    """Write transactions per second from ``procs`` processes writing flat out to one file.

    Each process is a worker's connection stripped to its write: one row per
    transaction, SQLite's busy timeout deciding what a writer that finds the
    lock taken does (it sleeps and retries). ``slow`` counts writes over 1 ms.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    ps = [ctx.Process(target=_writer, args=(str(path), seconds, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    got = [out.get(timeout=seconds + 30) for _ in ps]
    for p in ps:
        p.join()
    done = sum(d for d, _ in got)
    slow = sum(s for _, s in got)
    return {"writes_per_s": done / seconds, "slow_over_1ms": slow / max(done, 1)}


# ------------------------------------------------------------------ site


def build(root: Path) -> tuple[Path, Path]:
    """The bench site (info logging) plus a write endpoint, and the same at ``warning``."""
    site = benchsite.build_site(root / "site", with_sqlds=True)
    (site / "wwwroot" / "write.dspy").write_text(WRITE_DSPY, encoding="utf-8")
    con = sqlite3.connect(site / "bench.db")
    con.execute("create table hits (id integer primary key, n integer)")
    con.commit()
    con.close()
    quiet = benchsite.build_quiet_site(root / "site-warning", site, with_sqlds=True)
    return site, quiet


# ------------------------------------------------------------------ report


def fmt(v: float, digits: int = 0) -> str:
    return "-" if v != v else f"{v:.{digits}f}"


def table(heads: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join((c.ljust(w) if i == 0 else c.rjust(w))
                                for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    ap.add_argument("--repeat", type=int, default=3, help="CPU runs per server and endpoint (default 3)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections for the CPU runs")
    ap.add_argument("--spread-workers", default="2,16",
                    help="worker counts for the connection spread (default 2,16)")
    ap.add_argument("--spread-connections", default="16,64,256")
    ap.add_argument("--spread-runs", type=int, default=5, help="runs per worker and connection count")
    ap.add_argument("--no-spread", action="store_true", help="CPU per request only")
    ap.add_argument("--no-cpu", action="store_true", help="the spread only")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 s, 1 CPU run each, spread over 2 workers, 2 runs")
    ap.add_argument("--keep-site", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.repeat, args.spread_runs = 2, 1, 2
        args.spread_workers = "2"
    args.spread_workers = [int(w) for w in str(args.spread_workers).split(",") if w.strip()]
    args.spread_connections = [int(c) for c in str(args.spread_connections).split(",") if c.strip()]
    if args.duration < 1 or args.repeat < 1 or args.spread_runs < 1:
        ap.error("--duration, --repeat and --spread-runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one straight script
    args = parse_args(argv)
    started = time.monotonic()
    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="ahcore-scaling-"))
    servers = Servers(tmp)
    results: dict[str, object] = {"when": dt.datetime.now().isoformat(timespec="seconds"),
                                  "argv": sys.argv[1:] if argv is None else argv,
                                  "machine": machine(), "loadavg_start": os.getloadavg()}
    cpu_rows: dict[str, dict[int, list[CpuRun]]] = {}
    idle: dict[int, dict[str, float]] = {}
    spreads: list[SpreadRun] = []
    failed: list[str] = []
    try:
        site, quiet = build(tmp)
        if not args.no_cpu:
            print(f"CPU per request: wrk -t1 -c{args.connections} -d{args.duration}s, "
                  f"{args.repeat} run(s) per server and endpoint, 1 and 2 workers alternated, "
                  f"nothing pinned, load average at start {os.getloadavg()[0]:.1f}", flush=True)
            for label, root in (("info", site), ("warning", quiet)):
                pair = {w: start_server(servers, root, w, f"ahcore-{w}w-{label}") for w in (1, 2)}
                time.sleep(1.0)
                if label == "info":
                    for w, srv in pair.items():
                        idle[w] = idle_cpu(srv, 3.0)
                eps = ENDPOINTS if label == "info" else [e for e in ENDPOINTS
                                                        if e[0] == LOG_COST_ENDPOINT]
                for name, path in eps:
                    key = name if label == "info" else f"{name} (warning)"
                    ok = True
                    for srv in pair.values():
                        status, body = http_get(f"http://127.0.0.1:{srv.port}{path}")
                        if status != 200:
                            failed.append(f"{key}: HTTP {status} {body[:120]!r}")
                            ok = False
                    if not ok:
                        continue
                    for srv in pair.values():  # warm-up: compile, fill caches, open pools
                        wrk_finish(wrk_start(wrk, f"http://127.0.0.1:{srv.port}{path}",
                                             args.connections, 1))
                    for i in range(args.repeat):
                        # 1, 2, 2, 1, ...: both see the machine's load alike.
                        for w in ((1, 2) if i % 2 == 0 else (2, 1)):
                            ref = reference_cpu()
                            run = measure_cpu(wrk, pair[w], path, args.connections,
                                              args.duration, 0.7)
                            run.reference_ms = ref
                            cpu_rows.setdefault(key, {}).setdefault(w, []).append(run)
                            print(f"  {w}w {key:<28} {run.requests:7d} req  workers "
                                  f"{run.workers_us:6.1f} µs/req  shares "
                                  f"{'/'.join(f'{s:.2f}' for s in run.worker_share)}  "
                                  f"supervisor {run.supervisor_ms_s:.2f} ms/s  "
                                  f"wrk {run.wrk_us:.1f} µs/req  reference {ref:.1f} ms"
                                  + (f"  ERRORS {run.errors}" if run.errors else ""), flush=True)
                for srv in pair.values():
                    servers.stop(srv.proc)
            db = tmp / "site" / "bench.db"
            results["sqlite_write_lock"] = sqlite_write_lock(db)
            results["sqlite_writers"] = {str(n): sqlite_writers(db, n, 2.0) for n in (1, 2)}
        if not args.no_spread:
            print(f"\nconnection spread: wrk -t1 -cN -d{args.duration}s on /static.html, "
                  f"{args.spread_runs} runs each", flush=True)
            for workers in args.spread_workers:
                srv = start_server(servers, site, workers, f"ahcore-spread-{workers}w")
                time.sleep(1.0)
                for n in args.spread_connections:
                    for _ in range(args.spread_runs):
                        sr = measure_spread(wrk, srv, "/static.html", n, args.duration)
                        spreads.append(sr)
                        print(f"  {workers:2d} workers {n:4d} conns: connections {list(sr.conn.counts)}"
                              f"  requests {list(sr.req.counts)}  ({sr.read_per_request:.0f} B read per request)", flush=True)
                # New connection per request: the hash is drawn per request.
                sr = measure_spread(wrk, srv, "/static.html", 64, args.duration, keepalive=False)
                spreads.append(sr)
                print(f"  {workers:2d} workers, Connection: close, 64 clients: requests "
                      f"{list(sr.req.counts)}  ({sr.read_per_request:.0f} B read per request)", flush=True)
                servers.stop(srv.proc)
    finally:
        servers.close()
        if args.keep_site:
            print(f"site kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---------------------------------------------------------------- report
    summary: dict[str, object] = {}
    if cpu_rows:
        print("\nCPU µs per request, summed over the workers: lowest run (least disturbed) / "
              "median of the runs\n")
        rows = []
        for key, by_w in cpu_rows.items():
            med: dict[int, dict[str, float]] = {}
            for w, runs in by_w.items():
                med[w] = {
                    "workers_min": min(run.workers_us for run in runs),
                    "workers_median": statistics.median(run.workers_us for run in runs),
                    "wrk": statistics.median(run.wrk_us for run in runs),
                    "req/s": statistics.median(run.requests / run.seconds for run in runs),
                    "errors": sum(run.errors for run in runs),
                    "busiest_share": max(max(run.worker_share) for run in runs),
                    "supervisor_ms_s": statistics.median(run.supervisor_ms_s for run in runs),
                    "reference_ms": statistics.median(run.reference_ms for run in runs),
                }
            one, two = med.get(1, {}), med.get(2, {})
            nan = math.nan
            rows.append([
                key,
                f"{fmt(one.get('workers_min', nan), 1)} / {fmt(one.get('workers_median', nan), 1)}",
                f"{fmt(two.get('workers_min', nan), 1)} / {fmt(two.get('workers_median', nan), 1)}",
                fmt(two.get("workers_median", nan) / one.get("workers_median", nan), 2),
                fmt(two.get("busiest_share", nan), 2),
                fmt(two.get("supervisor_ms_s", nan), 2),
                f"{fmt(one.get('wrk', nan), 1)} / {fmt(two.get('wrk', nan), 1)}",
                f"{fmt(one.get('reference_ms', nan), 0)} / {fmt(two.get('reference_ms', nan), 0)}",
                f"{int(one.get('errors', 0))}/{int(two.get('errors', 0))}",
            ])
            summary[key] = {str(w): v for w, v in med.items()}
        table(["endpoint", "1 worker µs", "2 workers µs", "2w ÷ 1w (medians)",
               "busiest worker's CPU share", "supervisor ms/s", "wrk µs 1w/2w",
               "reference ms 1w/2w", "errors 1w/2w"], rows)
        for w, per in idle.items():
            print(f"idle CPU, {w} worker(s): " + ", ".join(f"{k} {v:.2f} ms/s" for k, v in per.items()))
        if "sqlite_write_lock" in results:
            lk = results["sqlite_write_lock"]
            assert isinstance(lk, dict)
            print(f"SQLite write transaction (BEGIN IMMEDIATE, insert, COMMIT; WAL, synchronous "
                  f"NORMAL) holds the write lock {lk['median_us']:.0f} µs median, "
                  f"{lk['p90_us']:.0f} µs p90: at most {1e6 / lk['median_us']:.0f} writes/s "
                  "over all workers together")
        wr = results.get("sqlite_writers")
        if isinstance(wr, dict):
            print("SQLite writers flat out: " + "; ".join(
                f"{n} process(es) {v['writes_per_s']:.0f} writes/s, {100 * v['slow_over_1ms']:.1f} % "
                "over 1 ms" for n, v in wr.items()))
    if spreads:
        print("\nSO_REUSEPORT spread over the runs (connections per worker with keep-alive; "
              "requests per worker from bytes read)\n")
        rows = []
        groups: dict[tuple[int, int, bool], list[SpreadRun]] = {}
        for sr in spreads:
            groups.setdefault((sr.workers, sr.connections, sr.keepalive), []).append(sr)
        sp_summary = []
        for (w, n, ka), sruns in groups.items():
            model_sd, model_max = random_hashing(n, w)
            cmin = min(r.conn.minimum for r in sruns)
            cmax = max(r.conn.maximum for r in sruns)
            csd = statistics.fmean(r.conn.stdev for r in sruns)
            cworst = statistics.fmean(r.conn.max_over_mean for r in sruns)
            rworst = statistics.fmean(r.req.max_over_mean for r in sruns)
            what = "keep-alive" if ka else "close"
            rows.append([f"{w} workers, {n} conns, {what}", str(len(sruns)),
                         "-" if not ka else f"{cmin}–{cmax}",
                         "-" if not ka else f"{n / w:.1f}",
                         "-" if not ka else fmt(csd, 2), fmt(model_sd, 2),
                         "-" if not ka else fmt(cworst, 2), fmt(model_max, 2), fmt(rworst, 2),
                         "-" if not ka else fmt(statistics.fmean(r.conn.counts.count(0) for r in sruns), 1),
                         fmt(idle_workers(n, w), 1)])
            sp_summary.append({"workers": w, "connections": n, "keepalive": ka, "sruns": len(sruns),
                               "conn_counts": [list(r.conn.counts) for r in sruns],
                               "req_counts": [list(r.req.counts) for r in sruns],
                               "conn_min": cmin, "conn_max": cmax, "conn_stdev": csd,
                               "conn_max_over_mean": cworst, "model_stdev": model_sd,
                               "model_max_over_mean": model_max, "req_max_over_mean": rworst,
                               "model_idle_workers": idle_workers(n, w)})
        table(["workers, connections", "runs", "conns min–max", "even share", "stdev",
               "model stdev", "max ÷ mean", "model max ÷ mean", "requests max ÷ mean",
               "workers without a connection", "model"], rows)
        results["spread"] = sp_summary
    results["cpu"] = summary
    results["idle_ms_per_s"] = {str(k): v for k, v in idle.items()}
    results["raw_cpu_runs"] = {k: {str(w): [asdict(r) for r in runs] for w, runs in v.items()}
                               for k, v in cpu_rows.items()}
    results["loadavg_end"] = os.getloadavg()
    elapsed = time.monotonic() - started
    results["elapsed_s"] = round(elapsed)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(f"\nresults: {RESULTS.relative_to(HERE.parent)}; wall time {elapsed:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f} (a shared machine: CPU per request is the "
          "stable figure, req/s is not)")
    if failed:
        print("not measured: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
