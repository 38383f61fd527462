"""bench/ablation.py serves the real site on a real port, minus exactly the features it names."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# The bench site enables these plugins (the core session runs without them).
for plugin in ("ahcore_dspy", "ahcore_tmpl", "ahcore_md", "ahcore_xlsxds", "ahcore_sqlds"):
    pytest.importorskip(plugin)

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import ablation  # noqa: E402
import benchsite  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return benchsite.build_site(tmp_path_factory.mktemp("ablation") / "site", with_sqlds=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(site: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*without: str) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(BENCH / "ablation.py"), "--serve", str(port), "--root", str(site),
             *[f"--without={w}" for w in without]],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
            try:
                urllib.request.urlopen(base + "/static.html", timeout=2).close()
                return base
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the variant did not answer within 60 s")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, dict(resp.headers), resp.read()


def test_full_variant_is_the_site_as_served(serve, site: Path) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = get(serve() + "/data.dspy")
    assert status == 200
    assert json.loads(body)["hello"] == "world"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Server"] == "ahcore"


def test_without_response_prepare_drops_the_headers_only(serve) -> None:  # type: ignore[no-untyped-def]
    base = serve("response-prepare")
    status, headers, body = get(base + "/data.dspy")
    assert status == 200 and json.loads(body)["hello"] == "world"
    assert "X-Content-Type-Options" not in headers
    assert headers["Server"] != "ahcore"  # aiohttp's own


def test_without_everything_still_answers_the_database_script(serve) -> None:  # type: ignore[no-untyped-def]
    base = serve(*ablation.FEATURES)  # the guard too: aiohttp's protocol serves the port
    status, _, body = get(base + f"/sqlexe.dspy?id={benchsite.SQLEXE_ID}")
    assert status == 200
    assert json.loads(body)[0]["id"] == benchsite.SQLEXE_ID


def test_cpu_ticks_counts_this_process() -> None:
    before = ablation.cpu_ticks(os.getpid())
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
    assert ablation.cpu_ticks(os.getpid()) > before
