"""The access log: batched writes, every line kept at a stop, reopened on SIGHUP, off at warning."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from ahcore.accesslog import AccessLog, quoted_field
from ahcore.app import create_app
from ahcore.server import start_site

# REMOTE - - [START] "REQUEST LINE" STATUS BYTES "REFERER" "USER-AGENT" SECONDS
LINE = re.compile(
    r'(?P<remote>\S+) - - \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<size>\d+) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)" (?P<seconds>\d+\.\d{6})$'
)


def access_lines(path: Path) -> list[re.Match[str]]:
    """The access lines of a log file (other log records, if any, are skipped)."""
    if not path.exists():
        return []
    return [m for m in map(LINE.match, path.read_text().splitlines()) if m]


def numbers(matches: list[re.Match[str]]) -> list[int]:
    """The ``n`` of each ``GET /hello.txt?n=N`` line, in file order."""
    return [int(m["request"].split("n=")[1].split()[0]) for m in matches if "n=" in m["request"]]


@pytest.fixture
def info_logger() -> logging.Logger:
    """A logger that lets INFO through, so the in-process site makes access lines."""
    logger = logging.getLogger("tests.access")
    logger.setLevel(logging.INFO)
    return logger


def site_config(logfile: Path, level: str = "info") -> dict[str, object]:
    return {
        "website": {
            "host": "127.0.0.1", "cookie_secret": "accesslog-test-secret-of-at-least-32-bytes", "paths": [["$[workdir]$/wwwroot", ""]],
        },
        "logger": {"levelname": level, "logfile": str(logfile)},
    }


# ---------------------------------------------------------------- in process


async def test_many_requests_are_few_writes_with_every_line_complete_and_in_order(
    make_site, tmp_path, info_logger
):
    logfile = tmp_path / "logs" / "site.log"  # the folder is created too
    site = make_site(config=site_config(logfile), files={"wwwroot/hello.txt": "hello"})
    running = await start_site(create_app(site), access_log=info_logger)
    log = running.access_log
    log.flush_interval = 60.0  # only the size limit and the close write here
    log.max_lines = 50
    headers = {"Referer": "http://example.org/a", "User-Agent": 'agent "quoted" \\ 1.0'}
    try:
        async with aiohttp.ClientSession() as http:
            for n in range(310):
                async with http.get(f"{running.url}/hello.txt?n={n}", headers=headers) as r:
                    assert r.status == 200
                    await r.read()
    finally:
        await running.close()
    lines = access_lines(logfile)
    assert len(lines) == 310 == len(logfile.read_text().splitlines())
    assert numbers(lines) == list(range(310))
    first = lines[0]
    assert first["remote"] == "127.0.0.1"
    assert first["request"] == "GET /hello.txt?n=0 HTTP/1.1"
    assert (first["status"], first["referer"]) == ("200", "http://example.org/a")
    assert first["agent"] == 'agent \\"quoted\\" \\\\ 1.0'
    assert float(first["seconds"]) < 60
    # 310 lines at 50 a batch: six writes, and the last ten at close (a few
    # more if a batch was cut short), not 310.
    assert 7 <= log.batches <= 9


async def test_a_line_waits_at_most_the_flush_interval():
    out = io.StringIO()
    log = AccessLog(stream=out, flush_interval=0.05)
    log.append("one\n")
    log.append("two\n")
    assert out.getvalue() == ""  # buffered, not written inside the request
    for _ in range(200):
        if out.getvalue():
            break
        await asyncio.sleep(0.05)
    assert out.getvalue() == "one\ntwo\n"
    assert log.batches == 1


async def test_a_full_buffer_is_written_at_the_next_turn_of_the_loop():
    out = io.StringIO()
    log = AccessLog(stream=out, flush_interval=60.0, max_lines=3)
    for n in range(3):
        log.append(f"{n}\n")
    assert out.getvalue() == ""
    await asyncio.sleep(0)
    assert out.getvalue() == "0\n1\n2\n"


async def test_lines_after_close_are_written_at_once(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog(path, flush_interval=60.0)
    log.append("before\n")
    log.close()
    assert path.read_text() == "before\n"
    log.append("after\n")
    assert path.read_text() == "before\nafter\n"


def test_reopen_after_a_rename_writes_to_a_new_file_at_the_path(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog(path)
    log.append("old\n")  # no running loop: written at once
    path.rename(tmp_path / "access.log.1")
    log.append("still old\n")  # the open file is the renamed one
    log.reopen()
    log.append("new\n")
    log.close()
    assert (tmp_path / "access.log.1").read_text() == "old\nstill old\n"
    assert path.read_text() == "new\n"


def test_the_timestamp_is_made_once_per_second():
    log = AccessLog(stream=io.StringIO())
    a = log.stamp(1_700_000_000.1)
    assert log.stamp(1_700_000_000.9) is a
    assert log.stamp(1_700_000_001.0) != a
    assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", a)


def test_client_made_fields_cannot_fake_a_field_or_a_line():
    assert quoted_field("Mozilla/5.0 (X11)") == "Mozilla/5.0 (X11)"
    assert quoted_field('a" 200 "b') == 'a\\" 200 \\"b'
    assert quoted_field("x\ny\t\x00") == "x\\ny\\t\\x00"
    assert quoted_field("back\\slash") == "back\\\\slash"
    assert quoted_field("\udcff") == "\\udcff"  # a byte that was not UTF-8


def test_disabled_when_the_logger_stops_at_warning():
    log = AccessLog(stream=io.StringIO())
    quiet = logging.getLogger("tests.access.quiet")
    quiet.setLevel(logging.WARNING)
    loud = logging.getLogger("tests.access.loud")
    loud.setLevel(logging.INFO)
    assert log.logger_class(quiet, "").enabled is False  # aiohttp then skips the log entirely
    assert log.logger_class(loud, "").enabled is True


def test_a_write_error_loses_the_batch_but_not_the_server(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    log = AccessLog(blocker / "access.log")
    with caplog.at_level(logging.ERROR, logger="ahcore.server"):
        log.append("lost\n")
        log.append("lost too\n")
    assert [r.getMessage().startswith("access log: cannot write") for r in caplog.records] == [True]


# ---------------------------------------------------------------- ahcore serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(site: Path, port: int, workers: int) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "ahcore", "serve", "-w", str(site), "-p", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


async def serving(proc: subprocess.Popen[str], workers: int, timeout: float = 60) -> list[str]:
    """Wait for every worker's "serving" line: printed once it answers and handles signals."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while sum(line.startswith("ahcore: serving") for line in seen) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError("".join(seen))
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
        if not line:
            raise RuntimeError(f"server exited: {''.join(seen)}")
        seen.append(line)
    return seen


async def get_numbered(port: int, numbers: range) -> None:
    # A new connection per request, so both workers of a 2-worker server answer.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        for n in numbers:
            async with http.get(f"http://127.0.0.1:{port}/hello.txt?n={n}") as r:
                assert r.status == 200


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


async def wait_for(check, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


@pytest.fixture
def serve_site(make_site, tmp_path):
    def make(level: str = "info") -> tuple[Path, Path]:
        logfile = tmp_path / "log" / "site.log"
        site = make_site(
            config=site_config(logfile, level),
            files={"wwwroot/hello.txt": "hello"},
        )
        return site, logfile

    return make


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
async def test_lines_just_before_a_graceful_stop_are_in_the_file(serve_site, workers):
    site, logfile = serve_site("info")
    port = free_port()
    proc = serve(site, port, workers)
    try:
        await serving(proc, workers)
        await get_numbered(port, range(40))
    finally:
        # Within the 0.5 s flush interval of the last request: its line is
        # still in a worker's memory when the signal arrives.
        out = stop(proc)
    assert proc.returncode == 0, out
    assert sorted(numbers(access_lines(logfile))) == list(range(40)), logfile.read_text()
    # Every line whole: nothing but access lines and log records.
    for line in logfile.read_text().splitlines():
        assert LINE.match(line) or re.match(r"\d{4}-\d\d-\d\d ", line), line


@pytest.mark.slow
async def test_no_access_lines_at_warning(serve_site):
    site, logfile = serve_site("warning")
    port = free_port()
    proc = serve(site, port, 1)
    try:
        await serving(proc, 1)
        await get_numbered(port, range(10))
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert access_lines(logfile) == []
    assert "GET /" not in out


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
async def test_sighup_reopens_the_file_for_logrotate(serve_site, workers):
    site, logfile = serve_site("info")
    rotated = logfile.with_name("site.log.1")
    port = free_port()
    proc = serve(site, port, workers)
    try:
        await serving(proc, workers)
        await get_numbered(port, range(0, 20))
        await wait_for(lambda: len(numbers(access_lines(logfile))) == 20, "first lines written")
        logfile.rename(rotated)  # what logrotate does, then it signals the server
        os.kill(proc.pid, signal.SIGHUP)
        # Each serving process says so in the site's log, which is at the new path too.
        await wait_for(
            lambda: logfile.exists() and logfile.read_text().count("access log: reopened") == workers,
            "every worker reopened the file",
        )
        await get_numbered(port, range(20, 40))
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert sorted(numbers(access_lines(rotated))) == list(range(0, 20))
    assert sorted(numbers(access_lines(logfile))) == list(range(20, 40))
