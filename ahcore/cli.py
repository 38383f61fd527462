"""The ``ahcore`` command: serve, check, plugins, init, new-plugin.

``ahcore -w DIR -p PORT`` (no sub-command) is ``ahcore serve``, so ahserver's
command lines keep working.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from importlib.metadata import EntryPoint, entry_points
from importlib.resources import files
from pathlib import Path

from ahcore.config import ConfigError, load_config
from ahcore.plugins import PluginError

COMMANDS = ("serve", "check", "plugins", "init", "new-plugin")


def _workdir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workdir", default=os.getcwd(), help="site folder (default: .)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ahcore", description=__doc__)
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="serve a site")
    _workdir_args(serve)
    serve.add_argument("-p", "--port", type=int, help="port (default: website.port)")
    serve.add_argument("--host", help="address to bind (default: website.host)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument("--debug", action="store_true", help="tracebacks in 500 pages")
    serve.add_argument(
        "--shutdown-timeout", type=float, default=30.0, help="seconds to finish in-flight requests"
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        help="refuse to start when a processor named in website.processors is missing or "
        "not enabled, or an installed plugin is broken (otherwise logged, and those files "
        "answer 501 or 404)",
    )

    check = sub.add_parser("check", help="validate a site's config and files")
    _workdir_args(check)

    plugins = sub.add_parser("plugins", help="list installed plugins")
    plugins.add_argument("-w", "--workdir", help="also show which the site enables")

    init = sub.add_parser("init", help="write a starter site")
    init.add_argument("dir", help="folder to create")

    new_plugin = sub.add_parser("new-plugin", help="write a processor plugin skeleton")
    new_plugin.add_argument("name", help="plugin name: a Python identifier, also the suffix")
    new_plugin.add_argument(
        "--dir", default=".", help="where to create ahcore_NAME/ (default: .)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS:
        plugin_command = _plugin_commands().get(argv[0])
        if plugin_command is not None:
            return int(plugin_command.load()(argv[1:]) or 0)
    if not argv or argv[0] not in COMMANDS + ("-h", "--help"):
        argv = ["serve", *argv]
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "plugins":
            return cmd_plugins(args)
        if args.command == "init":
            return cmd_init(args)
        if args.command == "new-plugin":
            return cmd_new_plugin(args)
    except (ConfigError, PluginError) as exc:
        print(cannot_start(exc.problems), file=sys.stderr)
        return 2
    return 1


def cannot_start(problems: list[str], head: str = "ahcore: cannot start") -> str:
    """One line for one problem (``head: problem``), else the head and a list."""
    if len(problems) == 1:
        return f"{head}: {problems[0]}"
    return f"{head}:\n" + "\n".join(f"  - {p}" for p in problems)


def _plugin_commands() -> dict[str, EntryPoint]:
    """Sub-commands from plugins: entry-point group ``ahcore.commands``.

    ``rbac = "ahcore_rbac.cli:main"`` makes ``ahcore rbac ARGS`` call
    ``main(ARGS)``; its return value is the exit code.
    """
    return {ep.name: ep for ep in entry_points(group="ahcore.commands")}


def cmd_serve(args: argparse.Namespace) -> int:
    from ahcore.server import ServeOptions, serve

    if args.strict:
        refusals = strict_problems(Path(args.workdir).resolve())
        if refusals:
            print(cannot_start(refusals, "ahcore: --strict: refusing to start"), file=sys.stderr)
            return 2
    return serve(
        ServeOptions(
            Path(args.workdir).resolve(),
            host=args.host,
            port=args.port,
            workers=max(1, args.workers),
            debug=args.debug,
            shutdown_timeout=args.shutdown_timeout,
        )
    )


def strict_problems(workdir: Path) -> list[str]:
    """What ``serve --strict`` refuses and a plain ``serve`` only logs.

    Raises :class:`ConfigError`/:class:`PluginError` for what stops any start.
    """
    from ahcore.app import create_app
    from ahcore.appkeys import get_site

    site = get_site(create_app(workdir))
    gaps = [gap.message for gap in site.gaps.values() if not gap.deliberate]
    return gaps + site.plugin_warnings


def cmd_check(args: argparse.Namespace) -> int:
    """List every problem in the site; exit 1 if there is any error (see ahcore/checks.py)."""
    from ahcore.checks import run_check

    return run_check(Path(args.workdir).resolve())


def cmd_plugins(args: argparse.Namespace) -> int:
    from ahcore.plugins import installed_plugins, wanted_plugins

    installed = installed_plugins()
    enabled: set[str] | None = None
    if args.workdir:
        config = load_config(Path(args.workdir).resolve())
        enabled = set(wanted_plugins(config, installed=installed))
    rows = [("name", "distribution", "version", "enabled", "hooks")]
    for name, plugin in sorted(installed.items()):
        try:
            module = plugin.entry_point.load()
            hooks = ",".join(sorted(_hook_names(module))) or "-"
        except Exception as exc:
            hooks = f"IMPORT ERROR: {type(exc).__name__}: {exc}"
        state = "-" if enabled is None else ("yes" if name in enabled else "no")
        rows.append((name, plugin.distribution, plugin.version, state, hooks))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:4])) + "  " + r[4])
    return 0


def _hook_names(module: object) -> list[str]:
    from ahcore import hookspecs

    names = []
    for attr in dir(module):
        obj = getattr(module, attr, None)
        if callable(obj) and hasattr(obj, f"{hookspecs.PROJECT_NAME}_impl"):
            names.append(attr)
    return names


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    if target.exists() and any(target.iterdir()):
        print(f"ahcore: {target} exists and is not empty", file=sys.stderr)
        return 1
    starter = files("ahcore") / "starter"
    shutil.copytree(str(starter), target, dirs_exist_ok=True)
    print(f"ahcore: starter site written to {target}; serve it with: ahcore serve -w {target}")
    return 0


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from ahcore.scaffold import ScaffoldError, write_plugin

    try:
        target = write_plugin(args.name, args.dir)
    except ScaffoldError as exc:
        print(f"ahcore: {exc}", file=sys.stderr)
        return 1
    print(
        f"ahcore: plugin {args.name!r} written to {target}; test it with: "
        f"cd {target} && python -m pytest"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
