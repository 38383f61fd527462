"""bench/inprocess.py measures real answers: 200s of the real site, and only what --without says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# The bench site enables these plugins (the core session runs without them).
for plugin in ("ahcore_dspy", "ahcore_tmpl", "ahcore_md", "ahcore_xlsxds", "ahcore_sqlds"):
    pytest.importorskip(plugin)

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import benchsite  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return benchsite.build_site(tmp_path_factory.mktemp("inprocess") / "site", with_sqlds=True)


def run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / "inprocess.py"), "--root", str(site),
         "--requests", "64", "--conns", "4", *args],
        capture_output=True, text=True, timeout=120,
    )


def access_lines(site: Path) -> int:
    log = site / "logs" / "site.log"
    return log.read_text("utf-8").count('"GET /data.dspy HTTP/1.1" 200') if log.exists() else 0


def test_ahcore_answers_the_script_and_logs_each_request(site: Path) -> None:
    before = access_lines(site)
    done = run(site, "--server", "ahcore")
    assert done.returncode == 0, done.stderr
    assert "ahcore:" in done.stdout and "µs/request" in done.stdout
    # 2000 // 4 warm-up rounds and 64 // 4 measured ones, 4 connections each.
    assert access_lines(site) - before == (500 + 16) * 4


def test_plain_answers_the_script(site: Path) -> None:
    # plain_server.py serves the bench database through aiosqlite, as a hand-written app would.
    for module in ("aiosqlite", "jinja2", "mistune", "openpyxl"):
        pytest.importorskip(module)
    done = run(site, "--server", "plain")
    assert done.returncode == 0, done.stderr
    assert "plain:" in done.stdout


def test_without_features_still_answers_and_leaves_out_only_those(site: Path) -> None:
    before = access_lines(site)
    done = run(site, "--server", "ahcore", *[f"--without={f}" for f in (
        "access-log", "response-prepare", "namespace-hooks", "watchdog", "guard")])
    assert done.returncode == 0, done.stderr
    assert access_lines(site) == before  # no access line
    # No security headers: the answer is shorter than with them.
    with_all = run(site, "--server", "ahcore")
    size = {name: int(out.split(", ")[-1].split()[0])
            for name, out in (("bare", done.stdout), ("full", with_all.stdout))}
    assert size["bare"] < size["full"]


def test_an_answer_that_is_not_200_fails_the_measurement(site: Path) -> None:
    done = run(site, "--server", "ahcore", "--path", "/no-such-script.dspy")
    assert done.returncode != 0
    assert "404" in done.stderr
