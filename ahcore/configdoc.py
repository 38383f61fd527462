"""The configuration reference (``docs/config.md``), generated from the schema.

The tables are built by walking :class:`ahcore.config.SiteConfig` with
``msgspec.structs.fields``: every key, its JSON type and its default come
from the code, so the page cannot drift from what ``load_config`` accepts.
The one-line meanings are kept in :data:`DESCRIPTIONS` here, and a test
checks that every field has one. Regenerate with::

    python -m ahcore.configdoc > docs/config.md
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

import msgspec

from ahcore.config import SiteConfig

# Keys of SiteConfig that are not read from the file.
INTERNAL = frozenset({"raw"})

# The meaning of every field, by dotted path (``*`` for a dict value).
DESCRIPTIONS: dict[str, str] = {
    "website": "how the site is served: content roots, address, processors, sessions",
    "databases": "named databases, used as `DBPools().sqlorContext(name)` and `.sqlds` `db`",
    "filesroot": "folder where uploads are stored (relative to the site folder); without it multipart uploads are refused (415) and `save_file` fails",
    "langMapping": "`Accept-Language` tag → folder name under `i18n/` (tags compared case-insensitively)",
    "language": "the language used when `Accept-Language` matches no `i18n/<lang>/` folder",
    "logger": "logging: logger name, level and optional log file",
    "hot_reload": "`true`/`false`, or an object of hot-reload settings (see below)",
    "plugins": "plugin name → `true`, `false` or that plugin's settings object; absent: enable what the config uses",
    "debug": "a 500 shows browsers the debug page — the site's frames with their source, the request, the names a script saw — and other clients the traceback (as `ahcore serve --debug`; [getting-started.md](getting-started.md#5-the-debug-page)); never in production",
    "website.paths": "content roots `[folder, url_prefix]`, searched in order; each folder must exist",
    "website.host": "address to bind (`ahcore serve --host` wins)",
    "website.port": "TCP port (`ahcore serve -p` wins)",
    "website.coding": "encoding of `.dspy`, `.tmpl` and `.md` source files",
    "website.ssl": "serve HTTPS with this certificate and key",
    "website.indexes": "file names tried, in order, when a URL names a folder",
    "website.processors": "`[suffix, processor]` pairs; the longest matching suffix wins; absent: each enabled processor's own suffixes. A processor no installed plugin provides: its files answer 501",
    "website.client_max_size": "largest request body in bytes (413 beyond); also the default per-upload cap",
    "website.header_timeout": "seconds for a request's head (request line and headers), from its first byte (from connect for the first request); then 408 and the connection is closed. An idle keep-alive connection is closed after 75 s",
    "website.request_timeout": "seconds for reading a request body (form, JSON, upload) once the kernel starts reading it; then 408 and a partial upload is deleted",
    "website.cookie_secret": "secret for the encrypted session cookie, at least 32 bytes (shorter stops start-up unless `--debug`); unset: a random one is generated into `conf/.session_secret` (warning)",
    "website.session_max_time": "seconds a login ticket lives after it was last issued",
    "website.session_reissue_time": "a ticket older than this many seconds is reissued on the next response",
    "website.session_redis": "keep sessions in Redis instead of the cookie (shared by workers and machines)",
    "website.allowListFolder": "list a folder that has no index file (otherwise 404)",
    "website.follow_symlinks": "follow links placed in a root out of it (module folders mounted as symlinks); `false`: every served file's real path must stay inside its root",
    "website.trusted_proxies": "IPs/CIDRs whose `X-Forwarded-*` headers are honoured; empty trusts none, not even loopback",
    "website.cross_site_paths": "URLs of scripts and data sources meant for other sites (public APIs): exempt from the refusal of cross-site subresource requests by their `Sec-Fetch-*` headers",
    "website.security_headers": "headers added to every answer, over the defaults `X-Content-Type-Options: nosniff`, `Referrer-Policy: strict-origin-when-cross-origin`, `X-Frame-Options: SAMEORIGIN`; `null` removes a default",
    "website.server_header": "the `Server` header of every answer (no version numbers by default)",
    "website.startswiths": "function routes `{leading, registerfunction}`, tried in order before any file: a path starting with `leading` calls the function registered under that name ([processors.md](processors.md#function-routes-websitestartswiths))",
    "website.startswiths.leading": "a URL path prefix, decoded (`/api/v1`); plain string prefix, as ahserver matched it",
    "website.startswiths.registerfunction": "the name an app module registered the function under (`register_function(app, name, fn)`; ahserver's `RegisterFunction().register`)",
    "website.login_page": "the site's login page: a browser opening a page that answers 401 is sent there (303) with `?next=<the page>`, and a login handler sends it back with `safe_next(params_kw.next)`; `null`: the browser sees the 401 page ([security.md](security.md#login-redirects))",
    "website.ssl.crtfile": "certificate chain file (PEM)",
    "website.ssl.keyfile": "private key file (PEM)",
    "website.session_redis.url": "Redis URL, e.g. `redis://localhost:6379/0`",
    "databases.*.driver": "`sqlite`, `mysql`, `postgres` or an ahserver alias (see below)",
    "databases.*.dbname": "database name, used when `kwargs` names none (for sqlite: the file)",
    "databases.*.coding": "accepted for ahserver configs; not used",
    "databases.*.async_mode": "accepted for ahserver configs; not used (every driver is async)",
    "databases.*.kwargs": "connection settings passed to the driver (see below)",
    "databases.*.maxconn": "pool size (at least 1)",
    "databases.*.acquire_timeout": "seconds to wait for a free connection before answering 503",
    "logger.name": "the logger that scripts' `debug()` … `exception()` and templates' `print` write to; ahcore's own messages use `ahcore.*` loggers",
    "logger.levelname": "`debug`, `info`, `warning`, `error` or `critical` (`--debug` forces debug); at `info` or more verbose an access line is written per request",
    "logger.logfile": "write the log, access lines included, to this file instead of stderr; reopened on SIGHUP (logrotate)",
    "hot_reload.enabled": "watch config and i18n files and serve `POST /__hot_reload__`",
    "hot_reload.interval": "seconds between two looks at the watched files (at least 0.05)",
    "hot_reload.rate_limit": "seconds between two accepted `POST /__hot_reload__` in one worker (429 otherwise; only authorised callers count)",
    "hot_reload.redis": "Redis URL for the cross-machine signal; default: `website.session_redis.url`",
    "hot_reload.channel": "Redis pub/sub channel; every server of one site must use the same",
    "hot_reload.token": "secret that lets a caller sending it as `X-Hot-Reload-Token` use `POST /__hot_reload__` (compared in constant time; best from `$[ENV:NAME]$`, at least 32 bytes); unset: administrators only",
}

INTRO = """\
# Configuration reference: `conf/config.json`

<!-- Generated by `python -m ahcore.configdoc > docs/config.md` from the
     msgspec schema in ahcore/config.py; edit ahcore/configdoc.py, not this file.
     tests/test_configdoc.py fails when the two differ. -->

A site's configuration is one JSON file, `conf/config.json`, in the format
ahserver used: an ahserver config runs unchanged. It is read when the
application is built (and again by the hot-reload watcher), substitutions are
applied, and the result is validated against typed structures
(`ahcore/config.py`). `ahcore check -w SITE` validates it without serving.

## Substitution

String values may contain `$[name]$` markers, replaced from a fixed table:

| marker | value |
|---|---|
| `$[workdir]$` | the site folder (absolute) |
| `$[ProgramPath]$` | the folder of the embedding program (`webapp(init)`), else the site folder |
| `$[home]$` | the home folder of the user running the server (as appPublic's `getConfig`) |
| `$[ENV:NAME]$` | environment variable `NAME`: keep secrets out of the file |

Nothing is evaluated: ahserver's config could run Python; ahcore only looks
names up. An unknown marker or an unset environment variable stops start-up
with the key's path (`website.cookie_secret: environment variable
SESSION_KEY is not set`). Relative file paths (`paths`, `filesroot`, a
SQLite file) are relative to the site folder.

## Errors

Every problem is reported at once, each with its JSON path and the expected
type, and the server does not start:

```
ahcore: cannot start:
  - website.port: expected integer, got string
  - databases.main.driver: required key is missing
```

A file that is not valid JSON is named with the line and column (counted
in characters, as an editor shows them):

```
ahcore: cannot start: /srv/mysite/conf/config.json, line 3, column 26: not valid JSON (trailing comma in object)
```

Beyond types, values are checked: `website.paths` is required and must list
at least one root, and each root folder must exist; `website.port` must be a
TCP port, `website.client_max_size`, `website.header_timeout` and
`website.request_timeout` positive, a `website.paths` prefix must start with
`/` (or be empty), a `website.processors` suffix must start with `.`,
`databases.*.maxconn` at least 1. `ahcore check` and `ahcore serve` refuse a
broken config with the same lines. A hot reload that reads an invalid file
(or one naming a root that does not exist) logs the problems and keeps the
old config.

## Unknown keys

Keys ahcore does not know are kept, at any level: sites store their own
settings in the file and read them with `configValue('.shop.currency')` in
scripts and templates (a path walk; list items by index,
`configValue('.website.paths.0')`; a missing key gives `None` or the default
passed as second argument). Plugins read their own section with
`site.plugin_settings(name)`.

An unknown key that is a near miss of a known one (`website.prot`,
`website.cokie_secret`, a top-level `plugin`) is reported as a warning by
`ahcore check` and logged when the server starts, with the key it probably
means: `website.prot: unknown key, ignored by ahcore; did you mean "port"?`.
A plugin name in `plugins` that is not installed but is close to an
installed one (`tmlp`) stops start-up with `did you mean "tmpl"?`.

One extra top-level section is read by the kernel: `uploads`
(`{"max_file_size": bytes, "max_parts": n, "part_max_age": s, "sweep_every": s}`)
bounds each uploaded file (default: `website.client_max_size`) and the
number of form parts (100), each a 413 when passed; files are written as `NAME.part` and renamed
when complete, and a janitor removes `.part` files older than
`part_max_age` (3600 s) at start-up and every `sweep_every` (600 s).

## The `plugins` section

Installed is not enabled. Each key of `plugins` names a plugin (its entry
point name): `true` or an object of settings enables it, `false` disables it.

```json
"plugins": {"dspy": {"time_limit": 10}, "tmpl": true, "sqlds": {"time_limit_ms": 1000}, "sqlite": true}
```

When the section is **absent** (every ahserver config) ahcore enables what
the config uses: the processors named in `website.processors` (by the
plugin of that name, or the installed plugin that declares a processor of
that name). When it is **present** it lists the processors and other
plugins to enable. Either way, the driver a `databases` entry names is
enabled when it is installed, and the kernel's SQLite driver is always
there, unless the section sets it to `false`: a site that lists only its
processors in `plugins` still reaches its databases.

What stops start-up, naming the distribution to install or the key to
change: a plugin named in `plugins` that is not installed, an enabled plugin
that fails to import, a database whose driver is not installed or is
switched off.

What does **not** stop start-up: a `website.processors` entry whose
processor no installed plugin provides (real ahserver sites name processors
of their own era: `xterm`, `llm` …). Its files answer **501** naming the
processor and what to install, one error is logged per suffix at start,
`ahcore check` lists it as an error, and `ahcore serve --strict` refuses to
start. A processor whose plugin is installed but not enabled (with a
`plugins` section that leaves it out) is treated alike, with **404**.

A processor's source is never sent as a static file: a file whose suffix
any installed processor claims (enabled or not, compared without regard to
case), or that `website.processors` names, answers 404 (501 as above) when
no enabled processor handles it, and `ahcore check` says which plugin to
enable. Each plugin documents its settings in its README; see
[plugins.md](plugins.md). One example, `plugins.tmpl.undefined`, says what
a template gets for a name nobody defined: `"empty"` (default) renders it as
an empty string — with `--debug` each such name is logged once per template
line (`template …/index.tmpl, line 7: 'usr' is undefined (rendered as '')`)
— and `"strict"` makes it an error (a 500; the debug page points at the
template line). Any other value stops start-up and `ahcore check`:
`plugins.tmpl.undefined: 'loud' is not one of 'empty', 'strict'`.

Each enabled plugin checks its own settings object (its `check_settings`
hook) when the application is built: a wrong value
(`"dspy": {"time_limit": -1}`, an `md` `template` that names no file)
stops `ahcore serve` with one line naming the key and what to write, and
`ahcore check` lists it with the other problems.

## Database drivers and `kwargs`

| `driver` | canonical | `kwargs` |
|---|---|---|
| `sqlite`, `sqlite3`, `aiosqlite` | sqlite (in the kernel) | `{"dbname": "path/to/file.db"}` |
| `mysql`, `aiomysql`, `mysql.connector`, `pymysql`, `mariadb` | mysql (ahcore-mysql) | `{host, port, user, password, db}` (also `unix_socket`, `charset`) |
| `postgres`, `postgresql`, `psycopg`, `psycopg2`, `aiopg` | postgres (ahcore-postgres) | `{host, port, user, password, dbname}` (also `sslmode`, `options`) |

ahserver spellings of the database name (`db`, `database`, `dbname`) are
accepted by every driver.

See [database.md](database.md).
"""


# ---------------------------------------------------------------- walking the schema

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) is Union or isinstance(tp, types.UnionType)


def type_name(tp: Any, nested: bool = False) -> str:
    """A JSON-flavoured name for an annotation: ``array of [string, string]``."""
    if _is_union(tp):
        text = " or ".join(type_name(a, nested=True) for a in get_args(tp))
        return f"({text})" if nested else text
    origin = get_origin(tp)
    if origin is list:
        (item,) = get_args(tp)
        return f"array of {type_name(item, nested=True)}"
    if origin is tuple:
        return "[" + ", ".join(type_name(a) for a in get_args(tp)) + "]"
    if origin is dict:
        _, value = get_args(tp)
        return f"object of {type_name(value, nested=True)}"
    if _is_struct(tp):
        return "object"
    if tp is Any:
        return "any"
    return _SCALARS.get(tp, getattr(tp, "__name__", str(tp)))


def _default(field: msgspec.structs.FieldInfo) -> str:
    if field.required:
        return "**required**"
    if field.default is not msgspec.NODEFAULT:
        value = field.default
    else:
        value = field.default_factory()
    if isinstance(value, msgspec.Struct):
        return "(defaults below)"
    return "`" + json.dumps(msgspec.to_builtins(value), ensure_ascii=False) + "`"


def _structs_in(tp: Any) -> list[tuple[str, type[msgspec.Struct]]]:
    """Struct types reachable from an annotation, with the path suffix to reach them."""
    if _is_struct(tp):
        return [("", tp)]
    if _is_union(tp) or get_origin(tp) is list:
        return [s for a in get_args(tp) for s in _structs_in(a)]
    if get_origin(tp) is dict:
        return [(".*" + sfx, st) for sfx, st in _structs_in(get_args(tp)[1])]
    return []


def sections(
    struct: type[msgspec.Struct] = SiteConfig, path: str = ""
) -> Iterator[tuple[str, type[msgspec.Struct], list[msgspec.structs.FieldInfo]]]:
    """``(path, struct, fields)`` for ``struct`` and every struct inside it, depth first."""
    fields = [f for f in msgspec.structs.fields(struct) if f.name not in INTERNAL]
    yield path, struct, fields
    for f in fields:
        for suffix, inner in _structs_in(f.type):
            yield from sections(inner, f"{path}.{f.encode_name}".lstrip(".") + suffix)


def field_paths() -> list[str]:
    """The dotted path of every documented field (``databases.*.driver``)."""
    return [
        f"{path}.{f.encode_name}".lstrip(".")
        for path, _, fields in sections()
        for f in fields
    ]


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_tables() -> str:
    out = ["## Reference", ""]
    out.append(
        "Generated from the schema. *type* is the JSON type accepted; a key "
        "with a default may be left out."
    )
    for path, struct, fields in sections():
        title = f"`{path}`" if path else "Top level"
        out += ["", f"### {title}", ""]
        if path:
            out += [f"Schema: `{struct.__name__}`.", ""]
        out += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for f in fields:
            full = f"{path}.{f.encode_name}".lstrip(".")
            desc = DESCRIPTIONS.get(full, "")
            out.append(
                f"| `{f.encode_name}` | {_escape(type_name(f.type))} | "
                f"{_escape(_default(f))} | {_escape(desc)} |"
            )
    return "\n".join(out) + "\n"


def render() -> str:
    """The whole of ``docs/config.md``."""
    return INTRO + "\n" + render_tables()


def main() -> None:
    import sys

    sys.stdout.write(render())


if __name__ == "__main__":
    main()
