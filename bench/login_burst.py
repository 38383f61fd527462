"""Static-file latency while logins hash passwords (SPEC §16).

    python bench/login_burst.py                  # 10 s per run, 10 concurrent logins
    python bench/login_burst.py --quick          # 3 s per run
    python bench/login_burst.py --logins 20 --pools 1,2,6

Starts ``python -m ahcore serve`` (one worker) on a site with ahcore-rbac
and its default argon2 parameters, and loads ``/static.html`` with wrk
(``-t1 -c16 --latency``) three ways, each for the same time:

1. alone (the baseline);
2. while ``--logins`` clients log in back to back through ``POST /rbac/login``
   (every login costs one argon2 verification), once for each hashing pool
   size in ``--pools`` (``plugins.rbac.hash_workers``). The default pool is
   2; a pool of ``os.cpu_count() + 4`` threads stands for what asyncio's
   default executor would give (``asyncio.to_thread``, as before the pool).

Prints static req/s, p50 and p99 for each, the ratio of each p99 to the
baseline's, and logins/s. Figures are from one run on this machine; nothing
here is a test. The server and wrk are not pinned to CPUs: the question is
how the server's own threads share the machine. Everything listens on
127.0.0.1 and every process started here is stopped before exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import Run, Servers, ensure_wrk, free_port, parse_wrk, rbac_cli, wait_ready  # noqa: E402

USER, PASSWORD = "burst", "burst-password"
STATIC = b"<!doctype html><title>static</title>\n" + b"<p>static benchmark body</p>\n" * 150


def build_site(root: Path, hash_workers: int) -> Path:
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "wwwroot").mkdir(exist_ok=True)
    (root / "wwwroot" / "static.html").write_bytes(STATIC)
    config = {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "host": "127.0.0.1",
            "cookie_secret": "login-burst-bench-secret-of-32-bytes",
        },
        "logger": {"levelname": "warning"},
        "databases": {"rbac": {"driver": "sqlite", "kwargs": {"dbname": "$[workdir]$/rbac.db"}}},
        "plugins": {
            "sqlite": True,
            "rbac": {"db": "rbac", "hash_workers": hash_workers, "public": ["/static.html"]},
        },
    }
    (root / "conf" / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return root


async def login_loop(base: str, clients: int, seconds: float) -> int:
    """``clients`` concurrent clients logging in back to back; the number of logins."""
    import aiohttp

    body = json.dumps({"username": USER, "password": PASSWORD})
    done = 0
    stop = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < stop:
            async with session.post(
                base + "/rbac/login", data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"login answered {resp.status}")
                done += 1

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return done


def wrk_static(wrk: str, base: str, seconds: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [wrk, "-t1", "-c16", f"-d{seconds}s", "--latency", base + "/static.html"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def measure(wrk: str, base: str, seconds: int, logins: int) -> tuple[Run, float]:
    """Static under wrk for ``seconds``, with ``logins`` clients logging in meanwhile."""
    proc = wrk_static(wrk, base, seconds)
    rate = 0.0
    if logins:
        count = asyncio.run(login_loop(base, logins, seconds))
        rate = count / seconds
    out, _ = proc.communicate(timeout=seconds + 30)
    return parse_wrk(out), rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3 s per run")
    ap.add_argument("--logins", type=int, default=10, help="concurrent login clients")
    default_pool = (os.cpu_count() or 2) + 4
    ap.add_argument(
        "--pools", default=f"2,{default_pool}",
        help=f"hashing pool sizes to run (default 2 and {default_pool}, the default executor's size)",
    )
    args = ap.parse_args()
    seconds = 3 if args.quick else args.seconds
    pools = [int(p) for p in args.pools.split(",") if p.strip()]
    wrk = ensure_wrk()
    rows: list[tuple[str, Run, float]] = []
    with tempfile.TemporaryDirectory(prefix="ahcore-login-burst-") as tmp:
        servers = Servers(Path(tmp))
        try:
            for i, workers in enumerate(pools):
                site = build_site(Path(tmp) / f"site{workers}", workers)
                rbac_cli(site, "adduser", USER, "--password", PASSWORD)
                port = free_port()
                proc = servers.start(
                    [sys.executable, "-m", "ahcore", "serve", "-w", str(site), "-p", str(port)],
                    None, f"ahcore-pool{workers}",
                )
                base = f"http://127.0.0.1:{port}"
                wait_ready(base + "/static.html", proc)
                measure(wrk, base, 1, 0)  # warm-up
                if i == 0:
                    run, _ = measure(wrk, base, seconds, 0)
                    rows.append(("static alone", run, 0.0))
                run, rate = measure(wrk, base, seconds, args.logins)
                rows.append((f"+ {args.logins} logins, hash_workers={workers}", run, rate))
                servers.stop(proc)
        finally:
            servers.close()
    base_p99 = rows[0][1].p99_ms
    print(f"\nstatic /static.html under wrk -c16 for {seconds} s each "
          f"({os.cpu_count()} CPUs, one ahcore worker)\n")
    print(f"{'run':38} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99 ÷ alone':>12} {'logins/s':>9}")
    for name, run, rate in rows:
        errors = f"  ({run.errors} errors)" if run.errors else ""
        print(f"{name:38} {run.rps:9.0f} {run.p50_ms:8.2f} {run.p99_ms:8.2f} "
              f"{run.p99_ms / base_p99:12.1f} {rate:9.1f}{errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
