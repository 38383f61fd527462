"""What ``ahcore check`` reports: one :class:`Problem` per broken file or setting.

A plugin returns problems from its ``check_settings`` hook and from
:meth:`ahcore.api.Processor.check`; a plain string is shorthand for an
error without a location. The kernel renders each as one line a site owner
can act on: ``wwwroot/bad.dspy, line 3: '(' was never closed; ...``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One problem found by a check.

    ``message`` says what is wrong and what to do about it (``expected a
    positive number of seconds, got -1; set plugins.dspy.time_limit to
    ...``). ``file`` and ``line`` say where, when the problem is in a file
    (``line`` counts from 1). An ``"error"`` makes ``ahcore check`` exit
    non-zero (and, from ``check_settings``, stops ``ahcore serve``); a
    ``"warning"`` is only reported.
    """

    message: str
    file: str | Path | None = None
    line: int | None = None
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def where(self, workdir: Path | None = None) -> str:
        """``wwwroot/x.dspy, line 3`` (relative to ``workdir`` when inside it), or ``""``."""
        if self.file is None:
            return f"line {self.line}" if self.line is not None else ""
        shown = os.fspath(self.file)
        if workdir is not None and os.path.isabs(shown):
            rel = os.path.relpath(shown, workdir)
            if not rel.startswith(".."):
                shown = rel
        return shown + (f", line {self.line}" if self.line is not None else "")

    def render(self, workdir: Path | None = None) -> str:
        """The one line shown to the site owner."""
        where = self.where(workdir)
        return f"{where}: {self.message}" if where else self.message


def as_problems(
    found: Iterable[Problem | str] | Problem | str | None, *, file: str | Path | None = None
) -> list[Problem]:
    """A check's answer as a list of problems.

    ``None`` is none, a string is an error, one :class:`Problem` is a list
    of one. ``file`` is filled in where a problem names no file (the file
    being checked).
    """
    if found is None:
        return []
    items: Iterable[Problem | str] = (
        [found] if isinstance(found, (Problem, str)) else found
    )
    out = []
    for item in items:
        problem = item if isinstance(item, Problem) else Problem(str(item))
        if file is not None and problem.file is None:
            problem = Problem(problem.message, file, problem.line, problem.severity)
        out.append(problem)
    return out
