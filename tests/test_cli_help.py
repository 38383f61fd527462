"""``ahcore --version``, ``--help`` and a bare ``ahcore`` as a newcomer types them."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

from ahcore.cli import COMMANDS


def ahcore(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ahcore", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


#: What must never reach a terminal: reStructuredText and unformatted argparse leftovers.
RAW_MARKUP = re.compile(r"``|`[^`\s]+`|%\(\w+\)s|:(func|class|mod|meth):")


def test_version_names_ahcore_and_every_installed_plugin() -> None:
    result = ahcore("--version")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"ahcore {version('ahcore')}"
    for ep in entry_points(group="ahcore"):
        assert ep.dist is not None
        assert any(
            line.startswith(f"  {ep.dist.name} {ep.dist.version} (plugin") and ep.name in line
            for line in lines
        ), (ep.name, result.stdout)


def test_help_lists_every_command_including_plugin_commands() -> None:
    pytest.importorskip("ahcore_rbac", reason="lists rbac's command (not in the kernel-only session)")
    result = ahcore("--help")
    assert result.returncode == 0
    listed = re.findall(r"^    (\S+)", result.stdout, re.M)
    plugin_commands = [ep.name for ep in entry_points(group="ahcore.commands")]
    assert "rbac" in plugin_commands  # ahcore-rbac is installed in the test environment
    assert set(listed) >= set(COMMANDS) | set(plugin_commands)
    assert "--version" in result.stdout
    assert "rbac      Manage a site's users, roles, path rules and API keys" in result.stdout


@pytest.mark.parametrize(
    "command", [[], *[[c] for c in COMMANDS], ["rbac"], ["rbac", "addperm"], ["rbac", "adduser"]]
)
def test_no_help_shows_raw_markup(command: list[str]) -> None:
    result = ahcore(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ")
    assert not RAW_MARKUP.search(result.stdout), result.stdout


def test_bare_ahcore_in_an_empty_folder_suggests_init(tmp_path: Path) -> None:
    result = ahcore(cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"ahcore: no site in {tmp_path} (conf/config.json not found): write a starter site "
        "with: ahcore init ., then serve it with: ahcore serve -w ."
    ]


def test_a_folder_with_other_files_gets_the_same_advice_with_a_new_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = ahcore("serve", "-w", str(tmp_path))
    assert result.returncode == 2
    assert "write a starter site with: ahcore init DIR, then serve it with: ahcore serve -w DIR" in (
        result.stderr
    )
