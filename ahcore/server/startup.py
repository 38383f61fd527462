"""Start-up failures as one line each: what went wrong and how to fix it.

Whatever stops a server from starting — a busy or privileged port, an
address not on this machine, a TLS certificate that does not load, a
start-up hook that raises — becomes a :class:`StartupError` whose problems
are sentences for the site owner, never a traceback. ``ahcore serve`` and
``webapp()`` print them with :func:`cannot_start` and exit 1 (2 for an
invalid config or plugin, as before).
"""

from __future__ import annotations

import errno
import socket
import ssl
from pathlib import Path

from ahcore.config import SiteConfig


class StartupError(Exception):
    """The server cannot start; ``problems`` say why and what to do, one line each."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


def cannot_start(problems: list[str], head: str = "ahcore: cannot start") -> str:
    """One line for one problem (``head: problem``), else the head and a list."""
    if len(problems) == 1:
        return f"{head}: {problems[0]}"
    return f"{head}:\n" + "\n".join(f"  - {p}" for p in problems)


def bind_problem(exc: BaseException, host: str | None, port: int) -> str:
    """Why listening on ``host:port`` failed, as a sentence that says what to do."""
    where = f"{host}:{port}" if host else f"port {port}"
    if isinstance(exc, OverflowError):
        return f"port {port} is out of range: use a port from 1 to 65535 (-p or website.port)"
    if isinstance(exc, socket.gaierror):
        return (
            f"cannot listen on {host!r}: no such address or host name; pass --host with an "
            "address of this machine (0.0.0.0 for all)"
        )
    code = getattr(exc, "errno", None)
    if code == errno.EADDRINUSE:
        return f"port {port} is in use: stop the other server or pass -p"
    if code == errno.EACCES:
        return (
            f"no permission to listen on {where}: ports below 1024 need root or "
            "CAP_NET_BIND_SERVICE; pass -p with a port from 1024 up, or serve behind a proxy"
        )
    if code == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}: it is not an address of this machine; pass --host with "
            "one of its addresses (0.0.0.0 for all)"
        )
    return f"cannot listen on {where}: {getattr(exc, 'strerror', None) or exc}"


def probe_port(host: str | None, port: int) -> None:
    """Raise :class:`StartupError` when ``host:port`` cannot be bound right now.

    Bound without ``SO_REUSEPORT``, so a server that shares its port with
    ``SO_REUSEPORT`` (another ``ahcore serve --workers N``) counts as busy
    too; the supervisor calls this before it spawns any worker.
    """
    bind_host = "" if host in (None, "0.0.0.0") else host
    try:
        family = socket.AF_INET6 if bind_host and ":" in bind_host else socket.AF_INET
        with socket.create_server((bind_host, port), family=family, reuse_port=False):
            pass
    except (OSError, OverflowError) as exc:
        raise StartupError(bind_problem(exc, host, port)) from exc


def ssl_context(config: SiteConfig) -> ssl.SSLContext | None:
    """The TLS context of ``website.ssl`` (None without it); a :class:`StartupError` if it fails."""
    if config.website.ssl is None:
        return None
    crt, key = config.website.ssl.crtfile, config.website.ssl.keyfile
    for name, path in (("crtfile", crt), ("keyfile", key)):
        if not Path(path).is_file():
            raise StartupError(
                f"website.ssl.{name} {path} does not exist: correct the path in "
                "conf/config.json or create the file"
            )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(crt, key)
    except PermissionError as exc:
        raise StartupError(
            f"cannot read {exc.filename or crt}: permission denied; let the server's user read it"
        ) from exc
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise StartupError(
            f"website.ssl: the certificate {crt} and key {key} do not load ({reason}): "
            "crtfile must be a PEM certificate (chain) and keyfile its private key"
        ) from exc
    return ctx


def hook_problem(exc: BaseException) -> str:
    """A start-up hook (a plugin's ``on_startup``, ``init(app)``) raised ``exc``."""
    return (
        f"start-up failed: {type(exc).__name__}: {exc} "
        "(serve with --debug to see the traceback)"
    )
