"""``ahcore new-plugin``: the generated plugin imports, registers and passes its own tests."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ahcore
from ahcore import ProcessorSpec
from ahcore.cli import main
from ahcore.scaffold import ScaffoldError, validate_name, write_plugin


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    assert main(["new-plugin", "rows", "--dir", str(tmp_path)]) == 0
    return tmp_path / "ahcore_rows"


def import_generated(generated: Path, monkeypatch: pytest.MonkeyPatch):
    """``ahcore_rows.plugin`` from the generated folder, forgotten again after the test."""
    monkeypatch.syspath_prepend(str(generated))
    for mod in [m for m in sys.modules if m.startswith("ahcore_rows")]:
        monkeypatch.delitem(sys.modules, mod)
    plugin = importlib.import_module("ahcore_rows.plugin")
    for mod in [m for m in sys.modules if m.startswith("ahcore_rows")]:
        # Set again as new, so teardown removes it: a later test's scaffold
        # must not find ahcore_rows importable (it would refuse the name).
        monkeypatch.setitem(sys.modules, mod, sys.modules.pop(mod))
    return plugin


def test_files_and_metadata(generated: Path) -> None:
    for rel in (
        "pyproject.toml",
        "README.md",
        "ahcore_rows/__init__.py",
        "ahcore_rows/plugin.py",
        "ahcore_rows/processor.py",
        "tests/test_rows.py",
    ):
        assert (generated / rel).is_file(), rel
    toml = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    meta = toml.loads((generated / "pyproject.toml").read_text())
    project = meta["project"]
    assert project["name"] == "ahcore-rows"
    assert project["version"] == "0.1.0"
    assert project["dependencies"] == [f"ahcore=={ahcore.__version__}"]
    assert project["entry-points"]["ahcore"] == {"rows": "ahcore_rows.plugin"}


def test_generated_module_registers_a_processor(
    generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = import_generated(generated, monkeypatch)
    spec = plugin.register_processor()
    assert isinstance(spec, ProcessorSpec)
    assert (spec.name, spec.suffixes) == ("rows", (".rows",))
    assert issubclass(spec.factory, ahcore.Processor)
    assert hasattr(plugin.register_processor, "ahcore_impl")


async def test_generated_plugin_serves_a_site(
    generated: Path, monkeypatch: pytest.MonkeyPatch, make_site, ahcore_client
) -> None:
    plugin = import_generated(generated, monkeypatch)
    site = make_site(
        config={
            "website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".rows", "rows"]]},
            "plugins": {"rows": True},
        },
        files={"wwwroot/x.rows": "sku,item\nP1,drill\nP2,saw,extra\nP3\n"},
    )
    client = await ahcore_client(site, extra_plugins={"rows": plugin})
    resp = await client.get("/x.rows")
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await resp.json() == [
        {"sku": "P1", "item": "drill"},
        {"sku": "P2", "item": "saw"},
        {"sku": "P3", "item": ""},
    ]
    assert await (await client.get("/x.rows?item=saw")).json() == [{"sku": "P2", "item": "saw"}]


def test_generated_code_imports_only_the_plugin_api(generated: Path) -> None:
    allowed = {"ahcore.api", "ahcore.hookspecs", "ahcore.testing"}
    for source in (generated / "ahcore_rows").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name == "ahcore" or name.startswith("ahcore."):
                    assert name in allowed, f"{source.name} imports {name}"


def run_generated_tests(plugin: Path, test: str) -> subprocess.CompletedProcess[str]:
    """The generated tests, run with this interpreter; the plugin is on PYTHONPATH, not installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plugin), env.get("PYTHONPATH", "")) if p)
    # ahcore.testing is loaded through its pytest11 entry point (the kernel is
    # installed); adding "-p ahcore.testing" as well would register it twice.
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(plugin / "tests" / test), "-q", "-p", "no:cacheprovider"],
        cwd=plugin,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_generated_tests_pass(generated: Path) -> None:
    result = run_generated_tests(generated, "test_rows.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


def test_the_command_writes_a_plugin_whose_tests_pass(tmp_path: Path) -> None:
    """What a newcomer types: ``ahcore new-plugin csv``, then the generated tests."""
    made = subprocess.run(
        [sys.executable, "-m", "ahcore", "new-plugin", "csv", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    plugin = tmp_path / "ahcore_csv"
    assert f"written to {plugin}" in made.stdout
    result = run_generated_tests(plugin, "test_csv.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


def test_names_of_installed_plugins_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The kernel's own SQLite driver is always installed (entry point ahcore: sqlite).
    assert main(["new-plugin", "sqlite", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "'sqlite' is taken by the installed distribution ahcore " in err
    assert list(tmp_path.iterdir()) == []
    if importlib.util.find_spec("ahcore_dspy") is not None:
        assert main(["new-plugin", "dspy", "--dir", str(tmp_path)]) == 1
        assert "installed distribution ahcore-dspy" in capsys.readouterr().err
        assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite(generated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (generated / "ahcore_rows" / "processor.py").read_text()
    assert main(["new-plugin", "rows", "--dir", str(generated.parent)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (generated / "ahcore_rows" / "processor.py").read_text() == before
    with pytest.raises(ScaffoldError):
        write_plugin("rows", generated.parent)


@pytest.mark.parametrize("name", ["9lives", "has-dash", "class", "_private", "dot.ted", "", "ünï"])
def test_bad_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError):
        validate_name(name)
    assert main(["new-plugin", name, "--dir", str(tmp_path)]) == 1
    assert list(tmp_path.iterdir()) == []


def test_class_name_from_snake_case(tmp_path: Path) -> None:
    target = write_plugin("csv_rows", tmp_path, version="1.2.3")
    text = (target / "ahcore_csv_rows" / "processor.py").read_text()
    assert "class CsvRowsProcessor(Processor):" in text
    assert 'dependencies = ["ahcore==1.2.3"]' in (target / "pyproject.toml").read_text()


def test_the_guide_shows_the_generated_code(tmp_path: Path) -> None:
    """docs/writing-a-processor.md walks through what ``new-plugin csv`` writes: they agree."""
    guide = (Path(__file__).parents[1] / "docs" / "writing-a-processor.md").read_text()
    target = write_plugin("csv", tmp_path)
    generated = {
        line.strip()
        for path in target.rglob("*")
        if path.is_file()
        for line in path.read_text().splitlines()
    }
    blocks = re.findall(r"```(?:python|toml)\n(.*?)```", guide, re.S)
    assert len(blocks) >= 6
    for block in blocks:
        if "types.FunctionType" in block:  # ahcore-dspy's code, quoted for comparison
            continue
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                assert line in generated, f"the guide shows {line!r}; the scaffold does not write it"
