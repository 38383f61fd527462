"""``ahcore new-plugin``: the generated plugin imports, registers and passes its own tests."""

from __future__ import annotations

import importlib
import os
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


def test_files_and_metadata(generated: Path) -> None:
    for rel in (
        "pyproject.toml",
        "README.md",
        "ahcore_rows/__init__.py",
        "ahcore_rows/plugin.py",
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
    monkeypatch.syspath_prepend(str(generated))
    for mod in [m for m in sys.modules if m.startswith("ahcore_rows")]:
        monkeypatch.delitem(sys.modules, mod)
    plugin = importlib.import_module("ahcore_rows.plugin")
    spec = plugin.register_processor()
    assert isinstance(spec, ProcessorSpec)
    assert (spec.name, spec.suffixes) == ("rows", (".rows",))
    assert issubclass(spec.factory, ahcore.Processor)
    assert hasattr(plugin.register_processor, "ahcore_impl")


async def test_generated_plugin_serves_a_site(
    generated: Path, monkeypatch: pytest.MonkeyPatch, make_site, ahcore_client
) -> None:
    monkeypatch.syspath_prepend(str(generated))
    for mod in [m for m in sys.modules if m.startswith("ahcore_rows")]:
        monkeypatch.delitem(sys.modules, mod)
    plugin = importlib.import_module("ahcore_rows.plugin")
    site = make_site(
        config={
            "website": {"paths": [["$[workdir]$/wwwroot", ""]], "processors": [[".rows", "rows"]]},
            "plugins": {"rows": True},
        },
        files={"wwwroot/x.rows": "a\nb\n"},
    )
    client = await ahcore_client(site, extra_plugins={"rows": plugin})
    resp = await client.get("/x.rows")
    assert await resp.json() == {"file": "/x.rows", "count": 2, "lines": ["a", "b"]}


def test_generated_tests_pass(generated: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(generated), env.get("PYTHONPATH", "")) if p
    )
    # ahcore.testing is loaded through its pytest11 entry point (the kernel is
    # installed); adding "-p ahcore.testing" as well would register it twice.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(generated / "tests" / "test_rows.py"), "-q"],
        cwd=generated,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_refuses_to_overwrite(generated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (generated / "ahcore_rows" / "plugin.py").read_text()
    assert main(["new-plugin", "rows", "--dir", str(generated.parent)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (generated / "ahcore_rows" / "plugin.py").read_text() == before
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
    text = (target / "ahcore_csv_rows" / "plugin.py").read_text()
    assert "class CsvRowsProcessor(Processor):" in text
    assert 'dependencies = ["ahcore==1.2.3"]' in (target / "pyproject.toml").read_text()
