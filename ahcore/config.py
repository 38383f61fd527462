"""Site configuration: ``conf/config.json`` in the ahserver format.

The file is read as JSON, ``$[...]$`` substitutions are applied to string
values, and the result is validated against typed msgspec structures. Keys
ahcore does not know are kept in :attr:`SiteConfig.raw` (sites keep their own
settings there) and are reachable through :func:`config_value`.

Nothing in the file is ever evaluated: substitution is a lookup in a fixed
table (``workdir``, ``ProgramPath``, ``home``, ``ENV:NAME``).
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import msgspec

from ahcore.loginpage import is_safe_next

CONFIG_RELPATH = Path("conf") / "config.json"


class ConfigError(Exception):
    """A configuration problem; ``problems`` lists every one found."""

    def __init__(self, problems: list[str], source: Path | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(problems))

    def __str__(self) -> str:
        head = f"invalid config {self.source}" if self.source else "invalid config"
        return head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)


class _Base(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    pass


class DatabaseConfig(_Base):
    driver: str
    dbname: str | None = None
    coding: str | None = None
    async_mode: bool | None = None
    kwargs: dict[str, Any] = {}
    maxconn: int = 10
    acquire_timeout: float = 10.0


class SSLConfig(_Base):
    crtfile: str
    keyfile: str


class SessionRedisConfig(_Base):
    url: str


class StartswithConfig(_Base):
    """One function route (ahserver's ``website.startswiths`` item): see ahcore/functions.py."""

    leading: str
    registerfunction: str


class WebsiteConfig(_Base):
    # Required (as in every ahserver config): a site without content roots
    # serves nothing, and guessing a folder hides a typo in the key.
    paths: list[tuple[str, str]]
    host: str = "0.0.0.0"
    port: int = 8080
    coding: str = "utf-8"
    ssl: SSLConfig | None = None
    indexes: list[str] = msgspec.field(
        default_factory=lambda: ["index.html", "index.tmpl", "index.dspy", "index.md"]
    )
    processors: list[tuple[str, str]] | None = None
    client_max_size: int = 10 * 1024 * 1024
    # Slow clients (ahcore/server/guard.py, ahcore/params.py): seconds for a
    # request's head (request line + headers), counted from its first byte
    # (from connect for the first request); and seconds for reading a body
    # (form, JSON, multipart upload), counted from when reading starts.
    header_timeout: float = 10.0
    request_timeout: float = 60.0
    cookie_secret: str | None = None
    session_max_time: int = 3600
    session_reissue_time: int = 600
    session_redis: SessionRedisConfig | None = None
    allowListFolder: bool = False
    # Links the owner placed in a root may lead out of it (module folders
    # mounted as symlinks, as in ahserver and nginx); false confines every
    # served file's real path to its root.
    follow_symlinks: bool = True
    trusted_proxies: list[str] = []
    # URLs of scripts and data sources meant for other sites (public APIs):
    # exempt from the fetch-metadata refusal of cross-site subresource requests.
    cross_site_paths: list[str] = []
    # Response headers sent on every answer (ahcore/headers.py); a value of
    # null removes one of the defaults.
    security_headers: dict[str, str | None] = {}
    server_header: str = "ahcore"
    # Function routes: a path starting with `leading` calls a registered function.
    startswiths: list[StartswithConfig] = []
    # Where a browser opening a page that needs a login is sent (303, with
    # ?next=<the page>); null: it sees the 401 page (ahcore/loginpage.py).
    login_page: str | None = None


class LoggerConfig(_Base):
    name: str = "ahcore"
    levelname: str = "info"
    logfile: str | None = None


class HotReloadConfig(_Base):
    enabled: bool = True
    interval: float = 2.0
    # Seconds between two accepted POST /__hot_reload__ in one worker.
    rate_limit: float = 1.0
    # Redis URL for the cross-machine signal (default: website.session_redis).
    redis: str | None = None
    # Pub/sub channel; every server of one site must use the same.
    channel: str = "ahcore:hot_reload"
    # Secret a deploy script sends as X-Hot-Reload-Token (ahcore/hotreload.py).
    token: str | None = None


class SiteConfig(_Base):
    website: WebsiteConfig
    databases: dict[str, DatabaseConfig] = {}
    filesroot: str | None = None
    langMapping: dict[str, str] = {}
    # The language used when Accept-Language matches none (i18n/<lang>/).
    language: str | None = None
    logger: LoggerConfig = msgspec.field(default_factory=LoggerConfig)
    hot_reload: bool | HotReloadConfig = False
    plugins: dict[str, bool | dict[str, Any]] | None = None
    debug: bool = False

    # The whole decoded document, unknown keys included (set by load_config).
    raw: dict[str, Any] = {}

    @property
    def hot_reload_settings(self) -> HotReloadConfig:
        if isinstance(self.hot_reload, HotReloadConfig):
            return self.hot_reload
        return HotReloadConfig(enabled=bool(self.hot_reload))


# --------------------------------------------------------------------------
# substitution

_MALFORMED = re.compile(r"\$\[.*?\]\$")
_SUBST = re.compile(r"\$\[([A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z_][A-Za-z0-9_]*)?)\]\$")


@dataclass(frozen=True)
class Substitutions:
    """The fixed table of ``$[name]$`` substitutions."""

    workdir: str
    program_path: str
    environ: Mapping[str, str]
    #: The user's home folder (appPublic's ``getConfig`` offered ``$[home]$``).
    home: str = ""

    def lookup(self, name: str) -> str | None:
        if name == "workdir":
            return self.workdir
        if name == "home":
            return self.home or str(Path.home())
        if name == "ProgramPath":
            return self.program_path
        if name.startswith("ENV:"):
            return self.environ.get(name[4:])
        return None


def substitute(value: Any, subs: Substitutions, path: str, problems: list[str]) -> Any:
    """Return ``value`` with substitutions applied to every string inside it."""
    if isinstance(value, str):
        if "$[" not in value:
            return value

        def repl(m: re.Match[str]) -> str:
            found = subs.lookup(m.group(1))
            if found is None:
                name = m.group(1)
                if name.startswith("ENV:"):
                    problems.append(f"{path}: environment variable {name[4:]} is not set")
                else:
                    problems.append(
                        f"{path}: unknown substitution $[{name}]$ "
                        "(known: $[workdir]$, $[ProgramPath]$, $[home]$, $[ENV:NAME]$)"
                    )
                return m.group(0)
            return found

        result = _SUBST.sub(repl, value)
        leftover = _MALFORMED.search(_SUBST.sub("", value))
        if leftover:
            problems.append(
                f"{path}: malformed substitution {leftover.group(0)[:40]!r} "
                "(known: $[workdir]$, $[ProgramPath]$, $[home]$, $[ENV:NAME]$)"
            )
        return result
    if isinstance(value, dict):
        return {k: substitute(v, subs, f"{path}.{k}", problems) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, subs, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


# --------------------------------------------------------------------------
# validation that reports every problem, not just the first

#: JSON's names for the Python types a decoded document holds (and the
#: schema's scalar annotations): what a site owner sees in an editor.
_TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    tuple: "array",
    type(None): "null",
}


def json_type_name(value: Any) -> str:
    """JSON's name for the type of a decoded value (``string``, ``integer``, ``object``...)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) is Union or isinstance(tp, types.UnionType)


def _type_name(tp: Any) -> str:
    if _is_union(tp):
        return " or ".join(dict.fromkeys(_type_name(a) for a in get_args(tp)))
    origin = get_origin(tp)
    if origin in (list, tuple):
        return "array"
    if origin is dict:
        return "object"
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return "object"
    if tp is Any:
        return "any"
    return _TYPE_NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _union_member(tp: Any, value: Any) -> Any:
    """The member of union ``tp`` a value of this JSON type must match, if exactly one.

    ``dict[str, bool | dict] | None`` given an object: the ``dict`` member, so
    a bad item inside is reported at its own path ("plugins.dspy: expected
    boolean or object, got string") instead of the union failing as a whole.
    """
    kind = json_type_name(value)
    members = [a for a in get_args(tp) if _type_name(a) == kind or (
        kind == "integer" and a is float
    )]
    return members[0] if len(members) == 1 else None


#: What to write when a required key is missing, by its path.
REQUIRED_HINTS = {
    "website": 'add "website": {"paths": [["$[workdir]$/wwwroot", ""]]}',
    "website.paths": 'list the content roots, e.g. "paths": [["$[workdir]$/wwwroot", ""]]',
}


def _missing(path: str) -> str:
    path = path.lstrip(".")
    hint = REQUIRED_HINTS.get(path)
    return f"{path}: required key is missing" + (f"; {hint}" if hint else "")


def _collect(value: Any, tp: Any, path: str, problems: list[str]) -> None:
    """Append a ``path: expected X, got Y`` line for each invalid leaf."""
    try:
        msgspec.convert(value, tp, strict=True)
        return
    except msgspec.ValidationError as exc:
        first = str(exc)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct) and isinstance(value, dict):
        hints = msgspec.structs.fields(tp)
        for f in hints:
            if f.name == "raw":
                continue
            if f.encode_name in value:
                _collect(value[f.encode_name], f.type, f"{path}.{f.encode_name}", problems)
            elif f.required:
                problems.append(_missing(f"{path}.{f.encode_name}"))
        return
    if get_origin(tp) is dict and isinstance(value, dict):
        _, vtype = get_args(tp)
        for k, v in value.items():
            _collect(v, vtype, f"{path}.{k}", problems)
        return
    if get_origin(tp) is list and isinstance(value, list):
        (itype,) = get_args(tp)
        for i, v in enumerate(value):
            _collect(v, itype, f"{path}[{i}]", problems)
        return
    if get_origin(tp) is tuple and isinstance(value, list):
        args = get_args(tp)
        if len(args) != len(value):
            problems.append(f"{path}: expected array of {len(args)} items, got {len(value)}")
            return
        for i, (a, v) in enumerate(zip(args, value, strict=True)):
            _collect(v, a, f"{path}[{i}]", problems)
        return
    if _is_union(tp):
        member = _union_member(tp, value)
        if member is not None:
            _collect(value, member, path, problems)
            return
    # A leaf (or a union that failed as a whole).
    if "Expected" in first:
        problems.append(f"{path}: expected {_type_name(tp)}, got {json_type_name(value)}")
    else:
        problems.append(f"{path}: {first.split(' - at ')[0]}")


def validate(raw: dict[str, Any], source: Path | None = None) -> SiteConfig:
    """Validate a decoded, substituted document; raise ConfigError listing all problems."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(
            [f"the config must be one JSON object ({{...}}), not {json_type_name(raw)}"], source
        )
    body = {k: v for k, v in raw.items() if k != "raw"}
    try:
        cfg = msgspec.convert(body, SiteConfig, strict=True)
    except msgspec.ValidationError:
        _collect(body, SiteConfig, "", problems)
        problems = [p.lstrip(".") for p in problems] or ["config is invalid"]
        raise ConfigError(problems, source) from None
    problems.extend(_semantic_problems(cfg))
    if problems:
        raise ConfigError(problems, source)
    cfg.raw = raw
    return cfg


def _semantic_problems(cfg: SiteConfig) -> list[str]:
    problems = []
    w = cfg.website
    if not w.paths:
        problems.append("website.paths: is empty; " + REQUIRED_HINTS["website.paths"])
    if not 0 <= w.port <= 65535:
        problems.append(f"website.port: {w.port} is not a TCP port (0 to 65535)")
    if w.client_max_size <= 0:
        problems.append("website.client_max_size: must be a positive number of bytes")
    for name in ("header_timeout", "request_timeout"):
        seconds = getattr(w, name)
        if not 0 < seconds < float("inf"):
            problems.append(f"website.{name}: must be a positive number of seconds")
    for i, (_, prefix) in enumerate(w.paths):
        if prefix and not prefix.startswith("/"):
            problems.append(
                f"website.paths[{i}][1]: URL prefix {prefix!r} must start with '/' "
                "(\"/antd\") or be empty"
            )
    for i, (suffix, _) in enumerate(w.processors or []):
        if not suffix.startswith("."):
            problems.append(
                f"website.processors[{i}][0]: suffix {suffix!r} must start with '.' (\".{suffix}\")"
            )
    if w.login_page is not None and not is_safe_next(w.login_page):
        problems.append(
            f"website.login_page: {w.login_page!r} must be a path of this site starting with "
            "one '/' (\"/login.html\"), without spaces or backslashes"
        )
    for name, db in cfg.databases.items():
        if db.maxconn < 1:
            problems.append(f"databases.{name}.maxconn: must be at least 1")
    return problems


#: Keys the kernel reads beyond the schema, by the path of their object.
EXTRA_KEYS: Mapping[str, frozenset[str]] = {"": frozenset({"uploads"})}

#: How alike an unknown key and a known one must be to suggest the known one
#: (difflib's ratio): ``prot``/``port`` and ``plugin``/``plugins`` are, a
#: site's own ``shop`` is like nothing.
NEAR_MISS = 0.75


def did_you_mean(word: str, known: Iterable[str]) -> str | None:
    """The known word ``word`` is most likely a typo of, if one is close enough."""
    found = difflib.get_close_matches(word, list(known), n=1, cutoff=NEAR_MISS)
    return found[0] if found else None


def typo_warnings(raw: Mapping[str, Any]) -> list[str]:
    """A warning for each unknown key that is a near miss of a known one.

    Unknown keys are allowed (sites keep their own settings in the file),
    so only a key that looks like a misspelt known key (and whose known
    spelling is not there too) is reported: ``website.prot: unknown key;
    did you mean "port"?``.
    """
    out: list[str] = []
    _typos(raw, SiteConfig, "", out)
    return out


def _typos(value: Any, tp: Any, path: str, out: list[str]) -> None:
    if _is_union(tp):
        member = _union_member(tp, value)
        if member is not None:
            _typos(value, member, path, out)
        return
    origin = get_origin(tp)
    if origin is list and isinstance(value, list):
        (item,) = get_args(tp)
        for i, v in enumerate(value):
            _typos(v, item, f"{path}[{i}]", out)
        return
    if origin is dict and isinstance(value, dict):
        _, vtype = get_args(tp)
        for k, v in value.items():
            _typos(v, vtype, f"{path}.{k}".lstrip("."), out)
        return
    if not (isinstance(tp, type) and issubclass(tp, msgspec.Struct) and isinstance(value, dict)):
        return
    fields = {f.encode_name: f for f in msgspec.structs.fields(tp) if f.name != "raw"}
    known = set(fields) | EXTRA_KEYS.get(path, frozenset())
    for key, item in value.items():
        where = f"{path}.{key}".lstrip(".")
        if key in fields:
            _typos(item, fields[key].type, where, out)
        elif key not in known and isinstance(key, str):
            guess = did_you_mean(key, known)
            if guess is not None and guess not in value:
                out.append(
                    f'{where}: unknown key, ignored by ahcore; did you mean "{guess}"? '
                    f"(rename it, or keep it if it is your own setting)"
                )


def load_config(
    workdir: Path,
    *,
    program_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> SiteConfig:
    """Read, substitute and validate ``workdir/conf/config.json``."""
    source = workdir / CONFIG_RELPATH
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{source}: file not found; is {workdir} the site folder? "
                "(ahcore init DIR writes a starter site)"
            ],
            source,
        ) from None
    except OSError as exc:
        raise ConfigError([f"{source}: cannot be read ({exc.strerror})"], source) from None
    # A byte-order mark (Windows editors) is not JSON, but not worth refusing a site over.
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ConfigError([json_error(source, data, exc)], source) from None
    subs = Substitutions(
        workdir=str(workdir),
        program_path=str(program_path or workdir),
        environ=os.environ if environ is None else environ,
    )
    problems: list[str] = []
    raw = substitute(raw, subs, "$", problems)
    if problems:
        raise ConfigError([p.removeprefix("$.") for p in problems], source)
    return validate(ahserver_port(raw), source)


def ahserver_port(raw: Any) -> Any:
    """``website.port`` written as a JSON string of digits (``"8080"``) read as the number.

    ahserver ran ``int(port)``, so such configs exist; any other string is
    still reported by the validation.
    """
    website = raw.get("website") if isinstance(raw, dict) else None
    if isinstance(website, dict):
        port = website.get("port")
        if isinstance(port, str) and port.strip().isascii() and port.strip().isdigit():
            website["port"] = int(port.strip())
    return raw


_AT_BYTE = re.compile(r"\s*\(byte (\d+)\)$")


def json_error(source: Path, data: bytes, exc: msgspec.DecodeError) -> str:
    """``FILE, line L, column C: not valid JSON (reason)`` for a decode error.

    msgspec reports a byte offset; a site owner looks for a line and column
    (counted in characters) in an editor.
    """
    reason = str(exc).removeprefix("JSON is malformed: ")
    offset: int | None = None
    match = _AT_BYTE.search(reason)
    if match:
        offset = int(match.group(1))
        reason = reason[: match.start()]
    elif "truncated" in reason:
        offset = len(data)
        reason = (
            "the file is empty"
            if not data.strip()
            else "the file ends too early: an unclosed { or [, or a missing value"
        )
    else:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            offset = bad.start
            reason = "not UTF-8 text; save the file as UTF-8"
    if offset is None:
        return f"{source}: not valid JSON ({reason})"
    line = data.count(b"\n", 0, offset) + 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", "replace")) + 1
    return f"{source}, line {line}, column {column}: not valid JSON ({reason})"


def config_value(raw: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """Walk ``'.website.port'`` through the raw config; never evaluates anything.

    A leading dot is optional; list items are reached with numeric parts
    (``'.website.paths.0'``). A missing key gives ``default``.
    """
    node: Any = raw
    for part in path.strip(".").split("."):
        if not part:
            continue
        if isinstance(node, Mapping):
            if part not in node:
                return default
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node
