"""``ahcore check``: every problem of a site, found without serving it.

What is checked, in order:

1. the config (types, values, content roots; near-miss keys are warnings);
2. the plugins it enables, and each one's settings through the
   ``check_settings`` hook (the same hook stops ``ahcore serve``, see
   :meth:`ahcore.site.Site.settings_problems`);
3. every file of every root that a processor serves, partials included:
   the processor is built and loaded as a request would, and its
   :meth:`~ahcore.processor.Processor.check` says what is wrong, with the
   line;
4. files not served because their processor is missing or not enabled.

Each problem is one line naming the file (relative to the site folder), the
line when known, and what to do. Any error makes the command exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ahcore.config import ConfigError, load_config, typo_warnings
from ahcore.plugins import PluginError, disabled_plugins, install_advice
from ahcore.problems import Problem, as_problems

if TYPE_CHECKING:
    from ahcore.resolver import Resolved
    from ahcore.site import Site


def run_check(workdir: Path) -> int:
    """Print every problem of the site in ``workdir``; 1 if any is an error, else 0."""
    problems = site_problems(workdir)
    errors = [p for p in problems if p.is_error]
    for p in problems:
        if not p.is_error:
            print(f"warning: {_shown(p, workdir)}")
    for p in errors:
        print(f"error: {_shown(p, workdir)}")
    if errors:
        print(f"{len(errors)} problem(s) found in {workdir}")
        return 1
    print(f"{workdir}: OK")
    return 0


def _shown(problem: Problem, workdir: Path) -> str:
    """The line for ``problem``; a file's problem names other site files relative too.

    Problems without a file are config and settings problems: worded exactly
    as ``ahcore serve`` refuses to start with them.
    """
    text = problem.render(workdir)
    return text if problem.file is None else text.replace(os.path.join(workdir, ""), "")


def site_problems(workdir: Path) -> list[Problem]:
    """Every problem ``ahcore check`` reports for the site in ``workdir``."""
    from ahcore.app import SETTINGS_PROBLEMS, create_app
    from ahcore.appkeys import get_site
    from ahcore.session import weak_secret_problem

    found: list[Problem] = []
    try:
        config = load_config(workdir)
    except ConfigError as exc:
        return [Problem(p) for p in exc.problems]
    found.extend(Problem(w, severity="warning") for w in typo_warnings(config.raw))
    if not config.website.cookie_secret:
        found.append(
            Problem(
                "website.cookie_secret is not set: a random secret will be generated and "
                "kept in conf/.session_secret (sessions are not shared between machines)",
                severity="warning",
            )
        )
    # The same words `ahcore serve` stops with (checked here so the rest goes on).
    weak = weak_secret_problem(config)
    if weak is not None:
        found.append(Problem(weak))
    try:
        app = create_app(workdir, config=config, check_secret=False, check_settings=False)
    except (ConfigError, PluginError) as exc:
        return found + [Problem(p) for p in exc.problems]
    site = get_site(app)
    # An installed plugin that is broken: the site could serve a processor's source.
    found.extend(Problem(w) for w in site.plugin_warnings)
    settings: list[Problem] = app[SETTINGS_PROBLEMS]
    found.extend(settings)
    # A file whose processor reads the same broken setting fails to load with
    # the same words: said once is enough.
    said = {p.message for p in settings}
    found.extend(p for p in file_problems(site) if p.message.split(": ", 1)[-1] not in said)
    return found


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No log output while files are loaded: what a load logs, ``check`` reports."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def file_problems(site: Site) -> list[Problem]:
    """Look up every file as a request would; load and check each processor file once.

    Compiles scripts and templates and parses data sources (partials too),
    and reports, one line per suffix, files that answer 404 or 501 because
    their processor is missing or not enabled (never their source).
    """
    from ahcore.resolver import RedirectToSlash

    found: list[Problem] = []
    unserved: dict[str, list[str]] = {}  # suffix -> files that answer 404 or 501
    to_load: list[tuple[str, Resolved]] = []
    for root in site.roots:
        for segments, real in site.resolver.walk(root):
            try:
                resolved = site.resolver.resolve(segments, False)
            except RedirectToSlash:
                continue
            shown = os.path.relpath(
                os.path.join(root.folder, *segments[len(root.prefix) :]), site.workdir
            )
            if resolved is not None and os.fspath(resolved.path) != real:
                continue  # shadowed by a file of an earlier root
            if resolved is None:
                suffix = _claimed_suffix(site, os.path.basename(real))
                if suffix is not None:
                    unserved.setdefault(suffix, []).append(shown)
            elif resolved.suffix in site.gaps:
                unserved.setdefault(resolved.suffix, []).append(shown)
            elif resolved.spec is not None:
                to_load.append((shown, resolved))
    with _quiet():
        found.extend(asyncio.run(_load_processors(site, to_load)))
    for gap in site.gaps.values():
        line = gap.message + _files_note(unserved.pop(gap.suffix, []))
        found.append(Problem(line, severity="warning" if gap.deliberate else "error"))
    for suffix, paths in sorted(unserved.items()):
        is_error, text = _unserved_advice(site, suffix)
        if text:
            found.append(
                Problem(text + _files_note(paths), severity="error" if is_error else "warning")
            )
    return found


async def _load_processors(site: Site, found: list[tuple[str, Resolved]]) -> list[Problem]:
    problems: list[Problem] = []
    for shown, resolved in found:
        assert resolved.spec is not None
        real = os.fspath(resolved.path)
        try:
            processor = resolved.spec.factory(resolved.path, site)
            await processor.load()
            checked = as_problems(await processor.check(), file=real)
        except Exception as exc:
            text = str(exc) or type(exc).__name__
            located = _located(real, shown, text)
            if located.line is None and not text.startswith(real):
                located = Problem(f"{type(exc).__name__}: {located.message}", shown)
            problems.append(located)
            continue
        for problem in checked:
            if problem.file is not None and os.fspath(problem.file) == real:
                if problem.line is None:  # a message that may name the file and line itself
                    found_at = _located(real, shown, problem.message)
                    problem = Problem(found_at.message, shown, found_at.line, problem.severity)
                else:
                    problem = Problem(problem.message, shown, problem.line, problem.severity)
            problems.append(problem)
    return problems


def _located(real: str, shown: str, text: str) -> Problem:
    """A message that names the file (``PATH, line 3: ...``, ``cannot compile PATH: ...``)
    as a problem of ``shown`` at that line, the path taken out of the text."""
    match = re.search(re.escape(real) + r"(?:, line (\d+))?(, column \d+)?(?::\s*|$)", text)
    if match is None:
        return Problem(text, shown)
    before = text[: match.start()].rstrip(" ,:")
    after = text[match.end() :]
    if match.group(2):
        after = f"{after} at {match.group(2).lstrip(', ')}"
    message = f"{before}: {after}" if before and after else (before or after or text)
    return Problem(message, shown, int(match.group(1)) if match.group(1) else None)


def _files_note(paths: list[str]) -> str:
    if not paths:
        return ""
    more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
    return f" [{paths[0]}{more}]"


def _claimed_suffix(site: Site, name: str) -> str | None:
    """The longest never-raw suffix of ``name`` (lower case): why the file is not served."""
    lower = name.lower()
    found = [s for s in site.never_raw if lower.endswith(s) and len(lower) > len(s)]
    return max(found, key=len) if found else None


def _unserved_advice(site: Site, suffix: str) -> tuple[bool, str]:
    """(is it an error, what to tell the owner) for files not served because of ``suffix``."""
    config = site.config
    quoted = json.dumps(suffix)
    for spec in site.specs.values():
        if suffix in (s.lower() for s in spec.suffixes):
            pair = json.dumps([suffix, spec.name])
            return True, (
                f"{quoted} files answer 404: the processor {json.dumps(spec.name)} is enabled "
                f"but website.processors does not map {quoted}; add {pair} to website.processors"
            )
    for offer in site.offers:
        if suffix not in (s.lower() for s in offer.suffixes):
            continue
        plugin = json.dumps(offer.plugin)
        if offer.plugin in disabled_plugins(config):
            return False, (
                f"{quoted} files answer 404: their plugin is switched off ({plugin}: false "
                "in the plugins section)"
            )
        pair = json.dumps([suffix, offer.processor])
        if config.plugins is None:
            how = f"add {pair} to website.processors"
        else:
            how = f"add {plugin}: true to the plugins section"
            if config.website.processors is not None:
                how += f" and {pair} to website.processors"
        return True, (
            f"{quoted} files answer 404: they need the processor {json.dumps(offer.processor)} "
            f"of the plugin {plugin} ({offer.distribution}), which is installed but not "
            f"enabled; {how}"
        )
    if suffix in (".py", ".pyc"):
        return False, ""  # Python modules beside the pages: never served, nothing to do
    return False, (
        f"{quoted} files are never served (their source is not sent raw) and no installed "
        f"plugin processes them; to run them, {install_advice(suffix.lstrip('.'))}"
    )
