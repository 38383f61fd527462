"""The ``ahcore`` command: serve, check, plugins, init, new-plugin.

``ahcore -w DIR -p PORT`` (no sub-command) is ``ahcore serve``, so ahserver's
command lines keep working.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from importlib.metadata import EntryPoint, entry_points
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from ahcore.config import ConfigError, load_config
from ahcore.plugins import PluginError

if TYPE_CHECKING:
    from ahcore.resolver import Resolved
    from ahcore.site import Site

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
    """List every problem in the site; exit 1 if there is any error."""
    from ahcore.app import create_app
    from ahcore.appkeys import get_site

    workdir = Path(args.workdir).resolve()
    errors: list[str] = []
    warnings: list[str] = []
    try:
        config = load_config(workdir)
    except ConfigError as exc:
        errors.extend(exc.problems)
        config = None
    if config is not None:
        if not config.website.cookie_secret:
            warnings.append(
                "website.cookie_secret is not set: a random secret will be generated and "
                "kept in conf/.session_secret (sessions are not shared between machines)"
            )
        # The same words `ahcore serve` stops with (checked here so the rest goes on).
        from ahcore.session import weak_secret_problem

        weak = weak_secret_problem(config)
        if weak is not None:
            errors.append(weak)
        try:
            app = create_app(workdir, config=config, check_secret=False)
        except (ConfigError, PluginError) as exc:
            errors.extend(exc.problems)
        else:
            site = get_site(app)
            errors.extend(site.plugin_warnings)  # the site could serve a processor's source
            file_errors, file_warnings = _check_files(site)
            errors.extend(file_errors)
            warnings.extend(file_warnings)
    for w in warnings:
        print(f"warning: {w}")
    for e in errors:
        print(f"error: {e}")
    if errors:
        print(f"{len(errors)} problem(s) found in {workdir}")
        return 1
    print(f"{workdir}: OK")
    return 0


def _check_files(site: Site) -> tuple[list[str], list[str]]:
    """Look up every file as a request would; build each processor file once.

    Compiles scripts and templates and parses data sources, and reports,
    one line per suffix, files that answer 404 or 501 because their
    processor is missing or not enabled (never their source).
    """
    from ahcore.resolver import RedirectToSlash

    errors: list[str] = []
    warnings: list[str] = []
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
    errors.extend(asyncio.run(_load_processors(site, to_load)))
    for gap in site.gaps.values():
        line = gap.message + _files_note(unserved.pop(gap.suffix, []))
        (warnings if gap.deliberate else errors).append(line)
    for suffix, paths in sorted(unserved.items()):
        is_error, text = _unserved_advice(site, suffix)
        if text:
            (errors if is_error else warnings).append(text + _files_note(paths))
    return errors, warnings


async def _load_processors(site: Site, found: list[tuple[str, Resolved]]) -> list[str]:
    problems = []
    for shown, resolved in found:
        assert resolved.spec is not None
        try:
            processor = resolved.spec.factory(resolved.path, site)
            await processor.load()
        except Exception as exc:
            problems.append(f"{shown}: {type(exc).__name__}: {exc}")
            continue
        if processor.error is not None:  # loaded, but every request would fail
            problems.append(f"{shown}: {processor.error}")
    return problems


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
    from ahcore.plugins import disabled_plugins, install_advice

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
