"""What a server is started with: :class:`ServeOptions`, and the flags that fill it.

The serve flags are defined once, here: ``ahcore serve`` (:mod:`ahcore.cli`)
adds them to its sub-command and ``webapp()`` (:mod:`ahcore.server.embed`)
to its own parser, and both turn the parsed arguments into a
:class:`ServeOptions` with :func:`options_from_args`. The serving code
takes that typed object, never an ``argparse.Namespace``. Each flag is
checked as it is parsed (a port from 1 to 65535 — 0 picks a free one —, at least one worker, a
host that is an address or a name that resolves, an existing folder), so
a wrong value is one argparse error line and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ServeOptions:
    """How to serve one site (the serve flags, plus what embedding adds)."""

    workdir: Path
    host: str | None = None
    port: int | None = None
    workers: int = 1
    debug: bool = False
    shutdown_timeout: float = 30.0
    #: ``--dev``: run a parent that restarts the server on config and code changes.
    dev: bool = False
    #: Serving under ``--dev``: inject the page-reload script into HTML answers.
    livereload: bool = False
    #: The command that starts this server again (the ``--dev`` parent runs it).
    command: tuple[str, ...] = ()
    program_path: Path | None = None
    init: Callable[..., Any] | None = field(default=None, repr=False)
    # name -> importable module path of in-process plugins (embedding); a
    # string so that spawned workers can import it themselves.
    plugin_modules: dict[str, str] = field(default_factory=dict)

    def extra_plugins(self) -> dict[str, object]:
        """The in-process plugins, imported."""
        return {name: importlib.import_module(mod) for name, mod in self.plugin_modules.items()}


def port_number(text: str) -> int:
    """A TCP port: a whole number from 1 to 65535 (0: any free port, printed at start)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range: use 1 to 65535")
    return port


def worker_count(text: str) -> int:
    """How many worker processes: 1 or more."""
    try:
        workers = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers") from None
    if workers < 1:
        raise argparse.ArgumentTypeError(f"{workers} workers cannot serve: use 1 or more")
    return workers


def host_address(text: str) -> str:
    """An IP address, or a host name this machine resolves."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        try:
            socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise argparse.ArgumentTypeError(
                f"{text!r} is neither an IP address nor a host name that resolves"
            ) from None
    return text


def seconds(text: str) -> float:
    """A duration in seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text} seconds: use 0 or more")
    return value


def site_folder(text: str) -> str:
    """The site folder: it must exist."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            f"{text} is not a folder; write a starter site there with: ahcore init {text}"
        )
    return text


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The serve flags, for ``ahcore serve`` and ``webapp()`` alike."""
    parser.add_argument(
        "-w", "--workdir", type=site_folder, default=os.getcwd(), help="site folder (default: .)"
    )
    parser.add_argument(
        "-p", "--port", type=port_number, help="port, 1 to 65535 (default: website.port)"
    )
    parser.add_argument(
        "--host", type=host_address, help="address to listen on (default: website.host)"
    )
    parser.add_argument(
        "--workers", type=worker_count, default=1, help="worker processes (default: 1)"
    )
    parser.add_argument("--debug", action="store_true", help="tracebacks on error pages")
    parser.add_argument(
        "--shutdown-timeout",
        type=seconds,
        default=30.0,
        help="seconds to let in-flight requests finish on stop (default: 30)",
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="development: restart on config.json, plugin code and package changes, and "
        "reload open pages when a site file changes (never in production)",
    )
    # Set by the --dev parent on the server it runs; not for people.
    parser.add_argument("--livereload", action="store_true", help=argparse.SUPPRESS)


def check_serve_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What no single flag shows: exits through ``parser.error`` (status 2)."""
    if args.port == 0 and args.workers > 1:
        parser.error(
            "-p 0 (any free port) would give each worker a port of its own: "
            "name the port with --workers"
        )


def options_from_args(args: argparse.Namespace, **extra: Any) -> ServeOptions:
    """The :class:`ServeOptions` of parsed serve flags (``extra``: embedding's fields)."""
    return ServeOptions(
        Path(args.workdir).resolve(),
        host=args.host,
        port=args.port,
        workers=args.workers,
        debug=args.debug,
        shutdown_timeout=args.shutdown_timeout,
        dev=args.dev,
        livereload=args.livereload,
        **extra,
    )


def serve_options(argv: Sequence[str], **extra: Any) -> ServeOptions:
    """Parse a serve command line (``-w``, ``-p``, ...) as ``webapp()`` does.

    A wrong value exits with argparse's one-line error (status 2), as
    ``ahcore serve`` does.
    """
    parser = argparse.ArgumentParser(description="Serve an ahcore site.")
    add_serve_arguments(parser)
    args = parser.parse_args(list(argv))
    check_serve_args(parser, args)
    return options_from_args(args, **extra)


def without_dev(argv: list[str]) -> list[str]:
    """``argv`` of a ``--dev`` command as the server it runs gets it."""
    return [a for a in argv if a != "--dev"] + ["--livereload"]
