"""The optional comparison servers of ``bench/run.py --compare``.

Each lives in its own virtual environment under the cache folder (default
``~/.cache/ahcore-bench``), built once with pip from the package index and
reused afterwards:

- ``ahserver-1.2.0``: ahserver 1.2.0, the server ahcore replaces, with the
  packages it imports but does not declare (``apppublic``, ``sqlor``);
- ``datasette-0.65.5``: Datasette with uvloop and httptools (uvicorn's fast
  path), serving the bench database's two queries as canned queries;
- ``starlette-1.10.0``: a Starlette app on uvicorn 0.54.0, also with uvloop and
  httptools, for the JSON endpoint and the static file.

Nothing here raises for a server that cannot be had: ``prepare_*`` return
``(python, None)`` or ``(None, reason)`` and the bench prints ``n/a`` with the
reason.
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

AHSERVER_REQS = ["ahserver==1.2.0", "apppublic==5.3.2", "sqlor==2.1.2"]
# sqlor.sqliteor itself imports a module the wheel lacks; the launcher shims it.
AHSERVER_CHECK = "import ahserver.webapp, sqlor.ddl_template_sqlite3"
DATASETTE_REQS = ["datasette==0.65.5", "uvloop", "httptools"]
DATASETTE_CHECK = "import datasette.app, uvicorn"
STARLETTE = "1.10.0"
UVICORN = "0.54.0"
STARLETTE_REQS = [f"starlette=={STARLETTE}", f"uvicorn=={UVICORN}", "uvloop", "httptools"]
STARLETTE_CHECK = "import starlette.staticfiles, uvicorn, uvloop, httptools"


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ahcore-bench"


def _python(env: Path) -> Path:
    return env / "bin" / "python"


def _works(env: Path, check: str) -> bool:
    py = _python(env)
    if not py.exists():
        return False
    return subprocess.run([str(py), "-c", check], capture_output=True, timeout=120).returncode == 0


def _prepare(cache: Path, name: str, reqs: list[str], check: str) -> tuple[Path | None, str | None]:
    env = cache / name
    if _works(env, check):
        return _python(env), None
    log = cache / f"{name}.pip.log"
    print(f"compare: building {env} with pip ({' '.join(reqs)}); log in {log}", flush=True)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
        with open(log, "wb") as fh:
            rc = subprocess.call(
                [str(_python(env)), "-m", "pip", "install", "--disable-pip-version-check", *reqs],
                stdout=fh, stderr=subprocess.STDOUT, timeout=900,
            )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not build its venv: {exc}"
    if rc != 0:
        tail = _tail(log)
        return None, f"pip install failed (exit {rc}): {tail}"
    if not _works(env, check):
        return None, f"installed but does not import ({check!r}); see {log}"
    return _python(env), None


def _tail(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines()
                 if ln.strip() and not ln.startswith("WARNING")]
    except OSError:
        return "no log"
    return lines[-1][:200] if lines else "no output"


def prepare_ahserver(cache: Path) -> tuple[Path | None, str | None]:
    """The venv's python for ahserver 1.2.0, or None and why not."""
    return _prepare(cache, "ahserver-1.2.0", AHSERVER_REQS, AHSERVER_CHECK)


def prepare_datasette(cache: Path) -> tuple[Path | None, str | None]:
    """The venv's python for Datasette, or None and why not."""
    return _prepare(cache, "datasette-0.65.5", DATASETTE_REQS, DATASETTE_CHECK)


def prepare_starlette(cache: Path) -> tuple[Path | None, str | None]:
    """The venv's python for Starlette on uvicorn, or None and why not."""
    return _prepare(cache, f"starlette-{STARLETTE}", STARLETTE_REQS, STARLETTE_CHECK)
