"""The ``ahcore`` command: serve, check, plugins, init, new-plugin, and plugins' commands.

``ahcore -w DIR -p PORT`` (no sub-command) is ``ahcore serve``, so ahserver's
command lines keep working. The serve flags are defined once, in
:mod:`ahcore.server.options`, and shared with ``webapp()``; plugins add
sub-commands through the ``ahcore.commands`` entry-point group, and they are
listed in ``ahcore --help`` like the built-in ones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from importlib.metadata import EntryPoint, entry_points, version
from importlib.resources import files
from pathlib import Path

from ahcore.config import CONFIG_RELPATH, ConfigError, load_config
from ahcore.plugins import PluginError, installed_plugins
from ahcore.server.options import (
    add_serve_arguments,
    check_serve_args,
    options_from_args,
    without_dev,
)
from ahcore.server.startup import cannot_start

COMMANDS = ("serve", "check", "plugins", "init", "new-plugin")

DESCRIPTION = """\
A file-driven application server: the files of a site folder are its pages,
scripts, templates and data sources.

Without a sub-command, "ahcore -w DIR -p PORT" is "ahcore serve -w DIR -p PORT".
Start a new site with "ahcore init DIR"; see "ahcore COMMAND --help" for each command.
"""


def _workdir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workdir", default=os.getcwd(), help="site folder (default: .)")


def version_text() -> str:
    """``ahcore --version``: ahcore's version, then each installed plugin's."""
    dists: dict[tuple[str, str], list[str]] = {}
    for name, plugin in installed_plugins().items():
        dists.setdefault((plugin.distribution, plugin.version), []).append(name)
    lines = [f"ahcore {version('ahcore')}"]
    for (dist, ver), names in sorted(dists.items()):
        lines.append(f"  {dist} {ver} (plugin{'s' if len(names) > 1 else ''} {', '.join(sorted(names))})")
    return "\n".join(lines)


def _command_help(ep: EntryPoint) -> str:
    """The first line of a plugin command's docstring (its distribution's name without one)."""
    try:
        doc = (ep.load().__doc__ or "").strip()
    except Exception as exc:  # a broken plugin must not break --help
        return f"(cannot be loaded: {type(exc).__name__}: {exc})"
    dist = ep.dist.name if ep.dist is not None else "a plugin"
    return doc.splitlines()[0].rstrip(".") if doc else f"the {ep.name} command of {dist}"


class _VersionAction(argparse.Action):
    """``--version``, computed only when asked (it looks up every plugin)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show ahcore's version and the installed plugins' versions")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(version_text())
        parser.exit()


def build_parser(plugin_commands: dict[str, EntryPoint] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ahcore", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve a site (the default command)", description="Serve a site.")
    add_serve_arguments(serve)
    serve.add_argument(
        "--strict",
        action="store_true",
        help="refuse to start when a processor named in website.processors is missing or "
        "not enabled, or an installed plugin is broken (otherwise logged, and those files "
        "answer 501 or 404)",
    )

    check = sub.add_parser(
        "check", help="validate a site's config and files", description="Validate a site's config and files."
    )
    _workdir_args(check)

    plugins = sub.add_parser(
        "plugins", help="list installed plugins", description="List the installed plugins."
    )
    plugins.add_argument("-w", "--workdir", help="also show which the site enables")

    init = sub.add_parser("init", help="write a starter site", description="Write a starter site.")
    init.add_argument("dir", help="folder to create")

    new_plugin = sub.add_parser(
        "new-plugin",
        help="write a processor plugin skeleton",
        description="Write a processor plugin skeleton.",
    )
    new_plugin.add_argument("name", help="plugin name: a Python identifier, also the suffix")
    new_plugin.add_argument(
        "--dir", default=".", help="where to create ahcore_NAME/ (default: .)"
    )
    # Plugins' commands: listed here, run by main() before this parser sees them.
    for name, ep in sorted((plugin_commands or {}).items()):
        if name not in COMMANDS:
            sub.add_parser(name, help=_command_help(ep), add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS:
        plugin_command = _plugin_commands().get(argv[0])
        if plugin_command is not None:
            return int(plugin_command.load()(argv[1:]) or 0)
    if not argv or argv[0] not in COMMANDS + ("-h", "--help", "--version"):
        argv = ["serve", *argv]
    help_wanted = bool(argv) and argv[0] in ("-h", "--help")
    parser = build_parser(_plugin_commands() if help_wanted else None)
    args = parser.parse_args(argv)
    if args.command == "serve":
        check_serve_args(parser, args)
    try:
        if args.command == "serve":
            return cmd_serve(args, argv)
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


def _plugin_commands() -> dict[str, EntryPoint]:
    """Sub-commands from plugins: entry-point group ``ahcore.commands``.

    ``rbac = "ahcore_rbac.cli:main"`` makes ``ahcore rbac ARGS`` call
    ``main(ARGS)``; its return value is the exit code.
    """
    return {ep.name: ep for ep in entry_points(group="ahcore.commands")}


def cmd_serve(args: argparse.Namespace, argv: list[str]) -> int:
    from ahcore.server import serve_main

    workdir = Path(args.workdir).resolve()
    if not (workdir / CONFIG_RELPATH).is_file():
        target = "." if not any(workdir.iterdir()) else "DIR"
        print(
            f"ahcore: no site in {workdir} ({CONFIG_RELPATH} not found): write a starter site "
            f"with: ahcore init {target}, then serve it with: ahcore serve -w {target}",
            file=sys.stderr,
        )
        return 2
    if args.strict and not args.dev:
        refusals = strict_problems(workdir)
        if refusals:
            print(cannot_start(refusals, "ahcore: --strict: refusing to start"), file=sys.stderr)
            return 2
    rerun = (sys.executable, "-m", "ahcore", *without_dev(argv))
    return serve_main(options_from_args(args, command=rerun))


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
