"""The kernel's processor namespace, offered through the public hooks.

This module is registered as an always-on plugin, so the kernel adds its
names exactly as any plugin would: global names through ``env_globals`` and
per-request names through ``request_namespace``. The names are ahserver's
(SPEC §6), so its scripts run unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import contextlib
import datetime
import functools
import inspect
import json
import logging
import os
import random
import re
import secrets
import sys
import time
import traceback
import urllib.parse
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

import aiohttp
from aiohttp import web

from ahcore import outbound, scriptfiles
from ahcore.config import config_value
from ahcore.context import current_context
from ahcore.db.filter import DBFilter, default_filterjson
from ahcore.dictobject import DictObject
from ahcore.errors import bad_request, not_found, server_error
from ahcore.forwarded import client_view, request_origin
from ahcore.functions import registered_function
from ahcore.headers import content_disposition
from ahcore.loginpage import safe_next
from ahcore.passwordcodec import password_decode, password_encode
from ahcore.plugins import hookimpl
from ahcore.sitefiles import SiteFiles, URIOp, folder_info
from ahcore.useragent import TERMINAL_TYPES, terminal_type  # noqa: F401 (ahcore.namespace's names)

if TYPE_CHECKING:
    from ahcore.context import RequestContext
    from ahcore.resolver import Root


# ---------------------------------------------------------------- dates


#: appPublic's date text: ``Y-M-D`` with unpadded numbers, then optionally one
#: space and ``H:M:S`` (``'2024-1-5'``, ``'2024-01-05 1:2:3'``).
_DATE_TEXT = re.compile(r"(\d{1,4})-(\d{1,2})-(\d{1,2})(?: (\d{1,2}):(\d{1,2}):(\d{1,2}))?", re.ASCII)


def _parse_datetime(dstr: str) -> datetime.datetime:
    text = dstr.strip()
    found = _DATE_TEXT.fullmatch(text)
    if found:
        y, m, d, hh, mm, ss = (int(part or 0) for part in found.groups())
        return datetime.datetime(y, m, d, hh, mm, ss)  # a day that does not exist: ValueError
    # ahcore's extra: ISO text appPublic refused ('2024-01-05T10:00', fractions, offsets).
    return datetime.datetime.fromisoformat(text)


def str2date(dstr: object) -> datetime.datetime | None:
    """appPublic's ``str2Date``: ``'Y-M-D[ H:M:S]'`` → ``datetime.datetime``, ``None`` if bad.

    Numbers need no padding (``'2024-1-5'``); without a time the result is
    at 00:00. Text that is no date (or no text at all) gives ``None``.
    ahcore also reads ISO text (``'2024-01-05T10:00'``) and ignores
    surrounding spaces, which appPublic refused.
    """
    if not isinstance(dstr, str):
        return None
    try:
        return _parse_datetime(dstr)
    except ValueError:
        return None


def str2datetime(dstr: str) -> datetime.datetime:
    """appPublic's ``str2Datetime``: as :func:`str2date`, but bad text raises ``ValueError``."""
    if not isinstance(dstr, str):
        raise TypeError(f"str2datetime needs text, not {type(dstr).__name__}")
    try:
        return _parse_datetime(dstr)
    except ValueError:
        raise ValueError(f"str2datetime: {dstr!r} is not 'YYYY-MM-DD[ HH:MM:SS]'") from None


def curDatetime() -> datetime.datetime:
    return datetime.datetime.now()


def curDateString() -> str:
    return datetime.date.today().isoformat()


def curTimeString() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S")


def monthfirstday(d: datetime.date | str | None = None) -> str:
    """The first day of ``d``'s month (today's by default) as ``'YYYY-MM-01'``.

    appPublic's takes no argument (this month); ahcore also takes a date or
    date text (``'2024-2-29'``; bad text raises ``ValueError``).
    """
    if d is None:
        d = datetime.date.today()
    elif isinstance(d, str):
        d = str2datetime(d)
    return f"{d.year:04d}-{d.month:02d}-01"


def _add_months(d: datetime.date, months: int) -> datetime.date:
    # Month ends clamp (Jan 31 + 1 month → Feb 28/29), as appPublic's addMonths.
    month_index = d.month - 1 + months
    year, month = d.year + month_index // 12, month_index % 12 + 1
    return d.replace(year=year, month=month, day=min(d.day, calendar.monthrange(year, month)[1]))


def strdate_add(dstr: str, days: int = 0, months: int = 0, years: int = 0) -> str:
    """appPublic's ``strdate_add``: ``'Y-M-D[ H:M:S]'`` plus days, then months, then years.

    The answer is ``'YYYY-MM-DD'``; month ends clamp; bad text raises
    ``ValueError``. Unlike appPublic, leap years are the calendar's (its
    ``isLeapYear`` made 2024 a common year) and going back past January
    goes back a year (its ``'2024-01-15'`` minus one month was ``'2024-12-15'``).
    """
    d = str2datetime(dstr).date() + datetime.timedelta(days=days)
    if months:
        d = _add_months(d, months)
    if years:
        d = _add_months(d, 12 * years)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


#: nanoid's URL-safe alphabet.
_NANOID_ALPHABET = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def uuid(size: int = 21) -> str:
    """ahserver's ``uuid()`` (appPublic's ``getID``): a ``size``-character nanoid.

    Made of ``A-Za-z0-9_-``, each character drawn by :mod:`secrets`.
    """
    return "".join(secrets.choice(_NANOID_ALPHABET) for _ in range(size))


def isNone(v: Any) -> bool:
    return v is None


def timestampstr() -> str:
    """Now as ``'YYYY-MM-DD HH:MM:SS.mmm'`` (appPublic's ``timestampstr``)."""
    now = datetime.datetime.now()
    return now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}"


def uObject(obj: Any, coding: str = "utf8") -> Any:
    """Bytes decoded to text, through dicts (keys too) and lists (appPublic's ``uObject``)."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        return {uObject(k, coding): uObject(v, coding) for k, v in obj.items()}
    if isinstance(obj, list):
        return [uObject(v, coding) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return obj.decode(coding)
    return obj


def Success(data: Any) -> dict[str, Any]:
    """ahserver's success answer: ``{"status": "OK", "data": data}``."""
    return {"status": "OK", "data": data}


def NeedLogin(path: Any) -> dict[str, Any]:
    """ahserver's ``{"status": "need_login", "data": path}``."""
    return {"status": "need_login", "data": path}


def NoPermission(path: Any) -> dict[str, Any]:
    """ahserver's ``{"status": "no_permission", "data": path}``."""
    return {"status": "no_permission", "data": path}


def return_ok(data: Any) -> dict[str, Any]:
    """ahserver's ``{"status": "ok", "data": data}``."""
    return {"status": "ok", "data": data}


def return_error(error_message: Any) -> dict[str, Any]:
    """ahserver's ``{"status": "error", "data": {"message": ...}}``."""
    return {"status": "error", "data": {"message": error_message}}


def Error(errno: Any = "undefined error", msg: Any = "Error") -> dict[str, Any]:
    """ahserver's error answer: ``{"status": "Error", "data": {"message", "errno"}}``."""
    return {"status": "Error", "data": {"message": msg, "errno": errno}}


#: ahserver's ``openai_4xx()`` answers: OpenAI's error body for each status.
_OPENAI_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("Parameters error.", "invalidparameters", "invalidparameters"),
    401: (
        "Incorrect API key provided: sk-abc...xyz. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: ("You don't have access to this model.", "invalid_request_error", "model_not_found"),
    429: (
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        "insufficient_quota",
    ),
}


def _openai_error(status: int) -> Callable[[], web.Response]:
    message, kind, code = _OPENAI_ERRORS[status]

    def answer() -> web.Response:
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return web.json_response(body, status=status)

    answer.__name__ = answer.__qualname__ = f"openai_{status}"
    answer.__doc__ = f"ahserver's ``openai_{status}()``: an OpenAI-style {status} JSON answer."
    return answer


OPENAI_ERRORS = {f"openai_{status}": _openai_error(status) for status in _OPENAI_ERRORS}


# ---------------------------------------------------------------- helpers


class ArgsConvert:
    """Replace ``${name}$`` markers in strings, dicts and lists with values (appPublic's class).

    The text between the markers is looked up in ``ns``, as a key or as a
    dotted path through dicts (``${user.id}$``); a name that is not found
    becomes ``default`` (``''`` unless given; a callable default is called
    with the text, as in appPublic). A string that is one marker alone
    becomes the value itself, its type kept; elsewhere the value goes in as
    text. Dicts and lists are converted item by item.

    Unlike appPublic, the text is never evaluated, so data can never run
    code: where appPublic ran it as Python (``${a + 1}$``, ``${d['k']}$``,
    ``${len(x)}$``, ``${1}$``, builtins such as ``${None}$``) ahcore finds no
    such name and puts ``default`` there.
    """

    def __init__(self, pre: str = "${", post: str = "}$") -> None:
        # Shortest text between the markers, on one line, as appPublic's pattern.
        self.pattern = re.compile(re.escape(pre) + "(.*?)" + re.escape(post))

    def findAllVariables(self, text: str) -> list[str]:  # noqa: N802 - appPublic's name
        """The texts between the markers in ``text``, in order, repeats included (as appPublic)."""
        return [m.group(1) for m in self.pattern.finditer(text)]

    def convert(self, obj: Any, ns: Mapping[str, Any], default: Any = "") -> Any:
        if isinstance(obj, str):
            markers = list(self.pattern.finditer(obj))
            if not markers:
                return obj
            if len(markers) == 1 and markers[0].span() == (0, len(obj)):
                return self._lookup(markers[0].group(1), ns, default)
            return self.pattern.sub(lambda m: str(self._lookup(m.group(1), ns, default)), obj)
        if isinstance(obj, dict):
            return {k: self.convert(v, ns, default) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.convert(v, ns, default) for v in obj]
        return obj

    @staticmethod
    def _lookup(text: str, ns: Mapping[str, Any], default: Any) -> Any:
        name = text.strip()
        if name in ns:  # any key, as appPublic's fallback ns.get(text)
            return ns[name]
        node: Any = ns
        for part in name.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                return default(text) if callable(default) else default
        return node


async def rfexe(func: str | Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Call a registered function by name, or run a blocking function in a thread.

    ``await rfexe('get_module_dbname', 'rbac')`` is ahserver's
    ``RegisterFunction().exe``: it calls the function this site's
    application registered under that name (the registry function routes
    use, :func:`ahcore.api.register_function`), awaiting it when it is
    async; a plain one runs on the event loop, as function routes call it.
    An unknown name raises ``LookupError`` (ahserver answered ``None``).

    ``await rfexe(func, *args, **kw)`` with a function runs the blocking
    ``func(*args, **kw)`` in the default thread pool.
    """
    if isinstance(func, str):
        app = current_context().site.app
        found = registered_function(app, func) if app is not None else None
        if found is None:
            raise LookupError(f"rfexe({func!r}): no function is registered under the name {func!r}")
        result = found(*args, **kw)
        if inspect.isawaitable(result):
            result = await result
        return result
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(func, *args, **kw))


def basic_auth_headers(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def format_exc() -> str:
    return traceback.format_exc()


def quotedstr(s: str) -> str:
    """appPublic's ``quotedstr``: ``"`` and newlines escaped for a double-quoted literal."""
    return s.replace('"', '\\"').replace("\n", "\\n")


def paramify(data: Any, ns: dict[str, Any]) -> Any:
    """ahserver's ``paramify(data, ns)``: ``${name}$`` markers replaced (looked up, never run)."""
    return ArgsConvert("${", "}$").convert(data, ns)


def get_loop_type() -> str:
    """ahserver's ``get_loop_type()``: ``'uvloop.Loop'``, or the loop's type as text."""
    loop = asyncio.get_running_loop()
    try:
        import uvloop
    except ImportError:
        return str(type(loop))
    if isinstance(loop, uvloop.Loop):
        return "uvloop.Loop"
    return str(type(loop))


def current_fileno() -> int:
    """ahserver's ``current_fileno()``: the file descriptor the next ``open`` would get.

    ahserver created and removed ``./t.txt`` to learn it; opening
    ``os.devnull`` gives the same number and writes nothing.
    """
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd


def _stream_chunk(item: Any) -> bytes:
    # ahserver's encoding: bytes as they are, text as UTF-8, anything else as
    # json.dumps(item, ensure_ascii=False) with no newline after it. ahcore's
    # extra: what ahcore's JSON takes (dates, decimals, sets …) is encoded too.
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    return json.dumps(item, ensure_ascii=False, default=_json_value).encode("utf-8")


def _json_value(obj: Any) -> Any:
    from ahcore.jsonutil import dumps

    return json.loads(dumps(obj))


async def stream_response(
    request: web.Request,
    chunks: AsyncIterable[Any] | Iterable[Any] | Callable[[], AsyncIterable[Any] | Iterable[Any]],
    content_type: str | None = "text/html",
) -> web.StreamResponse:
    """ahserver's ``stream_response``: send each item ``chunks`` gives as it comes.

    ``chunks`` is what ahserver takes, a generator *function* (async or
    plain; it is called with no arguments), or an (async) iterable. Items
    are bytes, text (sent as UTF-8) or JSON-able values (``json.dumps``,
    no newline between them), as in ahserver; ``content_type`` is
    ``text/html`` unless given (empty: aiohttp's default).

    The response starts with the first item: an error raised before it
    becomes an ordinary error response; one raised later cuts the stream.
    """
    source: Any = chunks
    if not hasattr(source, "__aiter__") and not hasattr(source, "__iter__") and callable(source):
        source = source()
    if not hasattr(source, "__aiter__") and not hasattr(source, "__iter__"):
        raise TypeError(
            "stream_response needs a generator function or an (async) iterable, "
            f"not {type(source).__name__}"
        )
    resp = web.StreamResponse()
    if content_type:
        resp.content_type = content_type

    async def send(item: Any) -> None:
        data = _stream_chunk(item)
        if not resp.prepared:
            await resp.prepare(request)
        await resp.write(data)

    if hasattr(source, "__aiter__"):
        async for item in source:
            await send(item)
    else:
        for item in source:
            await send(item)
    if not resp.prepared:
        await resp.prepare(request)
    await resp.write_eof()
    return resp


#: appPublic's ``clientinfo`` level: below ``debug``, the most talkative.
CLIENTINFO = 5


def _log_text(message: Any, args: tuple[Any, ...]) -> str:
    # ahserver's functions took one message; extra arguments are joined as print() would.
    return " ".join(str(part) for part in (message, *args)) if args else str(message)


def site_loggers(site: Any) -> dict[str, Callable[..., None]]:
    """ahserver's ``debug`` … ``exception``: log to the logger named by ``logger.name``.

    The name is read on each call (a config reload may change it). The
    record's file and line are the caller's — the script's own line.
    ``exception`` adds the traceback of the exception being handled, if any.
    """

    def at(level: int, name: str) -> Callable[..., None]:
        def log(message: Any, *args: Any) -> None:
            logger = logging.getLogger(site.config.logger.name or "ahcore")
            if logger.isEnabledFor(level):
                exc_info = name == "exception" and sys.exc_info()[0] is not None
                logger.log(level, "%s", _log_text(message, args), exc_info=exc_info, stacklevel=2)

        log.__name__ = log.__qualname__ = name
        log.__doc__ = f"Log ``message`` at {logging.getLevelName(level)} to the site logger."
        return log

    levels = {
        "clientinfo": CLIENTINFO,
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warning": logging.WARNING,
        "error": logging.ERROR,
        "exception": logging.ERROR,
        "critical": logging.CRITICAL,
    }
    return {name: at(level, name) for name, level in levels.items()}


# ---------------------------------------------------------------- hooks


@hookimpl
def env_globals(app: web.Application) -> dict[str, Any]:
    from ahcore.appkeys import get_site

    site = get_site(app)

    def configValue(path: str, default: Any = None) -> Any:
        return config_value(site.config.raw, path, default)

    def webpath(path: str) -> str | None:
        """ahserver's ``webpath``: a file under ``filesroot`` as ``/sub/path``, else its URL.

        1.2.0's was ``FileStorage().webpath`` (the part after ``filesroot``);
        for a file in a content root ahcore gives the URL it is served under.
        """
        uploads = site.uploads
        if uploads is not None:
            root = os.path.realpath(uploads.root)
            real = os.path.realpath(path)
            if real.startswith(root.rstrip(os.sep) + os.sep):
                return "/" + os.path.relpath(real, root).replace(os.sep, "/")
        return site.resolver.file_url(path)

    def save_file(data: bytes | str, filename: str = "") -> Any:
        """ahserver's ``save_file(data, filename)``: store ``data`` (text as UTF-8) under ``filesroot``."""
        if site.uploads is None:
            raise RuntimeError("save_file needs 'filesroot' in the site config")
        if isinstance(data, str):
            data = data.encode("utf-8")
        return site.uploads.save_bytes(data, filename)

    files = SiteFiles(site)

    def openfile(url: str, m: str = "r", encoding: str | None = None) -> Any:
        """ahserver's ``openfile(url, mode)``, confined to the site (ahcore.sitefiles)."""
        return files.open(url, m, encoding)

    def uriop() -> URIOp:
        """ahserver's ``uriop()``: file operations under the web root."""
        return URIOp(site)

    def site_password_encode(text: str) -> str:
        """ahserver's ``password_encode``, keyed by the config's ``password_key``."""
        key = site.config.raw.get("password_key")
        return password_encode(text, key if isinstance(key, str) else None)

    def site_password_decode(code: str) -> str:
        """ahserver's ``password_decode``: the inverse of ``password_encode``."""
        key = site.config.raw.get("password_key")
        return password_decode(code, key if isinstance(key, str) else None)

    def get_config_value(kstr: str) -> Any:
        """ahserver's ``get_config_value('a.b')``: ``None`` when a key is missing or empty."""
        node: Any = site.config.raw
        for key in kstr.split("."):
            node = node.get(key) if isinstance(node, dict) else None
            if not node:
                return None
        return node

    def get_definition(k: str) -> Any:
        """ahserver's ``get_definition(k)``: ``definitions.k`` of the config."""
        return get_config_value(f"definitions.{k}")

    def web_rootpath() -> str | None:
        """ahserver's ``web_rootpath()``: the folder served at the top URL (prefix ``""``)."""
        for folder, prefix in site.config.website.paths:
            if prefix == "":
                return folder
        return None

    running: set[asyncio.Task[Any]] = set()  # background_reco's tasks, held until done

    def background_reco(reco: Callable[..., Any], *args: Any, **kw: Any) -> asyncio.Task[Any]:
        """ahserver's ``background_reco(f, *args)``: run ``f(*args, **kw)`` as a task.

        The task is kept until it ends (a bare ``create_task`` may be
        collected mid-way) and its exception, if any, logged.
        """
        task = asyncio.get_running_loop().create_task(reco(*args, **kw))
        running.add(task)
        task.add_done_callback(_reco_done(running))
        return task

    def visualcoding() -> Any:
        """ahserver's ``visualcoding()``: ``website.visualcoding`` of the config."""
        return config_value(site.config.raw, ".website.visualcoding")

    def cssfiles() -> list[str]:
        """ahserver's ``cssfiles()``: the URLs of the site's ``.css`` files (not under ``/bricks``)."""
        return site_file_urls(site.snapshot.roots, ".css")

    def jsfiles() -> list[str]:
        """ahserver's ``jsfiles()``: the URLs of the site's ``.js`` files (not under ``/bricks``)."""
        return site_file_urls(site.snapshot.roots, ".js")

    return {
        # ahserver's ServerEnv: the site folder, the configured port, file lists
        "workdir": str(site.workdir),
        "port": site.config.website.port,
        "cssfiles": cssfiles,
        "jsfiles": jsfiles,
        "time": time,
        "datetime": datetime,
        "random": random,
        "json": json,
        "configValue": configValue,
        "isNone": isNone,
        "int": int,
        "str": str,
        "float": float,
        "type": type,
        "str2date": str2date,
        "str2datetime": str2datetime,
        "curDatetime": curDatetime,
        "curDateString": curDateString,
        "curTimeString": curTimeString,
        "monthfirstday": monthfirstday,
        "strdate_add": strdate_add,
        "uuid": uuid,
        "DictObject": DictObject,
        "ArgsConvert": ArgsConvert,
        "webpath": webpath,
        "stream_response": stream_response,
        "rfexe": rfexe,
        "basic_auth_headers": basic_auth_headers,
        "format_exc": format_exc,
        "realpath": file_realpath,  # 1.2.0: FileStorage().realPath, a path under filesroot
        "save_file": save_file,
        "async_sleep": asyncio.sleep,
        "server_error": server_error,
        "resource": site,
        "event_dispatcher": site.events,
        "timestampstr": timestampstr,
        "uObject": uObject,
        "Error": Error,
        "folderInfo": folder_info,
        "openfile": openfile,
        "uriop": uriop,
        "password_encode": site_password_encode,
        "password_decode": site_password_decode,
        "get_config_value": get_config_value,
        "get_definition": get_definition,
        "web_rootpath": web_rootpath,
        "visualcoding": visualcoding,
        "Success": Success,
        "NeedLogin": NeedLogin,
        "safe_next": safe_next,
        "NoPermission": NoPermission,
        "return_ok": return_ok,
        "return_error": return_error,
        "partial": functools.partial,
        "quote": urllib.parse.quote,
        "json_response": web.json_response,
        "Response": web.Response,
        "DBFilter": DBFilter,
        "default_filterjson": default_filterjson,
        "app": app,
        "background_reco": background_reco,
        "quotedstr": quotedstr,
        "paramify": paramify,
        "get_loop_type": get_loop_type,
        "current_fileno": current_fileno,
        "get_baseurl": scriptfiles.get_baseurl,
        "hex2base64": scriptfiles.hex2base64,
        "FileStorage": scriptfiles.FileStorage,
        "file_response": scriptfiles.file_response,
        "file_download": scriptfiles.file_download,
        "path_download": scriptfiles.path_download,
        "b64media2url": scriptfiles.b64media2url,
        "downloadfile2url": scriptfiles.downloadfile2url,
        "HttpClient": outbound.HttpClient,
        "StreamHttpClient": outbound.StreamHttpClient,
        **OPENAI_ERRORS,
        **site_loggers(site),
        **REQUEST_BOUND,
    }


def site_file_urls(roots: Iterable[Root], suffix: str) -> list[str]:
    """The URLs of the files ending in ``suffix`` at the top of each root, as ahserver listed them.

    ahserver's ``get_filetype_files``: the files directly in each content
    root, and for the root served at the top URL also those one folder down;
    dotfiles and dot-folders (never served) and ``/bricks`` are left out.
    """
    urls: list[str] = []
    for root in roots:
        prefix = "".join("/" + part for part in root.prefix)
        folders = [("", root.real)]
        if not root.prefix:
            with contextlib.suppress(OSError), os.scandir(root.real) as it:
                folders += [("/" + e.name, e.path) for e in it
                            if e.is_dir() and not e.name.startswith(".")]
        for below, folder in folders:
            with contextlib.suppress(OSError), os.scandir(folder) as it:
                for entry in it:
                    name = entry.name
                    if name.startswith(".") or not name.lower().endswith(suffix):
                        continue
                    if entry.is_file():
                        urls.append(f"{prefix}{below}/{name}")
    return sorted(url for url in urls if not url.startswith("/bricks"))


def _reco_done(running: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logging.getLogger("ahcore.background").error(
                "background_reco task failed", exc_info=task.exception()
            )

    return done


# ---------------------------------------------------------------- request-bound helpers
#
# These are the same function objects for every request: each finds its
# request through current_context(), which the kernel sets while a processor
# runs. Building closures per request instead cost an allocation per name on
# every script request, and tied the namespace, the context and the request
# into reference cycles that only the garbage collector could free.


def entire_url(url: str) -> str:
    """ahserver's ``entire_url``: an absolute ``scheme://host[:port]/…`` URL.

    Relative URLs are taken from the current file's folder with ``.`` and
    ``..`` resolved (ahserver's ``relatedurl``/``realurl``), ``\\/`` is
    read as ``/``; full URLs pass unchanged. A URL ending in ``.ws`` or
    ``.wss`` becomes ``ws://``/``wss://``, as ahserver's ``urlWebsocketify``.
    """
    from ahcore.pipeline import normalize_url_path

    url = "/".join(url.split("\\/"))
    if not url.startswith(("http://", "https://", "ws://", "wss://")):
        context = current_context()
        if not url.startswith("/"):
            url = context.url.rsplit("/", 1)[0] + "/" + url
        cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
        url = request_origin(context.request) + normalize_url_path(url[:cut]) + url[cut:]
    if url.endswith((".ws", ".wss")):
        if url.startswith("https://"):
            return "wss://" + url[len("https://"):]
        if url.startswith("http://"):
            return "ws://" + url[len("http://"):]
    return url


def websocket_url(url: str) -> str:
    full = entire_url(url)
    return "ws" + full[4:] if full.startswith("http") else full


async def redirect(url: str) -> None:
    raise web.HTTPFound(entire_url(url))


def gethost() -> str:
    """ahserver's ``gethost()``: the host the client asked for (``Host``, or a trusted proxy's).

    ahserver read ``X-Forwarded-Host`` from anyone; here a forwarded host
    counts only from ``website.trusted_proxies`` (docs/deployment.md).
    """
    request = current_context().request
    request_origin(request)  # a Host that is no host name is a 400, as for entire_url
    return client_view(request).host


async def path_call(path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
    """ahserver's ``path_call(path, params={})``: run another URL's processor, return its value.

    The called file's ``params_kw`` are this request's parameters with
    ``params`` and ``kw`` over them, and ``path`` (the called URL path), as
    in ahserver. ``path`` may be relative, contain ``..``, or be a full URL
    of this site (``entire_url(...)``); see :func:`ahcore.pipeline.site_path`.
    """
    from ahcore.pipeline import path_call as _path_call
    from ahcore.pipeline import site_path

    context = current_context()
    top = context
    while top.parent is not None:
        top = top.parent
    merged: dict[str, Any] = dict(await top.params())
    if params:
        merged.update(params)
    merged.update(kw)
    local = site_path(context.request, context.url, path)
    if local is None:  # a URL of another origin
        not_found()
    merged["path"] = local
    return await _path_call(context, local, merged)


def file_realpath(subpath: str) -> str:
    uploads = current_context().site.uploads
    if uploads is None:
        not_found()
    return str(uploads.realpath(subpath))


def abspath(*args: Any) -> str | None:
    """ahserver's ``abspath(request, url)`` (also ``abspath(url)``): the file a site URL names.

    Relative URLs and ``..`` as for :func:`entire_url`; resolved as a request
    would be (no traversal, no dotfiles); None when nothing is there.
    """
    from ahcore.pipeline import site_path
    from ahcore.resolver import RedirectToSlash, split_segments

    if len(args) == 2:  # ahserver's per-request form: the request comes first
        args = args[1:]
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError("abspath(url) or abspath(request, url), with url a str")
    context = current_context()
    url = site_path(context.request, context.url, args[0])
    if url is None:
        return None
    try:
        found = context.site.resolver.resolve(split_segments(url), url.endswith("/"))
    except (RedirectToSlash, web.HTTPException):
        return None
    return str(found.path) if found else None


_LANG = "ahcore.lang"


def _lang(context: RequestContext) -> str | None:
    """The visitor's language, worked out once per request."""
    state = context.state
    if _LANG not in state:
        state[_LANG] = context.site.translations.language_for(
            context.request.headers.get("Accept-Language")
        )
    return cast("str | None", state[_LANG])


def i18n(text: str) -> str:
    context = current_context()
    return context.site.translations.translate(_lang(context), text)


class HtmlSafeJson(str):
    """JSON text that a template prints as it is (``__html__``, the markupsafe protocol).

    ``<``, ``>``, ``&`` and ``'`` are ``\\u`` escapes in it, as in Jinja's
    ``tojson``: safe inside ``<script>`` and in HTML text, so autoescaping
    need not (and must not) turn its quotes into entities.
    """

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


_HTML_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"})


def i18nDict() -> HtmlSafeJson:
    """ahserver's ``i18nDict()``: the visitor's whole translation table as JSON text.

    ahserver returned ``json.dumps(table)`` for pages to write into a
    script (``var t = {{ i18nDict() }};``); here the text is also safe to
    print unescaped (:class:`HtmlSafeJson`). ``json.loads`` gives the dict.
    """
    context = current_context()
    table = dict(context.site.translations.table(_lang(context)))
    return HtmlSafeJson(json.dumps(table).translate(_HTML_UNSAFE))


async def request2ns() -> DictObject:
    """ahserver's ``request2ns()``: the request's parameters, as a fresh dict.

    The same values as the page's ``params_kw`` (``page``, ``rows`` … as
    ints), read from the request itself: inside a ``path_call`` too, it gives
    the original request's parameters, not the call's.
    """
    context = current_context()
    while context.parent is not None:
        context = context.parent
    return DictObject(await context.params())


async def download_file(subpath: str, filename: str | None = None) -> web.FileResponse:
    """Send a stored upload; only files under ``filesroot`` can be reached."""
    uploads = current_context().site.uploads
    if uploads is None:
        not_found()
    path = uploads.realpath(subpath)
    if not path.is_file():
        raise not_found()
    return web.FileResponse(path, headers={"Content-Disposition": content_disposition(filename or path.name)})


REQUEST_BOUND: dict[str, Any] = {
    "entire_url": entire_url,
    "websocket_url": websocket_url,
    "redirect": redirect,
    "gethost": gethost,
    "path_call": path_call,
    "file_realpath": file_realpath,
    "abspath": abspath,
    "bad_request": bad_request,
    "i18n": i18n,
    "i18nDict": i18nDict,
    "download_file": download_file,
    "request2ns": request2ns,
    "aiohttp_client": aiohttp.client,
}
