"""The ``ahcore`` command as a site owner runs it: check, serve, serve --strict.

``check`` and ``serve`` must refuse a broken site with the same words, each
problem on one line saying what to do; a processor the site names but this
server lacks is a ``check`` error and a ``--strict`` refusal, not a crash.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ahcore.testing import write_site


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


def test_check_lists_a_processor_this_server_lacks_and_strict_refuses_it(tmp_path):
    site = write_site(
        tmp_path / "site",
        {"website": {"processors": [[".xterm", "xterm"]], "cookie_secret": "x" * 40}},
        {"wwwroot/shell.xterm": "source", "wwwroot/more/two.xterm": "source"},
    )
    check = ahcore("check", "-w", str(site))
    assert check.returncode == 1
    (line,) = [x for x in check.stdout.splitlines() if x.startswith("error:")]
    assert "'.xterm' files need the processor 'xterm'" in line
    assert "answer 501" in line and "'ahcore-xterm'" in line
    assert "[wwwroot/more/two.xterm and 1 more]" in line

    strict = ahcore("serve", "--strict", "-w", str(site), "-p", str(free_port()))
    assert strict.returncode == 2
    assert strict.stderr.startswith("ahcore: --strict: refusing to start: website.processors:")
    assert "'xterm'" in strict.stderr and "Traceback" not in strict.stderr


@pytest.mark.slow
def test_serve_without_strict_starts_and_answers_501(tmp_path):
    site = write_site(
        tmp_path / "site",
        {"website": {"processors": [[".xterm", "xterm"]], "host": "127.0.0.1"}},
        {"wwwroot/shell.xterm": "XTERM-SOURCE", "wwwroot/hello.txt": "hello"},
    )
    # Port 0: the server picks a free port and prints it (no race with other tests).
    proc = subprocess.Popen(
        [sys.executable, "-m", "ahcore", "serve", "-w", str(site), "-p", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends if the server exits
            lines.append(line)
            if line.startswith("ahcore: serving "):
                break
        served = re.search(r"on (http://[^/]+)/", lines[-1])
        assert served, "".join(lines)
        base = served.group(1)
        with urllib.request.urlopen(f"{base}/hello.txt", timeout=10) as r:
            assert r.read() == b"hello"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{base}/shell.xterm", timeout=10)
        body = info.value.read().decode()
        assert info.value.code == 501 and "'xterm'" in body and "XTERM-SOURCE" not in body
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    errors = [x for x in "".join(lines).splitlines() + out.splitlines() if " ERROR " in x]
    assert len(errors) == 1 and "'.xterm' files need the processor 'xterm'" in errors[0]


def test_check_reports_source_files_whose_processor_is_not_enabled(tmp_path):
    """The reported bug: index.tmpl with tmpl installed but not enabled, and check said OK."""
    needs("ahcore_tmpl")
    site = write_site(
        tmp_path / "site",
        {"plugins": {"dspy": True}, "website": {"cookie_secret": "x" * 40}},
        {"wwwroot/index.tmpl": "{{ 1 }}", "wwwroot/api/x.dspy": "return 1\n"},
    )
    check = ahcore("check", "-w", str(site))
    assert check.returncode == 1, check.stdout
    assert (
        'error: ".tmpl" files answer 404: they need the processor "tmpl" of the plugin "tmpl" '
        '(ahcore-tmpl), which is installed but not enabled; add "tmpl": true to the plugins '
        "section [wwwroot/index.tmpl]"
    ) in check.stdout


def test_check_says_what_a_switched_off_plugin_means_without_failing(tmp_path):
    needs("ahcore_md")
    site = write_site(
        tmp_path / "site",
        {"plugins": {"md": False}, "website": {"cookie_secret": "x" * 40}},
        {"wwwroot/README.md": "# notes"},
    )
    check = ahcore("check", "-w", str(site))
    assert check.returncode == 0, check.stdout
    assert 'warning: ".md" files answer 404: their plugin is switched off' in check.stdout


def test_check_looks_into_linked_module_folders_and_skips_special_files(tmp_path):
    needs("ahcore_dspy")
    module = tmp_path / "module"
    module.mkdir()
    (module / "ok.dspy").write_text("return 1\n")
    (module / "bad.dspy").write_text("return (\n")
    site = write_site(
        tmp_path / "site",
        {"website": {"processors": [[".dspy", "dspy"]], "cookie_secret": "x" * 40}},
    )
    (site / "wwwroot" / "mod").symlink_to(module, target_is_directory=True)
    (site / "wwwroot" / "loop").symlink_to(site / "wwwroot", target_is_directory=True)
    os.mkfifo(site / "wwwroot" / "pipe.dspy")  # opening it would hang check
    check = ahcore("check", "-w", str(site), timeout=30)
    assert check.returncode == 1
    errors = [x for x in check.stdout.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: wwwroot/mod/bad.dspy, line 1: "), errors

    cfg = json.loads((site / "conf" / "config.json").read_text())
    cfg["website"]["follow_symlinks"] = False
    write_config(site, cfg)
    assert ahcore("check", "-w", str(site), timeout=30).returncode == 0
