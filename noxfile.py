"""Developer sessions: tests, core, lint, typecheck, demo, bench.

The kernel and every plugin are installed together from local paths in one
pip command: the plugins pin ``ahcore==<version>+ahc``, a local version the
public index cannot serve, so no install can pull the unrelated "ahcore"
distribution from PyPI.

Fast on purpose (the quick start is a newcomer's first minute): virtualenvs
are made and filled by uv when it is installed (``pip install "nox[uv]"``
puts it beside nox), else by virtualenv and pip; a session's virtualenv is
reused, and its install is skipped while nothing it was made from changed
(see :func:`install`); installers show their progress.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:  # nox itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).parent
PLUGINS = sorted(str(p.parent) for p in (ROOT / "plugins").glob("*/pyproject.toml"))
STAMP = ".ahcore-install-stamp"

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "uv|virtualenv"


def build_requires(*folders: str | Path) -> tuple[str, ...]:
    """What the ``[build-system] requires`` of these distributions name, together."""
    wanted: set[str] = set()
    for folder in folders:
        with open(Path(folder) / "pyproject.toml", "rb") as fh:
            wanted.update(tomllib.load(fh).get("build-system", {}).get("requires", []))
    return tuple(sorted(wanted))


def install_stamp(session: nox.Session, steps: tuple[tuple[str, ...], ...]) -> str:
    """A digest of everything an install depends on: arguments, every pyproject.toml, Python.

    The kernel and plugins are installed editable, so a change to their code
    needs no new install; a change to what they declare (dependencies,
    entry points, a new plugin folder) changes a ``pyproject.toml`` or the
    arguments, and so the digest.
    """
    digest = hashlib.sha256()
    digest.update(repr((steps, sys.version, session.python, session.venv_backend)).encode())
    for pyproject in [ROOT / "pyproject.toml", *(Path(p) / "pyproject.toml" for p in PLUGINS)]:
        digest.update(str(pyproject.relative_to(ROOT)).encode() + b"\0")
        digest.update(pyproject.read_bytes() + b"\0")
    return digest.hexdigest()


def install(session: nox.Session, *steps: tuple[str, ...]) -> None:
    """``session.install(*step)`` for each step, skipped when this virtualenv already has them.

    The stamp lives inside the virtualenv, so a fresh one (``nox -N``, or
    ``rm -rf .nox``) always installs. ``nox -R`` (reuse and skip installs)
    still works as nox documents it.
    """
    location = getattr(session.virtualenv, "location", None)
    stamp_file = Path(location) / STAMP if location else None
    stamp = install_stamp(session, steps)
    if stamp_file is not None and stamp_file.is_file() and stamp_file.read_text() == stamp:
        session.log("dependencies up to date (no pyproject.toml changed): install skipped")
        return
    session.log(
        "installing (the installer shows its progress; a first run downloads the "
        "dependencies: seconds with uv, a minute or more with pip)"
    )
    for step in steps:
        session.install(*step, silent=False)
    if stamp_file is not None:
        stamp_file.write_text(stamp)


def install_all(session: nox.Session, *extra: str) -> None:
    """The kernel (with its test extras) and every plugin under plugins/, editable.

    Their build backends (``[build-system] requires``) are installed first
    and the editable builds run without build isolation: each isolated build
    would make a virtualenv of its own with setuptools in it, about 40 % of
    the first run's CPU time.
    """
    args = ["--no-build-isolation", "-e", ".[testing]"]
    for plugin in PLUGINS:
        args += ["-e", plugin]
    install(session, build_requires(ROOT, *PLUGINS), (*args, *extra))


@nox.session
def tests(session: nox.Session) -> None:
    """Kernel and all plugins installed together; the whole suite.

    Browser tests drive Debian's chromium (installed by their setup when
    missing) through Playwright's Python package; no browser is downloaded.
    """
    install_all(session, "playwright")
    session.run("python", "-m", "pytest", *(session.posargs or ["-q"]))


@nox.session
def core(session: nox.Session) -> None:
    """The kernel installed alone: proves it imports no plugin and its tests pass."""
    install(session, build_requires(ROOT), ("--no-build-isolation", "-e", ".[testing]"))
    session.run(
        "python", "-c",
        "import importlib.metadata as m; "
        "assert not [d for d in m.distributions() if d.metadata['Name'].startswith('ahcore-')]",
    )
    session.run("python", "-m", "pytest", "tests", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the architecture contracts of pyproject.toml with import-linter.

    The contracts: plugins import only ``ahcore.api``, ``ahcore.hookspecs``
    and ``ahcore.testing``; the kernel imports no plugin; no import cycle
    between kernel modules. import-linter reads the installed packages, so
    the kernel and every plugin are installed here.
    """
    install_all(session, "ruff", "import-linter")
    paths = [p for p in ("ahcore", "plugins", "tests", "bench", "examples", "noxfile.py") if (ROOT / p).exists()]
    session.run("ruff", "check", *paths)
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """``mypy --strict`` on the kernel and every plugin package (CI runs it)."""
    install_all(session, "mypy")
    packages = sorted(
        str(p.parent)
        for p in (ROOT / "plugins").glob("*/*/__init__.py")
        if p.parent.name != "tests" and not p.parent.name.endswith(".egg-info")
    )
    session.run("mypy", "--strict", "ahcore", *packages)


@nox.session
def demo(session: nox.Session) -> None:
    """Install everything and serve examples/demo (SQLite, nothing else needed)."""
    install_all(session)
    session.run("python", "examples/demo/seed.py")
    port = os.environ.get("PORT", "8080")
    session.run("ahcore", "serve", "-w", "examples/demo", "-p", port, *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """ahcore against plain aiohttp doing the same work; prints ratios, then draws the chart.

    ``nox -s bench -- --quick`` is a smoke run; ``-- --compare`` adds ahserver
    1.2.0, Datasette and Starlette columns (their venvs are built once). The chart is
    drawn by ``bench_chart``, queued here, in a venv of its own.
    """
    install_all(session, "aiosqlite")  # the plain server's hand-written SQLite handler
    session.notify("bench_chart", posargs=[])
    session.run("python", "bench/run.py", *session.posargs)


@nox.session(name="bench_chart")
def bench_chart(session: nox.Session) -> None:
    """The PNG of the last bench run's ratios (``bench/chart.py``), with matplotlib.

    matplotlib stays out of the servers' venv, and out of the kernel's
    dependencies: it brings numpy, which openpyxl imports whenever it is
    installed, and every worker would then carry about 20 MB more.
    """
    install(session, ("matplotlib",))
    session.run("python", "bench/chart.py", *session.posargs)
