"""``ahcore serve --dev`` and restart-needing config changes, as a developer sees them.

The server runs as a subprocess on a real socket; the tests change files
the way an editor saves them and watch what the server prints and what an
open page (its event stream) receives.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from ahcore.testing import write_site

pytestmark = pytest.mark.slow

TAG = '<script src="/__ahcore_dev__/livereload.js"></script>'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running ``ahcore`` process whose output is read as it comes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ahcore", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, test: Callable[[str], bool], start: int = 0, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if test(line):
                    return line
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError("not printed:\n" + "\n".join(self.lines))

    def serving_pid(self, start: int = 0) -> int:
        line = self.wait_for(lambda x: x.startswith("ahcore: serving "), start)
        found = re.search(r"\(pid (\d+)\)", line)
        assert found
        return int(found.group(1))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write_site(
        tmp_path / "site",
        {
            "website": {"host": "127.0.0.1", "cookie_secret": "s" * 32},
            "plugins": {},
            "hot_reload": {"interval": 0.1},
        },
        {
            "wwwroot/index.html": "<html><body><h1>Hello</h1></body></html>",
            "wwwroot/notes.txt": "plain text",
        },
    )


@pytest.fixture
def dev(site: Path) -> Iterator[tuple[Server, int]]:
    port = free_port()
    server = Server("serve", "--dev", "-w", str(site), "-p", str(port))
    try:
        yield server, port
    finally:
        assert server.stop() == 0


async def test_dev_pages_reload_when_a_site_file_changes(site: Path, dev: tuple[Server, int]) -> None:
    server, port = dev
    server.serving_pid()
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/") as r:
            page = await r.text()
        assert page == f"<html><body><h1>Hello</h1>{TAG}</body></html>"
        async with http.get(f"{base}/notes.txt") as r:
            assert await r.text() == "plain text"  # only HTML gets the script
        async with http.get(f"{base}/__ahcore_dev__/livereload.js") as r:
            assert r.status == 200 and "location.reload()" in await r.text()
        async with http.get(f"{base}/__ahcore_dev__/livereload") as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            assert await stream.content.readline() == b"retry: 500\n"
            await asyncio.sleep(1)  # the watcher has seen the files as they are
            (site / "wwwroot" / "index.html").write_text("<html><body>Changed</body></html>")
            seen = b""
            while b"event: reload" not in seen:
                seen += await asyncio.wait_for(stream.content.readline(), 20)
        async with http.get(f"{base}/") as r:
            assert await r.text() == f"<html><body>Changed{TAG}</body></html>"


@pytest.mark.skipif(
    importlib.util.find_spec("ahcore_md") is None, reason="enables md (not in the kernel-only session)"
)
async def test_dev_restarts_on_config_and_python_code_changes(site: Path, dev: tuple[Server, int]) -> None:
    server, port = dev
    first = server.serving_pid()
    mark = len(server.lines)
    config = json.loads((site / "conf" / "config.json").read_text())
    config["plugins"] = {"md": True}
    (site / "conf" / "config.json").write_text(json.dumps(config))
    server.wait_for(lambda x: x == "ahcore --dev: conf/config.json changed; restarting", mark)
    second = server.serving_pid(mark)
    assert second != first
    mark = len(server.lines)
    (site / "helpers.py").write_text("ANSWER = 42\n")  # a module the site's code imports
    server.wait_for(lambda x: x == "ahcore --dev: helpers.py changed; restarting", mark)
    assert server.serving_pid(mark) not in (first, second)
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as r:
        assert r.status == 200


async def test_dev_waits_for_a_fix_after_a_broken_config(site: Path, dev: tuple[Server, int]) -> None:
    server, port = dev
    server.serving_pid()
    mark = len(server.lines)
    good = (site / "conf" / "config.json").read_text()
    (site / "conf" / "config.json").write_text('{"website": ')
    server.wait_for(lambda x: "fix the problem and save: it restarts" in x, mark)
    mark = len(server.lines)
    (site / "conf" / "config.json").write_text(good)
    server.serving_pid(mark)


async def test_production_has_no_reload_script_nor_endpoint(site: Path) -> None:
    port = free_port()
    server = Server("serve", "-w", str(site), "-p", str(port))
    try:
        server.serving_pid()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/") as r:
                assert await r.text() == "<html><body><h1>Hello</h1></body></html>"
            async with http.get(f"http://127.0.0.1:{port}/__ahcore_dev__/livereload") as r:
                assert r.status == 404
            async with http.get(f"http://127.0.0.1:{port}/__ahcore_dev__/livereload.js") as r:
                assert r.status == 404
    finally:
        server.stop()


def test_enabling_a_plugin_on_a_running_server_says_restart_to_apply(site: Path) -> None:
    port = free_port()
    server = Server("serve", "-w", str(site), "-p", str(port))
    try:
        server.serving_pid()
        time.sleep(0.5)
        config = json.loads((site / "conf" / "config.json").read_text())
        config["plugins"] = {"md": True}
        config["website"]["port"] = 9999
        (site / "conf" / "config.json").write_text(json.dumps(config))
        line = server.wait_for(lambda x: "restart to apply" in x)
    finally:
        server.stop()
    assert line.endswith(
        "ahcore.hotreload: [hot_reload] plugins (md), website.host/port changed: restart to apply"
    )
