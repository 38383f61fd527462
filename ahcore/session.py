"""Sessions and login tickets on aiohttp-session storages.

Sessions live in Fernet-encrypted cookies by default, or in Redis when
``website.session_redis`` is set (so several workers and machines share
them). ahcore does not use aiohttp-session's middleware: the session is
loaded on demand and saved from ``on_response_prepare``, which runs for
every response kind — plain, file and streamed — before headers go out.
That is what lets the login ticket be reissued on a streamed response, the
bug ahserver had.

The login ticket holds ``userid``, ``username``, ``userorgid`` and the time it
was issued. It expires ``session_max_time`` seconds after it was last issued
and is reissued once older than ``session_reissue_time``. Logging in always
starts a fresh session (a planted cookie never becomes the logged-in
session). With Redis, logout deletes the session server-side; with cookie
sessions an old cookie stops working when its ticket expires.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from aiohttp import hdrs, web
from aiohttp_session import AbstractStorage, Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from ahcore.appkeys import SITE_KEY
from ahcore.context import current_context
from ahcore.csrf import COOKIE_NAME, STATE_CHANGING, csrf_refusal  # noqa: F401 (re-exported)
from ahcore.plugins import await_me_maybe, hook_callers, hookimpl

if TYPE_CHECKING:
    from ahcore.site import Site

log = logging.getLogger("ahcore.session")

TICKET = "ahcore.ticket"
_UNSET: Any = object()


@dataclass
class RequestSessionState:
    """Session state of one request, in one mutable object.

    Behind a trusted proxy the handler sees a *clone* of the request (with
    the forwarded scheme, host and address). aiohttp copies the request's
    storage shallowly into the clone, so both share this object: what the
    handler does to the session is what ``on_response_prepare``, which gets
    the original request, saves — with the visitor's scheme for ``Secure``.
    """

    session: Session | None = None
    drop: Any = None  # identity of a session to delete server-side (Redis)
    user: Any = _UNSET
    secure: bool | None = None  # the visitor's https, when a proxy told us


_STATE: web.RequestKey[RequestSessionState] = web.RequestKey(
    "ahcore.session_state", RequestSessionState
)


def request_state(request: web.Request) -> RequestSessionState:
    """The request's session state, created on first use (before any clone)."""
    state = request.get(_STATE)
    if state is None:
        state = request[_STATE] = RequestSessionState()
    return state


@dataclass
class SessionSettings:
    storage: AbstractStorage
    max_time: int
    reissue_time: int
    redis: Any = None  # redis.asyncio.Redis when sessions live in Redis


SESSIONS: web.AppKey[SessionSettings] = web.AppKey("ahcore.sessions", t=object)  # type: ignore[arg-type]


# ------------------------------------------------------------------ secret


def site_secret(site: Site) -> bytes:
    """32 bytes for the cookie cipher: from ``cookie_secret``, or generated once.

    There is no built-in default. Without ``cookie_secret`` a random secret is
    created on first start in ``conf/.session_secret`` (mode 0600), or in the
    user data dir when ``conf/`` is not writable, and a warning says so.
    """
    configured = site.config.website.cookie_secret
    if configured:
        return hashlib.sha256(configured.encode("utf-8")).digest()
    for path in _secret_locations(site):
        secret = _read_or_create_secret(path)
        if secret is not None:
            log.warning(
                "website.cookie_secret is not set; using the generated secret in %s "
                "(set cookie_secret, e.g. from $[ENV:NAME]$, to share sessions between machines)",
                path,
            )
            return secret
    raise RuntimeError("cannot store a generated session secret; set website.cookie_secret")


def _secret_locations(site: Site) -> list[Path]:
    digest = hashlib.sha256(str(site.workdir.resolve()).encode()).hexdigest()[:16]
    data = Path(platformdirs.user_data_dir("ahcore")) / "secrets" / f"{digest}.key"
    return [site.workdir / "conf" / ".session_secret", data]


def _read_or_create_secret(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data[:32]
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race
        data = path.read_bytes()
        return data[:32] if len(data) >= 32 else None
    except OSError:
        return None
    secret = os.urandom(32)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return secret


# ------------------------------------------------------------------ setup


async def setup_sessions(app: web.Application, site: Site) -> None:
    """Create the storage (at start-up: Redis needs a running loop)."""
    w = site.config.website
    params: dict[str, Any] = {
        "cookie_name": COOKIE_NAME,
        "max_age": w.session_max_time,
        "httponly": True,
        "samesite": "Lax",
    }
    redis = None
    storage: AbstractStorage
    if w.session_redis is not None:
        import redis.asyncio as aioredis
        from aiohttp_session.redis_storage import RedisStorage

        redis = aioredis.from_url(w.session_redis.url)
        storage = RedisStorage(redis, **params)
    else:
        storage = EncryptedCookieStorage(site_secret(site), **params)
    app[SESSIONS] = SessionSettings(storage, w.session_max_time, w.session_reissue_time, redis)


async def close_sessions(app: web.Application) -> None:
    settings = app.get(SESSIONS)
    if settings is not None and settings.redis is not None:
        await settings.redis.aclose()


# ------------------------------------------------------------------ access


async def get_session(request: web.Request) -> Session | None:
    """The request's session, loaded once; None when sessions are not set up."""
    state = request_state(request)
    session = state.session
    if session is not None:
        return session
    settings = request.app.get(SESSIONS)
    if settings is None:
        return None
    session = await settings.storage.load_session(request)
    state.session = session
    return session


def _ticket(session: Session, settings: SessionSettings) -> dict[str, Any] | None:
    ticket = session.get(TICKET)
    if not isinstance(ticket, dict):
        return None
    issued = ticket.get("issued")
    if not isinstance(issued, (int, float)) or time.time() - issued > settings.max_time:
        return None
    return ticket


async def current_ticket(request: web.Request) -> dict[str, Any] | None:
    settings = request.app.get(SESSIONS)
    if settings is None or not _has_cookie(request):
        return None
    session = await get_session(request)
    return _ticket(session, settings) if session is not None else None


async def current_user(request: web.Request) -> str | None:
    """The logged-in user id, or None (also when the ticket expired).

    Without a session user, ``identify_user`` plugins are asked (header
    logins such as Basic or bearer keys).
    """
    state = request_state(request)
    if state.user is not _UNSET:
        return state.user
    ticket = await current_ticket(request)
    user = ticket.get("userid") if ticket else None
    if user is None:
        user = await _identify(request)
    state.user = user
    return user


async def _identify(request: web.Request) -> Any:
    """Ask ``identify_user`` plugins (Basic, bearer keys …) in turn; first answer wins."""
    site = request.app.get(SITE_KEY)
    if site is None:
        return None
    # firstresult, one plugin at a time: an async implementation's answer is
    # only known once awaited, so pluggy alone would stop at its coroutine.
    for _plugin, caller in hook_callers(site.pm, "identify_user"):
        user = await await_me_maybe(caller(request=request))
        if user is not None:
            return user
    return None


async def remember_user(
    request: web.Request, userid: Any, username: str = "", userorgid: str = ""
) -> None:
    """Log ``userid`` in: always in a fresh session, so a planted id never survives."""
    settings = request.app[SESSIONS]
    old = await get_session(request)
    if old is not None and old.identity is not None:
        request_state(request).drop = old.identity
    session = Session(None, data=None, new=True, max_age=settings.max_time)
    session[TICKET] = {
        "userid": userid,
        "username": username,
        "userorgid": userorgid,
        "issued": int(time.time()),
    }
    state = request_state(request)
    state.session = session
    state.user = userid


async def forget_user(request: web.Request) -> None:
    """Log out: the session is cleared (and deleted server-side with Redis)."""
    session = await get_session(request)
    if session is None:
        return
    if session.identity is not None:
        request_state(request).drop = session.identity
    session.invalidate()
    request_state(request).user = None


def _has_cookie(request: web.Request) -> bool:
    return COOKIE_NAME in request.cookies


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Save a changed session and reissue an ageing ticket, for every response kind.

    Runs for every response, so the common case — no session touched and no
    session cookie sent — returns before creating anything.
    """
    state = request.get(_STATE)
    session = state.session if state is not None else None
    if session is None and (
        hdrs.COOKIE not in request.headers or COOKIE_NAME not in request.cookies
    ):
        return
    settings = request.app.get(SESSIONS)
    if settings is None:
        return
    if state is None:
        state = request_state(request)
    if session is None:
        session = await get_session(request)
    assert session is not None
    ticket = _ticket(session, settings)
    if ticket is not None and time.time() - ticket["issued"] > settings.reissue_time:
        ticket = dict(ticket, issued=int(time.time()))
        session[TICKET] = ticket
    elif ticket is None and TICKET in session:
        del session[TICKET]  # expired: drop it so the cookie stops carrying it
    drop = state.drop
    if drop is not None and settings.redis is not None:
        await settings.redis.delete(f"{COOKIE_NAME}_{drop}")
    if session._changed or session.new and not session.empty:  # noqa: SLF001
        await settings.storage.save_session(request, response, session)
        morsel = response.cookies.get(COOKIE_NAME)
        if morsel is not None:
            if state.secure if state.secure is not None else request.secure:
                morsel["secure"] = True
            # aiohttp has already turned response.cookies into headers when
            # this signal runs, so the cookie goes in as a header.
            response.headers.add(hdrs.SET_COOKIE, morsel.output(header="")[1:])


# ------------------------------------------------------------------ CSRF


# ------------------------------------------------------------------ namespace


async def get_user() -> str | None:
    """The logged-in user's id, or None (ahserver's ``get_user()``)."""
    return await current_user(current_context().request)


async def _remember_user(userid: Any, username: str = "", userorgid: str = "") -> None:
    await remember_user(current_context().request, userid, username, userorgid)


async def _forget_user() -> None:
    await forget_user(current_context().request)


async def get_ticket() -> dict[str, Any] | None:
    return await current_ticket(current_context().request)


async def get_userorgid() -> str | None:
    """The ``userorgid`` given to ``remember_user``, as text; None when nobody is logged in.

    ahserver kept the login as ``"userid:username:userorgid"`` text, so the
    value always came back a ``str`` (``''`` when none was given).
    """
    ticket = await current_ticket(current_context().request)
    if ticket is None:
        return None
    orgid = ticket.get("userorgid")
    return "" if orgid is None else str(orgid)


@hookimpl
def env_globals(app: web.Application) -> dict[str, Any]:
    """The session names; each finds its request through ``current_context()``."""
    return {
        "get_user": get_user,
        "remember_user": _remember_user,
        "forget_user": _forget_user,
        "get_ticket": get_ticket,
        "get_userorgid": get_userorgid,
    }
