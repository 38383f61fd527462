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
import datetime
import functools
import json
import logging
import os
import random
import re
import sys
import time
import traceback
import urllib.parse
import uuid as _uuid
from collections.abc import AsyncIterable, Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

import aiohttp
from aiohttp import web

from ahcore import outbound, scriptfiles
from ahcore.config import config_value
from ahcore.context import current_context
from ahcore.db.filter import DBFilter, default_filterjson
from ahcore.dictobject import DictObject
from ahcore.errors import bad_request, not_found, server_error
from ahcore.forwarded import request_origin
from ahcore.headers import content_disposition
from ahcore.loginpage import safe_next
from ahcore.passwordcodec import password_decode, password_encode
from ahcore.plugins import hookimpl
from ahcore.sitefiles import SiteFiles, URIOp, folder_info

if TYPE_CHECKING:
    from ahcore.context import RequestContext


# ---------------------------------------------------------------- dates


def str2date(dstr: str) -> datetime.date:
    """``'YYYY-MM-DD'`` → ``datetime.date``."""
    return datetime.date.fromisoformat(dstr.strip()[:10])


def str2datetime(dstr: str) -> datetime.datetime:
    """``'YYYY-MM-DD[ HH:MM:SS]'`` → ``datetime.datetime``."""
    return datetime.datetime.fromisoformat(dstr.strip())


def curDatetime() -> datetime.datetime:
    return datetime.datetime.now()


def curDateString() -> str:
    return datetime.date.today().isoformat()


def curTimeString() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S")


def monthfirstday(d: datetime.date | str | None = None) -> str:
    """The first day of ``d``'s month (today's by default) as ``'YYYY-MM-01'``."""
    if d is None:
        d = datetime.date.today()
    elif isinstance(d, str):
        d = str2date(d)
    return d.replace(day=1).isoformat()


def strdate_add(dstr: str, days: int = 0, months: int = 0, years: int = 0) -> str:
    """Add days, months and years to a ``'YYYY-MM-DD'`` string (month ends clamp)."""
    d = str2date(dstr)
    month_index = d.month - 1 + months + 12 * years
    year, month = d.year + month_index // 12, month_index % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return (datetime.date(year, month, day) + datetime.timedelta(days=days)).isoformat()


def uuid() -> str:
    """A new random id as 32 hex characters (ahserver's ``uuid()``)."""
    return _uuid.uuid4().hex


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
    """Replace ``${name}$`` markers in strings, dicts and lists with values.

    ahserver's class of the same name evaluated the text between the markers;
    this one only looks names up (dotted paths allowed), so data can never
    run code. An unknown name is left as it was.
    """

    def __init__(self, pre: str = "${", post: str = "}$") -> None:
        self.pattern = re.compile(re.escape(pre) + r"([A-Za-z_][\w.]*)" + re.escape(post))

    def convert(self, obj: Any, ns: dict[str, Any]) -> Any:
        if isinstance(obj, str):
            whole = self.pattern.fullmatch(obj)
            if whole:
                return self._lookup(whole.group(1), ns, whole.group(0))
            return self.pattern.sub(lambda m: str(self._lookup(m.group(1), ns, m.group(0))), obj)
        if isinstance(obj, dict):
            return {k: self.convert(v, ns) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.convert(v, ns) for v in obj]
        return obj

    @staticmethod
    def _lookup(name: str, ns: dict[str, Any], original: str) -> Any:
        node: Any = ns
        for part in name.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return original
        return node


async def rfexe(func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Run blocking ``func(*args, **kw)`` in the default thread pool and await it."""
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


async def stream_response(
    request: web.Request,
    chunks: AsyncIterable[Any] | Iterable[Any],
    content_type: str = "text/plain",
) -> web.StreamResponse:
    """Send ``chunks`` (str, bytes or JSON-able values) as a streamed response."""
    from ahcore.jsonutil import dumps

    resp = web.StreamResponse()
    resp.content_type = content_type
    await resp.prepare(request)

    async def write(item: Any) -> None:
        if isinstance(item, str):
            item = item.encode("utf-8")
        elif not isinstance(item, (bytes, bytearray)):
            item = dumps(item) + b"\n"
        await resp.write(item)

    if hasattr(chunks, "__aiter__"):
        async for item in chunks:
            await write(item)
    else:
        for item in chunks:
            await write(item)
    await resp.write_eof()
    return resp


_MOBILE = re.compile(r"iphone|ipod|android.*mobile|windows phone|mobile", re.I)
_TABLET = re.compile(r"ipad|android|tablet", re.I)


@functools.lru_cache(maxsize=512)  # a pure function of the header: memoised, bounded
def terminal_type(user_agent: str) -> str:
    """Classify a User-Agent as ``'wechat'``, ``'mobile'``, ``'pad'`` or ``'pc'``.

    Every script and template request asks (``terminalType``), and a site
    sees a few hundred distinct User-Agents, each 100+ characters that two
    case-insensitive searches would scan: the answer is remembered per text
    (a pure function's memo, bounded; no request or site state in it).
    """
    if "MicroMessenger" in user_agent:
        return "wechat"
    if _MOBILE.search(user_agent):
        return "mobile"
    if _TABLET.search(user_agent):
        return "pad"
    return "pc"


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
        return site.resolver.file_url(path)

    def save_file(data: bytes, filename: str = "") -> Any:
        if site.uploads is None:
            raise RuntimeError("save_file needs 'filesroot' in the site config")
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

    return {
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
    """An absolute ``http(s)://host[:port]/…`` URL; absolute URLs pass unchanged."""
    if url.startswith(("http://", "https://", "ws://", "wss://")):
        return url
    context = current_context()
    if url.startswith("/"):
        return request_origin(context.request) + url
    base = context.url.rsplit("/", 1)[0]
    return request_origin(context.request) + base + "/" + url


def websocket_url(url: str) -> str:
    full = entire_url(url)
    return "ws" + full[4:] if full.startswith("http") else full


async def redirect(url: str) -> None:
    raise web.HTTPFound(entire_url(url))


def gethost() -> str | None:
    return current_context().request.remote


async def path_call(path: str, **kw: Any) -> Any:
    """Run another URL's processor with ``kw`` as its parameters; return its value."""
    from ahcore.pipeline import path_call as _path_call

    return await _path_call(current_context(), path, kw)


def file_realpath(subpath: str) -> str:
    uploads = current_context().site.uploads
    if uploads is None:
        not_found()
    return str(uploads.realpath(subpath))


def abspath(url: str) -> str | None:
    from ahcore.resolver import RedirectToSlash, split_segments

    try:
        found = current_context().site.resolver.resolve(split_segments(url), url.endswith("/"))
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


def i18nDict() -> dict[str, str]:
    context = current_context()
    return dict(context.site.translations.table(_lang(context)))


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


@hookimpl
def request_namespace(context: RequestContext) -> dict[str, Any]:
    """The per-request *values* among the kernel's names: ``terminalType``, ``ref_real_path``."""
    resolved = context.resolved
    return {
        "terminalType": terminal_type(context.request.headers.get("User-Agent", "")),
        # ahserver's real path of the file being processed
        "ref_real_path": str(resolved.path) if resolved is not None else None,
    }
