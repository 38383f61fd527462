"""ahcore.checks and ahcore.problems: the check_settings hook and Processor.check().

A third-party plugin, supplied in-process, takes part in ``ahcore check``
and in start-up exactly as the built-in ones do: its settings problems stop
``create_app`` (what ``ahcore serve`` runs) and its files' problems come
back with their line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ahcore import hookimpl
from ahcore.api import Problem, Processor, ProcessorSpec
from ahcore.app import SETTINGS_PROBLEMS, START_WARNINGS, create_app
from ahcore.appkeys import get_site
from ahcore.checks import file_problems
from ahcore.config import typo_warnings
from ahcore.plugins import PluginError
from ahcore.problems import as_problems


class CsvProcessor(Processor):
    """The example of docs/plugins.md: a row of the wrong width is a problem at its line."""

    async def load(self) -> None:
        self.bad_line: int | None = None
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            if line.count(",") != 2 and self.bad_line is None:
                self.bad_line = number

    async def check(self) -> list[Problem]:
        if self.bad_line is None:
            return []
        return [Problem("expected 3 columns; fix the row or remove it", self.path, self.bad_line)]


class CsvPlugin:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def register_processor(self) -> ProcessorSpec:
        return ProcessorSpec("csv", (".csv",), CsvProcessor)

    @hookimpl
    def check_settings(self, name: str, settings: Mapping[str, Any]) -> list[Problem | str]:
        self.calls.append((name, dict(settings)))
        found: list[Problem | str] = []
        limit = settings.get("limit", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            found.append(f"plugins.{name}.limit: expected a positive integer, got {limit!r}")
        if settings.get("legacy"):
            found.append(Problem(f"plugins.{name}.legacy is deprecated", severity="warning"))
        return found


class Broken:
    @hookimpl
    def check_settings(self) -> None:
        raise KeyError("oops")


class Async:
    @hookimpl
    async def check_settings(self) -> list[str]:
        return ["never seen"]


def test_settings_errors_stop_create_app_with_the_plugins_line(make_app) -> None:
    plugin = CsvPlugin()
    with pytest.raises(PluginError) as info:
        make_app({"plugins": {"csv": {"limit": 0}}}, plugins={"csv": plugin})
    assert info.value.problems == ["plugins.csv.limit: expected a positive integer, got 0"]
    assert plugin.calls == [("csv", {"limit": 0})]  # its own name and settings, once


def test_settings_warnings_do_not_stop_start_up_and_are_logged_at_start(make_app) -> None:
    plugin = CsvPlugin()
    app = make_app(
        {"website": {"prot": 1}, "plugins": {"csv": {"legacy": True}}}, plugins={"csv": plugin}
    )
    assert app[START_WARNINGS] == [
        "plugins.csv.legacy is deprecated",
        'website.prot: unknown key, ignored by ahcore; did you mean "port"? (rename it, or '
        "keep it if it is your own setting)",
    ]


def test_a_plugin_enabled_with_true_gets_empty_settings(make_app) -> None:
    plugin = CsvPlugin()
    make_app({"plugins": {"csv": True}}, plugins={"csv": plugin})
    assert plugin.calls == [("csv", {})]


def test_for_check_the_problems_are_kept_and_the_app_still_built(make_app) -> None:
    app = make_app(
        {"plugins": {"csv": {"limit": "ten"}}}, plugins={"csv": CsvPlugin()}, check_settings=False
    )
    assert [p.render() for p in app[SETTINGS_PROBLEMS]] == [
        "plugins.csv.limit: expected a positive integer, got 'ten'"
    ]


def test_a_failing_or_async_hook_is_reported_as_the_plugins_bug(make_app) -> None:
    with pytest.raises(PluginError) as info:
        make_app(
            {"plugins": {"broken": True, "async": True}},
            plugins={"broken": Broken(), "async": Async()},
        )
    assert sorted(info.value.problems) == [
        "plugins.async: the plugin's check_settings hook failed (TypeError: check_settings "
        "must be synchronous); this is a bug of the plugin",
        "plugins.broken: the plugin's check_settings hook failed (KeyError: 'oops'); this is "
        "a bug of the plugin",
    ]


def test_processor_check_reports_the_file_and_line(make_app) -> None:
    app = make_app(
        {"plugins": {"csv": True}},
        files={
            "wwwroot/good.csv": "a,b,c\n1,2,3\n",
            "wwwroot/data/people.csv": "id,name,age\n1,ann,3\n2,bob\n",
            "wwwroot/_partial.csv": "x\n",
        },
        plugins={"csv": CsvPlugin()},
    )
    site = get_site(app)
    found = file_problems(site)
    assert [p.render(site.workdir) for p in found] == [
        "wwwroot/_partial.csv, line 1: expected 3 columns; fix the row or remove it",
        "wwwroot/data/people.csv, line 3: expected 3 columns; fix the row or remove it",
    ]


class Flaky(Processor):
    async def load(self) -> None:
        raise ValueError(f"{self.path}, line 4: unknown directive 'frob'")


class ErrorOnly(Processor):
    async def load(self) -> None:
        self.error = f"cannot compile {self.path}, line 2: bad token"


def test_load_errors_and_the_default_check_name_the_line_without_the_absolute_path(
    make_app,
) -> None:
    class Plugin:
        @hookimpl
        def register_processor(self) -> list[ProcessorSpec]:
            return [ProcessorSpec("flaky", (".fl",), Flaky), ProcessorSpec("eo", (".eo",), ErrorOnly)]

    app = make_app(
        {"plugins": {"p": True}},
        files={"wwwroot/a.fl": "x", "wwwroot/b.eo": "y", "wwwroot/c.fl.txt": "static"},
        plugins={"p": Plugin()},
    )
    site = get_site(app)
    assert [p.render() for p in file_problems(site)] == [
        "wwwroot/a.fl, line 4: unknown directive 'frob'",
        "wwwroot/b.eo, line 2: cannot compile: bad token",
    ]


def test_problem_rendering(tmp_path: Path) -> None:
    assert Problem("m").render() == "m"
    assert Problem("m", tmp_path / "w" / "x.dspy", 3).render(tmp_path) == "w/x.dspy, line 3: m"
    assert Problem("m", "/elsewhere/x.dspy").render(tmp_path) == "/elsewhere/x.dspy: m"
    assert not Problem("m", severity="warning").is_error
    assert as_problems(None) == []
    assert as_problems("e", file="f") == [Problem("e", "f")]
    assert as_problems([Problem("w", "g", 2)], file="f") == [Problem("w", "g", 2)]


def test_near_misses_are_found_at_every_level_and_own_keys_are_left_alone() -> None:
    raw = {
        "website": {"paths": [["/x", ""]], "ssl": {"crtfil": "a", "keyfile": "b"}},
        "databases": {"m": {"driver": "sqlite", "maxcon": 2}},
        "hot_reload": {"intervall": 2},
        "upload": {},
        "shop": {"prot": 1},  # inside a site's own section: not ours to judge
        "logger": {"level": "info", "levelname": "info"},  # the real key is there too
    }
    assert [w.split(":")[0] for w in typo_warnings(raw)] == [
        "website.ssl.crtfil",
        "databases.m.maxcon",
        "hot_reload.intervall",
        "upload",
    ]


def test_the_docs_example_runs_under_check(tmp_path: Path) -> None:
    """The same plugin through the whole of ``ahcore check`` minus the process."""
    from ahcore.testing import write_site

    site_dir = write_site(
        tmp_path / "s",
        {"plugins": {"csv": {"limit": 0}}},
        {"wwwroot/data/people.csv": "id,name,age\n" * 6 + "7,eve\n"},
    )
    app = create_app(site_dir, extra_plugins={"csv": CsvPlugin()}, check_settings=False)
    site = get_site(app)
    lines = [p.render(site.workdir) for p in [*app[SETTINGS_PROBLEMS], *file_problems(site)]]
    assert lines == [
        "plugins.csv.limit: expected a positive integer, got 0",
        "wwwroot/data/people.csv, line 7: expected 3 columns; fix the row or remove it",
    ]
