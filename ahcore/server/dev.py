"""``ahcore serve --dev``: a parent that restarts the server when its code changes.

What Flask's reloader does: the parent does not serve; it runs the same
command without ``--dev`` (and with ``--livereload``, so the server reloads
open pages when a site file changes: :mod:`ahcore.server.livereload`) as a
child process, watches with the hot reloader's
:class:`~ahcore.hotreload.FileWatcher`

- ``conf/config.json`` (plugins switched on or off, ports, databases…),
- the Python files of the site folder and of every installed plugin (and
  of ahcore itself),
- the folders of ``sys.path``, whose entries change when a distribution is
  installed, upgraded or removed,

and on a change stops the child (gracefully, SIGTERM) and starts it again,
printing one line naming what changed. A child that cannot start because
of its config or a plugin (status 2) is started again on the next change;
one that cannot start for a reason no file change fixes (a busy port,
status 1) ends the parent with that status. SIGINT/SIGTERM stop both.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ahcore.config import CONFIG_RELPATH
from ahcore.hotreload import FileWatcher
from ahcore.plugins import installed_plugins
from ahcore.server.options import ServeOptions

#: Seconds between two looks at the watched files.
INTERVAL = 0.5


def code_folders() -> list[Path]:
    """The package folders of every installed plugin, and of ahcore."""
    names = {"ahcore"} | {
        plugin.entry_point.value.split(":")[0].split(".")[0] for plugin in installed_plugins().values()
    }
    folders: list[Path] = []
    for name in sorted(names):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:
            folders.extend(Path(p) for p in spec.submodule_search_locations)
        elif spec.origin:
            folders.append(Path(spec.origin).parent)
    return folders


class Watched:
    """The three things the parent watches, each with the words it restarts with."""

    def __init__(self, workdir: Path) -> None:
        self.config = FileWatcher(files=[workdir / CONFIG_RELPATH])
        self.code = FileWatcher(trees=[workdir, *code_folders()], suffixes=(".py",))
        self.packages = FileWatcher(
            files=[Path(p) for p in sys.path if p and os.path.isdir(p)]
        )
        self.workdir = workdir

    def changed(self) -> str | None:
        """What changed since the last call, in a few words; None if nothing."""
        if self.config.changed():
            return str(CONFIG_RELPATH)
        paths = self.code.changed()
        if paths:
            path = Path(paths[0])
            shown = path.relative_to(self.workdir) if path.is_relative_to(self.workdir) else path
            return f"{shown}" + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        if self.packages.changed():
            return "the installed packages"
        return None


def say(text: str) -> None:
    print(f"ahcore --dev: {text}", flush=True)


def run_dev(opts: ServeOptions) -> int:
    """Run and re-run the server until SIGINT/SIGTERM; the exit status."""
    command = list(opts.command) or [
        sys.executable, "-m", "ahcore", "serve", "-w", str(opts.workdir), "--livereload",
    ]
    watched = Watched(opts.workdir)
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    say(
        "restarts the server when conf/config.json, Python code or the installed packages "
        "change; open pages reload when a site file changes"
    )
    while not stopping:
        child = subprocess.Popen(command)
        status: int | None = None
        while not stopping:
            time.sleep(INTERVAL)
            what = watched.changed()
            if what is not None:
                say(f"{what} changed; restarting")
                break
            status = child.poll()
            if status is not None:
                break
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(opts.shutdown_timeout + 5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if stopping or status is None:
            continue
        if status == 1:
            return 1  # the port, the certificate: fix the command line, not a file
        say(f"the server stopped (status {status}); fix the problem and save: it restarts")
        while not stopping and watched.changed() is None:
            time.sleep(INTERVAL)
    return 0
