"""Instructions per request of the real server, counted by callgrind.

``python bench/callgrind_sites.py`` starts ``python -m ahcore serve`` under
``valgrind --tool=callgrind`` twice per site, sends ``--few`` and then
``--few + --requests`` keep-alive requests to ``--path``, stops it with
SIGTERM and reads the instruction total; the difference divided by
``--requests`` is the cost of one request, start-up and shutdown cancelling
out (docs/performance.md, "Why the targets are missed"). Deterministic to
within a fraction of a percent; user space only.

Sites: ``warning`` (the bench site without an access log), ``info`` (with
it), ``plugins`` (every plugin, ahcore-rbac's routes among them) and
``routes`` (the same at ``warning``, with rbac's caches kept for the whole
run: the figure that does not move with the machine's load).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchsite  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("server did not start")


def instructions(site: Path, path: str, count: int, out: Path) -> int:
    port = free_port()
    argv = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, "-m", "ahcore", "serve", "-w", str(site), "-p", str(port),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_ready(port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(count):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"{path}: HTTP {resp.status}")
        conn.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no total in {out}")


def public(site: Path, path: str, quiet: bool = False) -> Path:
    """``path`` readable without a login on the all-plugins site (rbac denies the rest).

    ``quiet``: no access log and rbac's caches kept for a day, so that no
    timer's work depends on how long the run takes under valgrind.
    """
    conf = site / "conf" / "config.json"
    config = json.loads(conf.read_text(encoding="utf-8"))
    config["plugins"]["rbac"]["public"].append(path.split("?", 1)[0])
    if quiet:
        config["logger"] = {"levelname": "warning"}
        config["plugins"]["rbac"]["cache_ttl"] = 86400
    conf.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default="/data.dspy")
    parser.add_argument("--few", type=int, default=100)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--site", action="append", choices=("warning", "info", "plugins", "routes"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ahcore-callgrind-") as tmp:
        root = Path(tmp)
        site = benchsite.build_site(root / "site", with_sqlds=True)
        sites = {
            "info": site,
            "warning": benchsite.build_quiet_site(root / "site-warning", site, True),
            "plugins": public(benchsite.build_rbac_site(root / "site-rbac", site, True), args.path),
            "routes": public(
                benchsite.build_rbac_site(root / "site-routes", site, True), args.path, quiet=True
            ),
        }
        for name in args.site or ["warning"]:
            few = instructions(sites[name], args.path, args.few, root / f"{name}-few.out")
            many = instructions(
                sites[name], args.path, args.few + args.requests, root / f"{name}-many.out"
            )
            per = (many - few) / args.requests
            print(f"{name:8} {args.path}: {per / 1000:.1f} k instructions per request", flush=True)


if __name__ == "__main__":
    main()
