"""The ``ahcore`` command as a site owner runs it: check and serve.

``check`` and ``serve`` must refuse a broken site with the same words, each
problem on one line saying what to do.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def ahcore(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ahcore", *args], capture_output=True, text=True, timeout=timeout
    )


def needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"needs {module}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(site: Path, cfg: object) -> None:
    (site / "conf").mkdir(parents=True, exist_ok=True)
    text = cfg if isinstance(cfg, str) else json.dumps(cfg)
    (site / "conf" / "config.json").write_text(text)


BROKEN = {
    "missing root": (
        {"website": {"paths": [["$[workdir]$/wwwroot", ""], ["$[workdir]$/gone", "/g"]]}},
        "website.paths[1]: the content root {site}/gone does not exist; create it or correct the path",
    ),
    "invalid json": (
        '{"website": {"paths": [["$[workdir]$/wwwroot", ""]],}}',
        "{site}/conf/config.json, line 1, column 53: not valid JSON (trailing comma in object)",
    ),
    "no paths": (
        {"website": {"port": 8080}},
        'website.paths: required key is missing; list the content roots, e.g. "paths": '
        '[["$[workdir]$/wwwroot", ""]]',
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_check_and_serve_refuse_a_broken_site_with_the_same_one_line(tmp_path, case):
    cfg, expected = BROKEN[case]
    site = tmp_path / "site"
    (site / "wwwroot").mkdir(parents=True)
    write_config(site, cfg)
    problem = expected.format(site=site)

    check = ahcore("check", "-w", str(site))
    assert check.returncode == 1
    assert f"error: {problem}\n" in check.stdout, check.stdout

    serve = ahcore("serve", "-w", str(site), "-p", str(free_port()))
    assert serve.returncode == 2
    assert serve.stderr == f"ahcore: cannot start: {problem}\n"
    for out in (check, serve):
        assert "Traceback" not in out.stdout + out.stderr
