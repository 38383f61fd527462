"""Start-up failures as a site owner meets them: one line saying what to do, exit non-zero.

Each test runs ``ahcore`` as a subprocess against real sockets: a port
another program holds (one worker and two), a port below 1024 for a
non-root user, a broken certificate, a start-up hook that raises in every
worker, and command-line values that cannot work.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ahcore.testing import write_site

pytestmark = pytest.mark.slow

SECRET = "s" * 32


def ahcore(*args: str, timeout: float = 90, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ahcore", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,  # type: ignore[arg-type]
    )


def lines_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write_site(
        tmp_path / "site",
        {"website": {"host": "127.0.0.1", "cookie_secret": SECRET}, "logger": {"levelname": "warning"}},
        {"wwwroot/index.html": "<html><body>hi</body></html>"},
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on (no SO_REUSEPORT, as most servers)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_busy_port_is_one_line_and_exit_1(site: Path, busy_port: int, workers: str) -> None:
    started = time.monotonic()
    result = ahcore("serve", "-w", str(site), "-p", str(busy_port), "--workers", workers)
    assert result.returncode == 1
    assert lines_of(result) == [
        f"ahcore: cannot start: port {busy_port} is in use: stop the other server or pass -p"
    ]
    assert time.monotonic() - started < 60  # no respawning for ever


def test_a_port_shared_with_so_reuseport_is_busy_too(site: Path) -> None:
    """Another ``ahcore serve --workers N`` holds its port with SO_REUSEPORT: still in use."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = ahcore("serve", "-w", str(site), "-p", str(port), "--workers", "2")
    assert result.returncode == 1
    assert lines_of(result) == [
        f"ahcore: cannot start: port {port} is in use: stop the other server or pass -p"
    ]


HOOK_PLUGIN = """
from ahcore import hookimpl

@hookimpl
async def on_startup(app):
    raise RuntimeError("the database at db.invalid does not answer")
"""

RUNNER = (
    "from ahcore.server import webapp\n"
    "if __name__ == '__main__':\n"
    "    webapp(plugins={'failing': 'failingplug'})\n"
)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_start_up_hook_failing_in_every_worker_stops_with_one_line(
    site: Path, workers: str
) -> None:
    config = json.loads((site / "conf" / "config.json").read_text())
    config["plugins"] = {"failing": True}
    (site / "conf" / "config.json").write_text(json.dumps(config))
    (site / "failingplug.py").write_text(HOOK_PLUGIN)
    (site / "run.py").write_text(RUNNER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(site / "run.py"), "-w", str(site), "-p", str(port), "--workers", workers],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(site)),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert lines_of(result) == [
        "ahcore: cannot start: start-up failed: RuntimeError: the database at db.invalid "
        "does not answer (serve with --debug to see the traceback)"
    ]
    assert time.monotonic() - started < 90


def test_a_low_port_without_privileges_says_how_to_fix_it(site: Path) -> None:
    prefix: list[str] = []
    if os.geteuid() == 0:
        # root may bind any port; without CAP_NET_BIND_SERVICE it is like a service user.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("needs setpriv (util-linux) to drop CAP_NET_BIND_SERVICE")
        prefix = [setpriv, "--bounding-set=-net_bind_service"]
    if int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()) <= 1000:
        pytest.skip("this machine lets anyone listen below 1024")
    port = next(p for p in range(1000, 1023) if _free(p))
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "ahcore", "serve", "-w", str(site), "-p", str(port)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 1, result.stderr
    assert lines_of(result) == [
        f"ahcore: cannot start: no permission to listen on 127.0.0.1:{port}: ports below 1024 "
        "need root or CAP_NET_BIND_SERVICE; pass -p with a port from 1024 up, or serve behind a proxy"
    ]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_certificate_that_does_not_load_is_one_line(tmp_path: Path, workers: str) -> None:
    (tmp_path / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    site = write_site(
        tmp_path / "site",
        {
            "website": {
                "host": "127.0.0.1",
                "cookie_secret": SECRET,
                "ssl": {"crtfile": str(tmp_path / "cert.pem"), "keyfile": str(tmp_path / "key.pem")},
            }
        },
    )
    result = ahcore("serve", "-w", str(site), "-p", "8443", "--workers", workers)
    assert result.returncode == 1
    (line,) = lines_of(result)
    assert line.startswith(f"ahcore: cannot start: website.ssl: the certificate {tmp_path}/cert.pem")
    assert line.endswith("crtfile must be a PEM certificate (chain) and keyfile its private key")


def test_a_missing_certificate_file_is_one_line(tmp_path: Path) -> None:
    site = write_site(
        tmp_path / "site",
        {
            "website": {
                "cookie_secret": SECRET,
                "ssl": {"crtfile": str(tmp_path / "nope.pem"), "keyfile": str(tmp_path / "nope.key")},
            }
        },
    )
    result = ahcore("serve", "-w", str(site))
    assert result.returncode == 1
    assert lines_of(result) == [
        f"ahcore: cannot start: website.ssl.crtfile {tmp_path}/nope.pem does not exist: correct "
        "the path in conf/config.json or create the file"
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-p", "70000"], "argument -p/--port: port 70000 is out of range: use 1 to 65535"),
        (["-p", "http"], "argument -p/--port: 'http' is not a port number (1 to 65535)"),
        (["--workers", "0"], "argument --workers: 0 workers cannot serve: use 1 or more"),
        (["--host", "no-such-host.invalid"],
         "argument --host: 'no-such-host.invalid' is neither an IP address nor a host name that resolves"),
        (["--shutdown-timeout", "-1"], "argument --shutdown-timeout: -1 seconds: use 0 or more"),
        (["-p", "0", "--workers", "2"],
         "-p 0 (any free port) would give each worker a port of its own: name the port with --workers"),
    ],
)
def test_impossible_arguments_are_refused_before_anything_starts(
    site: Path, args: list[str], error: str
) -> None:
    result = ahcore("serve", "-w", str(site), *args)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(f"error: {error}")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_site_folder_that_does_not_exist_is_an_argument_error(tmp_path: Path) -> None:
    result = ahcore("serve", "-w", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(
        f"error: argument -w/--workdir: {tmp_path}/nope is not a folder; write a starter site "
        f"there with: ahcore init {tmp_path}/nope"
    )
