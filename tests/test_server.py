"""Running for real: ahcore serve, several workers, a killed worker, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import aiohttp
import pytest

pytestmark = pytest.mark.slow

PLUGIN = textwrap.dedent(
    '''
    import asyncio, os
    from ahcore import Processor, ProcessorSpec, hookimpl

    class Slow(Processor):
        async def produce(self, context):
            await asyncio.sleep(float(self.path.read_text()))
            return {"pid": os.getpid(), "done": True}

    @hookimpl
    def register_processor():
        return ProcessorSpec("slow", (".slow",), Slow)

    @hookimpl
    def on_hot_reload(app, data):
        import json
        from ahcore import get_site
        log = get_site(app).workdir / f"events-{os.getpid()}.jsonl"
        with open(log, "a") as fh:
            fh.write(json.dumps(data) + "\\n")
    '''
)
RUNNER = "from ahcore.server import webapp\nif __name__ == '__main__':\n    webapp(plugins={'slow': 'slowplug'})\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.json").write_text(
        json.dumps(
            {
                "website": {"host": "127.0.0.1", "cookie_secret": "s" * 32, "paths": [["$[workdir]$/wwwroot", ""]]},
                "plugins": {"slow": True},
                "hot_reload": {"enabled": True, "interval": 0.1, "rate_limit": 0,
                               "token": "server-test-hot-reload-token-32-bytes"},
                # No access lines: nobody reads the server's stdout pipe until
                # it stops, and ~700 lines (64 kB) would fill it and stall the
                # worker that writes (tests/test_accesslog.py covers the log).
                "logger": {"levelname": "warning"},
            }
        )
    )
    (tmp_path / "wwwroot").mkdir()
    (tmp_path / "wwwroot" / "fast.slow").write_text("0")
    (tmp_path / "wwwroot" / "long.slow").write_text("1.5")
    (tmp_path / "wwwroot" / "hello.txt").write_text("hello")
    (tmp_path / "slowplug.py").write_text(PLUGIN)
    (tmp_path / "run.py").write_text(RUNNER)
    return tmp_path


def start(site: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(site))
    proc = subprocess.Popen(
        [sys.executable, str(site / "run.py"), "-w", str(site), "-p", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    # Read the output as it comes: a test making hundreds of requests fills
    # the pipe with access-log lines, and a worker blocked writing to a full
    # pipe stops serving (and cannot even handle SIGTERM).
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    proc.drained = (reader, lines)  # type: ignore[attr-defined]
    return proc


def output(proc: subprocess.Popen[str]) -> str:
    """Everything an exited server printed."""
    drained = getattr(proc, "drained", None)
    if drained is None:
        return proc.communicate()[0]
    reader, lines = drained
    reader.join(timeout=10)
    return "".join(lines)


async def wait_ready(port: int, timeout: float = 20, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(f"http://127.0.0.1:{port}/hello.txt") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"server exited: {output(proc)}")
            await asyncio.sleep(0.1)
    raise TimeoutError("server did not start")


def stop(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    if getattr(proc, "drained", None) is None:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        return out
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return output(proc)


def child_pids(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


async def test_serve_prints_url_and_serves(site):
    port = free_port()
    proc = start(site, port)
    try:
        await wait_ready(port, proc=proc)
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/fast.slow") as r:
                assert (await r.json())["done"] is True
    finally:
        out = stop(proc)
    assert f"http://127.0.0.1:{port}/" in out
    assert proc.returncode == 0


async def test_graceful_shutdown_completes_a_slow_request(site):
    port = free_port()
    proc = start(site, port)
    try:
        await wait_ready(port, proc=proc)
        async with aiohttp.ClientSession() as s:
            pending = asyncio.ensure_future(s.get(f"http://127.0.0.1:{port}/long.slow"))
            await asyncio.sleep(0.4)  # the request is in flight
            proc.send_signal(signal.SIGTERM)
            r = await pending
            assert r.status == 200 and (await r.json())["done"] is True
        assert proc.wait(timeout=30) == 0
    finally:
        stop(proc)
    assert proc.returncode == 0


async def test_two_workers_share_the_port_and_a_killed_worker_is_replaced(site):
    port = free_port()
    proc = start(site, port, "--workers", "2")
    try:
        await wait_ready(port, proc=proc)
        async def pids_serving(want: int) -> set[int]:
            seen: set[int] = set()
            # Until both workers answer: the second may still be starting on a busy machine.
            deadline = time.monotonic() + 30
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
                while len(seen) < want and time.monotonic() < deadline:
                    async with s.get(f"http://127.0.0.1:{port}/fast.slow") as r:
                        seen.add((await r.json())["pid"])
            return seen

        seen = await pids_serving(2)
        assert len(seen) == 2, "connections were not spread over two workers"
        victim = min(seen)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        after: set[int] = set()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            try:
                after = await pids_serving(2)
            except aiohttp.ClientError:
                continue
            if len(after) == 2:
                break
        assert victim not in after
        assert len(after) == 2, "the killed worker was not replaced"
    finally:
        # The supervisor gives its workers shutdown_timeout (30 s) + 5 s to
        # stop before it kills them: wait longer than that, and show its log
        # if it still did not end (it was killed once on a loaded CI machine).
        out = stop(proc, timeout=45)
    assert proc.returncode == 0, out[-3000:]


async def test_hot_reload_endpoint_reaches_every_worker(site):
    port = free_port()
    proc = start(site, port, "--workers", "2")
    try:
        await wait_ready(port, proc=proc)
        # both workers up: wait until two pids have answered
        pids: set[int] = set()
        deadline = time.monotonic() + 30  # the second worker may still be starting on a busy machine
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            while len(pids) < 2 and time.monotonic() < deadline:
                async with s.get(f"http://127.0.0.1:{port}/fast.slow") as r:
                    pids.add((await r.json())["pid"])
            assert len(pids) == 2
            async with s.post(
                f"http://127.0.0.1:{port}/__hot_reload__",
                headers={"X-Hot-Reload-Token": "server-test-hot-reload-token-32-bytes"},
            ) as r:
                assert r.status == 200
                trigger_pid = (await r.json())["pid"]
        other = (pids - {trigger_pid}).pop()
        deadline = time.monotonic() + 10
        logs = {pid: site / f"events-{pid}.jsonl" for pid in pids}
        while time.monotonic() < deadline and not all(p.exists() for p in logs.values()):
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        read = {pid: [json.loads(line) for line in p.read_text().splitlines()] for pid, p in logs.items()}
        assert read[trigger_pid] == [{"source": "http_endpoint"}]
        assert read[other] == [{"signal": True}]
    finally:
        stop(proc)


def test_bad_config_stops_startup_with_every_problem(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.json").write_text(
        json.dumps({"website": {"port": "x", "indexes": 3}, "plugins": {"nosuchplugin": True}})
    )
    out = subprocess.run(
        [sys.executable, "-m", "ahcore", "serve", "-w", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "website.port: expected integer, got string" in out.stderr
    assert "website.indexes: expected array, got integer" in out.stderr


def test_check_lists_problems_and_plugins_lists_plugins(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "wwwroot").mkdir()
    (tmp_path / "conf" / "config.json").write_text(
        json.dumps({"website": {"paths": [["wwwroot", ""]]}, "plugins": {"nosuchplugin": True}})
    )
    out = subprocess.run([sys.executable, "-m", "ahcore", "check", "-w", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "nosuchplugin" in out.stdout and "cookie_secret" in out.stdout
    out = subprocess.run([sys.executable, "-m", "ahcore", "plugins"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "sqlite" in out.stdout and "register_db_driver" in out.stdout


def test_init_writes_a_site_that_check_accepts(tmp_path):
    target = tmp_path / "newsite"
    assert subprocess.run([sys.executable, "-m", "ahcore", "init", str(target)]).returncode == 0
    out = subprocess.run([sys.executable, "-m", "ahcore", "check", "-w", str(target)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
    assert "warning: website.cookie_secret" in out.stdout


def make_self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    crt, keyfile = folder / "site.pem", folder / "site.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, keyfile


async def test_https_from_website_ssl(site):
    crt, key = make_self_signed(site / "conf")
    cfg_path = site / "conf" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["website"]["ssl"] = {"crtfile": "$[workdir]$/conf/site.pem", "keyfile": "$[workdir]$/conf/site.key"}
    cfg["website"]["header_timeout"] = 1
    cfg_path.write_text(json.dumps(cfg))
    port = free_port()
    proc = start(site, port)
    try:
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as s:
            while True:
                try:
                    async with s.get(f"https://127.0.0.1:{port}/hello.txt", ssl=False) as r:
                        assert r.status == 200 and await r.text() == "hello"
                        break
                except aiohttp.ClientConnectionError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    await asyncio.sleep(0.1)
        # A TLS handshake that never starts is bounded by header_timeout too.
        took, _ = await silent_connection_closed_after(port)
        assert took is not None and took <= 1 + SLACK, took
    finally:
        out = stop(proc)
    assert f"https://127.0.0.1:{port}/" in out


SLACK = 1.5  # scheduling slack past a 1 s limit in a loaded subprocess


async def silent_connection_closed_after(port: int, wait: float = 5.0) -> tuple[float | None, bytes]:
    """Connect, send nothing: (seconds until the server closed, what it sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        data = await asyncio.wait_for(reader.read(), wait)
    except asyncio.TimeoutError:
        return None, b""
    except ConnectionResetError:
        data = b""
    finally:
        writer.close()
    return loop.time() - start, data


async def slowloris(port: int, every: float = 0.2) -> tuple[float | None, bytes]:
    """Dribble a request head a byte at a time: (seconds until the server reacted, its answer)."""
    head = b"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 100
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        for i in range(len(head)):
            try:
                writer.write(head[i : i + 1])
                await writer.drain()
                data = await asyncio.wait_for(reader.read(65536), every)
            except asyncio.TimeoutError:
                continue
            except ConnectionError as exc:
                return loop.time() - start, repr(exc).encode()
            took = loop.time() - start
            try:
                while chunk := await asyncio.wait_for(reader.read(65536), 3):
                    data += chunk
            except (asyncio.TimeoutError, ConnectionError):
                pass
            return took, data
        return None, b""
    finally:
        writer.close()


@pytest.mark.parametrize("workers", [1, 2])
async def test_ahcore_serve_cuts_off_slow_clients(tmp_path, workers):
    """The production path: `ahcore serve` (one worker, or a supervisor and workers)."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "wwwroot").mkdir()
    (tmp_path / "wwwroot" / "hello.txt").write_text("hello")
    with open(tmp_path / "wwwroot" / "big.bin", "wb") as big:
        big.truncate(BIG)  # sparse: 64 MB of zeros without writing them
    (tmp_path / "conf" / "config.json").write_text(
        json.dumps(
            {
                "website": {
                    "host": "127.0.0.1",
                    "cookie_secret": "s" * 32,
                    "paths": [["$[workdir]$/wwwroot", ""]],
                    "header_timeout": 1,
                    "request_timeout": 1,
                },
                "plugins": {},
            }
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ahcore", "serve", "-w", str(tmp_path), "-p", str(port), "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        await wait_ready(port, proc=proc)
        took, answer = await slowloris(port)
        assert took is not None, "ahcore serve kept a slowloris client"
        assert 0.8 <= took <= 1 + SLACK, took
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        took, answer = await silent_connection_closed_after(port)
        assert took is not None and took <= 1 + SLACK and answer == b"", (took, answer)
        # A keep-alive connection idle past header_timeout still serves.
        async with aiohttp.ClientSession() as s:
            for _ in range(2):
                async with s.get(f"http://127.0.0.1:{port}/hello.txt") as r:
                    assert r.status == 200 and await r.text() == "hello"
                await asyncio.sleep(1.5)
            assert s.connector is not None
        # A client that asks for a big file and reads nothing is dropped
        # request_timeout after the send buffer filled (uvloop: aiohttp
        # writes the file in chunks through the guarded connection).
        received = await unread_download(port, "/big.bin")
        assert received < BIG, received
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out


BIG = 64 * 1024 * 1024


async def unread_download(port: int, path: str) -> int:
    """Ask for ``path``, read nothing for 3 s, then all that comes: the bytes received."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    received = 0
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        await asyncio.sleep(3)
        # Until the server drops the connection, or (kept: the whole file
        # came) nothing more arrives for 5 s.
        with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
            while chunk := await asyncio.wait_for(reader.read(1 << 20), 5):
                received += len(chunk)
    finally:
        writer.close()
    return received


async def test_redis_sessions_shared_by_two_server_processes(tmp_path):
    import importlib.util

    if importlib.util.find_spec("ahcore_dspy") is None:
        pytest.skip("needs ahcore-dspy")
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError as exc:
        if os.environ.get("AHCORE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis is required (AHCORE_REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"Redis not reachable: {exc}")
    site = tmp_path / "site"
    (site / "conf").mkdir(parents=True)
    (site / "wwwroot").mkdir()
    (site / "conf" / "config.json").write_text(
        json.dumps(
            {
                "website": {
                    "host": "127.0.0.1",
                    "paths": [["$[workdir]$/wwwroot", ""]],
                    "session_redis": {"url": "redis://127.0.0.1:6379/0"},
                },
                "plugins": {"dspy": True},
            }
        )
    )
    (site / "wwwroot" / "hello.txt").write_text("hello")
    (site / "wwwroot" / "login.dspy").write_text("await remember_user(params_kw.user)\nreturn {'ok': True}\n")
    (site / "wwwroot" / "whoami.dspy").write_text("return {'user': await get_user(), 'pid': __import__('os').getpid()}\n")
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ahcore", "serve", "-w", str(site), "-p", str(p)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for p in ports
    ]
    try:
        for p, proc in zip(ports, procs, strict=True):
            await wait_ready(p, proc=proc)
        async with aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{ports[0]}/login.dspy", data={"user": "ann"}) as r:
                assert r.status == 200
                cookie = r.cookies["AHCORE_SESSION"].value
        async with aiohttp.ClientSession(cookies={"AHCORE_SESSION": cookie}) as s:
            async with s.get(f"http://127.0.0.1:{ports[1]}/whoami.dspy") as r:
                data = await r.json()
        assert data["user"] == "ann"
        assert data["pid"] == procs[1].pid
    finally:
        for proc in procs:
            stop(proc)
