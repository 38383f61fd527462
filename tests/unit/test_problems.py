"""ahcore.problems called directly: one line a site owner can act on per problem."""

from __future__ import annotations

from pathlib import Path

from ahcore.problems import Problem, as_problems


def test_where_names_file_and_line_relative_to_the_site(tmp_path: Path) -> None:
    inside = tmp_path / "wwwroot" / "x.dspy"
    assert Problem("m", inside, 3).where(tmp_path) == "wwwroot/x.dspy, line 3"
    assert Problem("m", str(inside)).where(tmp_path) == "wwwroot/x.dspy"
    assert Problem("m", inside).where() == str(inside)  # no workdir: as given
    assert Problem("m", "/elsewhere/x.dspy", 1).where(tmp_path) == "/elsewhere/x.dspy, line 1"
    assert Problem("m", "conf/config.json").where(tmp_path) == "conf/config.json"  # relative: as given
    assert Problem("m", line=7).where() == "line 7"
    assert Problem("m").where(tmp_path) == ""


def test_a_sibling_folder_is_not_taken_as_inside(tmp_path: Path) -> None:
    site = tmp_path / "site"
    other = tmp_path / "site2" / "x.py"
    assert Problem("m", other).where(site) == str(other)


def test_render_is_one_line_with_or_without_a_place(tmp_path: Path) -> None:
    assert Problem("'(' was never closed", tmp_path / "a.dspy", 3).render(tmp_path) == (
        "a.dspy, line 3: '(' was never closed"
    )
    assert Problem("set plugins.x.y", line=2).render() == "line 2: set plugins.x.y"
    assert Problem("no place").render(tmp_path) == "no place"


def test_severity() -> None:
    assert Problem("m").is_error and Problem("m").severity == "error"
    assert not Problem("m", severity="warning").is_error


def test_as_problems_takes_every_shape_a_check_may_answer() -> None:
    assert as_problems(None) == []
    assert as_problems([]) == []
    assert as_problems("bad") == [Problem("bad")]
    one = Problem("w", severity="warning")
    assert as_problems(one) == [one]
    assert as_problems(m for m in ["a", "b"]) == [Problem("a"), Problem("b")]
    assert as_problems([one, "e"]) == [one, Problem("e")]


def test_as_problems_fills_in_the_file_only_where_none_is_named() -> None:
    found = as_problems(
        [Problem("w", line=4, severity="warning"), Problem("n", "other.py", 1), "e"], file="x.py"
    )
    assert found == [
        Problem("w", "x.py", 4, "warning"),  # line and severity kept
        Problem("n", "other.py", 1),
        Problem("e", "x.py"),
    ]


def test_problems_are_values() -> None:
    assert Problem("m", "f", 1) == Problem("m", "f", 1)
    assert len({Problem("m"), Problem("m")}) == 1
