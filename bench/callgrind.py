"""Instructions per request, counted by callgrind, for ahcore and the plain server.

Wall-clock throughput on a shared 2-CPU VM moves by ±15 % from run to run;
the instruction count of the real server is deterministic to a fraction of
a percent. This script builds the bench site (``benchsite.build_site``),
starts each server under ``valgrind --tool=callgrind`` and, per endpoint:
sends ``--warmup`` keep-alive requests (valgrind instruments nothing
until then: ``--instr-atstart=no``), zeroes the counters
(``callgrind_control -z``), sends ``--requests`` more, dumps the counters
(``callgrind_control -d``) and divides the instructions of that dump by the
number of requests. The client runs outside valgrind, one request at a time
on one connection, and checks every answer is a 200. Counts are user space
only: the kernel's socket work is not in them, for either server.

    python bench/callgrind.py                         # ahcore (info), ahcore (warning), plain
    python bench/callgrind.py --only .sqlds --only "sqlExe" --servers ahcore,plain
    python bench/callgrind.py --profile DIR           # keep the dumps for callgrind_annotate

It needs valgrind (``apt-get install -y valgrind``). Under valgrind a server
runs about 50× slower; a full run takes a few minutes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import benchsite  # noqa: E402

ENDPOINTS = [
    ("static", "/static.html"),
    (".dspy JSON", "/data.dspy"),
    (".tmpl", "/page.tmpl"),
    (".sqlds 20 rows", "/items.sqlds"),
    (".dspy sqlExe", f"/sqlexe.dspy?id={benchsite.SQLEXE_ID}"),
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(conn: http.client.HTTPConnection, path: str) -> None:
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        raise SystemExit(f"{path}: HTTP {resp.status}")


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 1200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            get(conn, "/static.html")
            conn.close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("server did not start")


def control(pid: int, flag: str, port: int) -> None:
    """``callgrind_control FLAG PID``; if it hangs, a request wakes the server."""
    ctl = subprocess.Popen(["callgrind_control", flag, str(pid)], stdout=subprocess.DEVNULL)
    try:  # vgdb usually reaches a process blocked in epoll by itself
        ctl.wait(3)
    except subprocess.TimeoutExpired:
        pass
    while ctl.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/favicon-nothing-here")
            conn.getresponse().read()
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)


def total_ir(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")


def measure(name: str, argv: list[str], port: int, endpoints: list[tuple[str, str]],
            warmup: int, requests: int, outdir: Path) -> dict[str, float]:
    out = outdir / f"{name}.%p"
    # Uninstrumented until the first measurement: start-up and warm-up run
    # about ten times faster than under instrumentation.
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
           f"--callgrind-out-file={out}", *argv]
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    results: dict[str, float] = {}
    try:
        wait_ready(port, proc)
        for ep_name, path in endpoints:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for _ in range(warmup):
                get(conn, path)
            before = set(outdir.glob(f"{name}.{proc.pid}*"))
            control(proc.pid, "--instr=on", port)
            for _ in range(max(1, warmup // 10)):  # re-warm what instrumenting flushed
                get(conn, path)
            control(proc.pid, "-z", port)
            for _ in range(requests):
                get(conn, path)
            control(proc.pid, "-d", port)
            conn.close()
            dumps = sorted(set(outdir.glob(f"{name}.{proc.pid}*")) - before,
                           key=lambda p: p.stat().st_mtime)
            dump = dumps[-1]
            tagged = outdir / f"{name}-{re.sub(r'[^a-zA-Z0-9]+', '_', ep_name).strip('_')}.out"
            dump.rename(tagged)
            results[ep_name] = total_ir(tagged) / requests
            print(f"  {name:16} {ep_name:16} {results[ep_name] / 1000:8.1f} k instr/request",
                  flush=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return results


def scale_loop_budget(config: Path, slowdown: float) -> None:
    """Give SQLite reads on the loop a budget as many times longer as valgrind is slower.

    The driver moves a read off the loop after ``kwargs.loop_read_ms`` of
    wall time (default 1 ms); under valgrind every read would pass that and
    be counted twice, on the loop and again on the thread. The budget is
    scaled so a read that fits at native speed fits here.
    """
    data = json.loads(config.read_text("utf-8"))
    for db in data.get("databases", {}).values():
        if db.get("driver") in ("sqlite", "sqlite3", "aiosqlite"):
            db.setdefault("kwargs", {})["loop_read_ms"] = 1.0 * slowdown
    config.write_text(json.dumps(data, indent=2), "utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--only", action="append", default=[], help="endpoint names (substring)")
    ap.add_argument("--servers", default="ahcore,ahcore-warning,plain")
    ap.add_argument("--profile", type=Path, help="keep the callgrind dumps in this folder")
    ap.add_argument("--slowdown", type=float, default=50.0,
                    help="valgrind's slowdown, to scale the SQLite loop-read budget (default 50)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")
    endpoints = [e for e in ENDPOINTS if not args.only or any(o in e[0] for o in args.only)]
    tmp = Path(tempfile.mkdtemp(prefix="ahcore-callgrind-"))
    outdir = args.profile or tmp / "out"
    outdir.mkdir(parents=True, exist_ok=True)
    site = benchsite.build_site(tmp / "site", with_sqlds=True)
    quiet = benchsite.build_quiet_site(tmp / "site-warning", site, True)
    for root in (site, quiet):
        scale_loop_budget(root / "conf" / "config.json", args.slowdown)
    table: dict[str, dict[str, float]] = {}
    for server in args.servers.split(","):
        port = free_port()
        if server == "plain":
            argv = [sys.executable, str(HERE / "plain_server.py"), str(site), str(port)]
        else:
            root = site if server == "ahcore" else quiet
            argv = [sys.executable, "-m", "ahcore", "serve", "-w", str(root), "-p", str(port)]
        table[server] = measure(server, argv, port, endpoints, args.warmup, args.requests, outdir)
    names = list(table)
    print("\n| endpoint | " + " | ".join(f"{n} k instr/req" for n in names)
          + (" | plain ÷ ahcore |" if "plain" in table and "ahcore" in table else " |"))
    print("|---" * (len(names) + 1 + ("plain" in table and "ahcore" in table)) + "|")
    for ep_name, _ in endpoints:
        cells = [f"{table[n].get(ep_name, float('nan')) / 1000:.0f}" for n in names]
        ratio = ""
        if "plain" in table and "ahcore" in table:
            ratio = f" | {table['plain'][ep_name] / table['ahcore'][ep_name]:.2f}"
        print(f"| {ep_name} | " + " | ".join(cells) + ratio + " |")
    if args.profile:
        print(f"\ndumps in {outdir} (callgrind_annotate FILE)")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
