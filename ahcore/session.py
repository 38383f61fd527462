"""Sessions and login tickets on aiohttp-session storages.

Sessions live in Fernet-encrypted cookies by default, or in Redis when
``website.session_redis`` is set (so several workers and machines share
them). ahcore does not use aiohttp-session's middleware: the session is
loaded on demand and saved from ``on_response_prepare``, which runs for
every response kind — plain, file and streamed — before headers go out.
That is what lets the login ticket be reissued on a streamed response, the
bug ahserver had.

The login ticket holds ``userid``, ``username``, ``userorgid``, the time it
was issued and a random session id (``sid``). It expires ``session_max_time``
seconds after it was last issued and is reissued once older than
``session_reissue_time``. Logging in always starts a fresh session (a
planted cookie never becomes the logged-in session). Logging out — or in
again — ends the old ticket everywhere: its ``sid`` is recorded in
:mod:`ahcore.revocations` (Redis, or a SQLite file in the site) until it
would have expired, so a copy of the cookie replayed later is anonymous;
with Redis the server-side session is deleted as well.

The cookie itself goes out through :func:`ahcore.cookies.set_cookie`, the
one place that decides HttpOnly, SameSite and Secure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import platformdirs
from aiohttp import hdrs, web
from aiohttp_session import AbstractStorage, Session

from ahcore.appkeys import SITE_KEY
from ahcore.context import current_context
from ahcore.cookies import delete_cookie, set_cookie
from ahcore.csrf import COOKIE_NAME, STATE_CHANGING, cross_origin_reason, csrf_refusal  # noqa: F401 (re-exported)
from ahcore.dictobject import DictObject
from ahcore.plugins import await_me_maybe, hook_callers, hookimpl
from ahcore.revocations import RedisRevocations, Revocations, SqliteRevocations, sqlite_path

if TYPE_CHECKING:
    from ahcore.config import SiteConfig
    from ahcore.site import Site

log = logging.getLogger("ahcore.session")

TICKET = "ahcore.ticket"
_UNSET: Any = object()
#: Shortest ``website.cookie_secret`` accepted outside ``--debug`` (bytes, UTF-8).
MIN_SECRET_BYTES = 32


@dataclass
class RequestSessionState:
    """Session state of one request, in one mutable object.

    Behind a trusted proxy the handler sees a *clone* of the request (with
    the forwarded scheme, host and address). aiohttp copies the request's
    storage shallowly into the clone, so both share this object: what the
    handler does to the session is what ``on_response_prepare``, which gets
    the original request, saves (the cookie function works out the
    visitor's scheme from the original itself).
    """

    session: Session | None = None
    drop: Any = None  # identity of a session to delete server-side (Redis)
    user: Any = _UNSET
    live_sid: str | None = None  # a ticket's sid already found not revoked


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
    #: Makes the storage on first use (:attr:`storage`).
    make_storage: Callable[[], AbstractStorage]
    max_time: int
    reissue_time: int
    revocations: Revocations
    redis: Any = None  # redis.asyncio.Redis when sessions live in Redis
    _storage: AbstractStorage | None = field(default=None, repr=False)

    @property
    def storage(self) -> AbstractStorage:
        """The storage, made when the first session is loaded or saved.

        The cookie storage's Fernet cipher brings in ``cryptography`` (about
        6 MB per worker): a worker that never meets a session cookie never
        pays for it. Everything that can fail (the secret, Redis's URL) is
        read at start-up, so making it later cannot fail.
        """
        storage = self._storage
        if storage is None:
            storage = self._storage = self.make_storage()
        return storage


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


def weak_secret_problem(config: SiteConfig) -> str | None:
    """Why ``website.cookie_secret`` is too short for production, or None.

    Anyone who guesses the secret can forge a login for any user, and a
    short one is guessed offline from a single cookie. Unset is fine (a
    random 32-byte secret is generated); an empty string counts as unset.
    """
    secret = config.website.cookie_secret
    if not secret:
        return None
    size = len(secret.encode("utf-8"))
    if size >= MIN_SECRET_BYTES:
        return None
    return (
        f"website.cookie_secret is {size} bytes; at least {MIN_SECRET_BYTES} are needed "
        "(only --debug accepts a shorter one). Generate one with: "
        'python -c "import secrets; print(secrets.token_urlsafe(32))" '
        'and keep it out of the file: "cookie_secret": "$[ENV:AHCORE_COOKIE_SECRET]$"'
    )


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
    """Create the storage and the revocations store (at start-up: Redis needs a running loop)."""
    w = site.config.website
    # The cookie's attributes are decided by ahcore.cookies.set_cookie when
    # the session is saved; the storage only names the cookie and its age.
    params: dict[str, Any] = {"cookie_name": COOKIE_NAME, "max_age": w.session_max_time}
    redis = None
    make_storage: Callable[[], AbstractStorage]
    revocations: Revocations
    if w.session_redis is not None:
        import redis.asyncio as aioredis
        from aiohttp_session.redis_storage import RedisStorage

        redis = aioredis.from_url(w.session_redis.url)
        storage = RedisStorage(redis, **params)
        make_storage = lambda: storage  # noqa: E731
        revocations = RedisRevocations(redis, f"{COOKIE_NAME}_revoked_")
    else:
        secret = site_secret(site)

        def make_storage() -> AbstractStorage:
            from aiohttp_session.cookie_storage import EncryptedCookieStorage

            return EncryptedCookieStorage(secret, **params)

        revocations = SqliteRevocations(sqlite_path(site.workdir))
    app[SESSIONS] = SessionSettings(
        make_storage, w.session_max_time, w.session_reissue_time, revocations, redis
    )


async def sessions_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """The session storage and the revocations store, for as long as the application runs."""
    await setup_sessions(app, app[SITE_KEY])
    yield
    await close_sessions(app)


async def close_sessions(app: web.Application) -> None:
    settings = app.get(SESSIONS)
    if settings is None:
        return
    await settings.revocations.close()
    if settings.redis is not None:
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
    """The session's ticket when it is well-formed and not expired (revocation aside)."""
    ticket = session.get(TICKET)
    if not isinstance(ticket, dict):
        return None
    issued = ticket.get("issued")
    if not isinstance(issued, (int, float)) or time.time() - issued > settings.max_time:
        return None
    if not isinstance(ticket.get("sid"), str):
        return None  # every ticket remember_user writes has one
    return ticket


async def _live_ticket(
    request: web.Request, session: Session, settings: SessionSettings
) -> dict[str, Any] | None:
    """The ticket, unless expired or ended by a logout (looked up once per request)."""
    ticket = _ticket(session, settings)
    if ticket is None:
        return None
    state = request_state(request)
    sid = ticket["sid"]
    if state.live_sid == sid:
        return ticket
    if await settings.revocations.is_revoked(sid):
        return None
    state.live_sid = sid
    return ticket


async def _end_ticket(
    request: web.Request, ticket: dict[str, Any] | None, settings: SessionSettings
) -> None:
    """Record ``ticket`` as ended, so no copy of its cookie logs in again."""
    if ticket is None:
        return
    request_state(request).live_sid = None
    # A copy's ticket was issued at the latest now: it would expire by now + max_time.
    await settings.revocations.revoke(ticket["sid"], time.time() + settings.max_time)


async def current_ticket(request: web.Request) -> dict[str, Any] | None:
    settings = request.app.get(SESSIONS)
    if settings is None or not _has_cookie(request):
        return None
    session = await get_session(request)
    return await _live_ticket(request, session, settings) if session is not None else None


async def current_user(request: web.Request) -> str | None:
    """The logged-in user id, or None (also when the ticket expired).

    Without a session user, ``identify_user`` plugins are asked (header
    logins such as Basic or bearer keys).
    """
    state = request_state(request)
    if state.user is not _UNSET:
        return cast("str | None", state.user)
    ticket = await current_ticket(request)
    user = ticket.get("userid") if ticket else None
    if user is None:
        user = await _identify(request)
    state.user = user
    return cast("str | None", user)


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
    """Log ``userid`` in: always in a fresh session, so a planted id never survives.

    A ticket the visitor already had (another login) is ended as at logout.
    A login asked for by another site's page (login CSRF: a cross-site form
    posting an attacker's credentials) is refused with 403 — every login
    path (the rbac endpoint, ``rbac_login``, a script's ``remember_user``)
    comes through here.
    """
    reason = cross_origin_reason(request)
    if reason is not None:
        raise web.HTTPForbidden(text=f"403: login refused: {reason}\n")
    settings = request.app[SESSIONS]
    old = await get_session(request)
    if old is not None:
        if old.identity is not None:
            request_state(request).drop = old.identity
        if _has_cookie(request):
            await _end_ticket(request, _ticket(old, settings), settings)
    session = Session(None, data=None, new=True, max_age=settings.max_time)
    sid = secrets.token_urlsafe(18)
    session[TICKET] = {
        "userid": userid,
        "username": username,
        "userorgid": userorgid,
        "issued": int(time.time()),
        "sid": sid,
    }
    state = request_state(request)
    state.session = session
    state.user = userid
    state.live_sid = sid


async def forget_user(request: web.Request) -> None:
    """Log out: the session is cleared, and its ticket ended everywhere.

    The ticket's id is recorded as revoked (so a copy of the cookie is
    anonymous from now on); with Redis the session is deleted server-side
    as well. The session is cleared first: should recording fail, the
    visitor's own cookie is still cleared by the error response.
    """
    session = await get_session(request)
    if session is None:
        return
    settings = request.app[SESSIONS]
    state = request_state(request)
    if session.identity is not None:
        state.drop = session.identity
    ticket = _ticket(session, settings) if _has_cookie(request) else None
    session.invalidate()
    state.user = None
    await _end_ticket(request, ticket, settings)


def _has_cookie(request: web.Request) -> bool:
    return COOKIE_NAME in request.cookies


def peek_state(request: web.Request) -> RequestSessionState | None:
    """The request's session state if something made it, else None (nothing is created).

    Most requests store nothing in the request at all: ``len`` answers
    that without the ``KeyError`` a missing key costs ``request.get``.
    """
    return request.get(_STATE) if len(request) else None


def may_need_saving(request: web.Request) -> bool:
    """False in the common case: no session touched and no session cookie sent."""
    state = peek_state(request)
    if state is not None and state.session is not None:
        return True
    return hdrs.COOKIE in request.headers and COOKIE_NAME in request.cookies


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Save a changed session and reissue an ageing ticket, for every response kind.

    Runs for every response, so the common case — no session touched and no
    session cookie sent — returns before creating anything
    (:func:`may_need_saving`).
    """
    state = peek_state(request)
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
    ticket = await _live_ticket(request, session, settings)
    if ticket is not None and time.time() - ticket["issued"] > settings.reissue_time:
        ticket = dict(ticket, issued=int(time.time()))
        session[TICKET] = ticket
    elif ticket is None and TICKET in session:
        del session[TICKET]  # expired or ended: drop it so the cookie stops carrying it
    drop = state.drop
    if drop is not None and settings.redis is not None:
        await settings.redis.delete(f"{COOKIE_NAME}_{drop}")
    if session._changed or session.new and not session.empty:  # noqa: SLF001
        await settings.storage.save_session(request, response, session)
        # The storage put its cookie (value and age) in response.cookies,
        # which aiohttp has already turned into headers: the one cookie
        # function writes it, with the attributes it decides.
        morsel = response.cookies.pop(COOKIE_NAME, None)
        if morsel is not None:
            if morsel.value:
                set_cookie(request, response, COOKIE_NAME, morsel.value, max_age=settings.max_time)
            else:
                delete_cookie(request, response, COOKIE_NAME)


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


async def get_userinfo() -> DictObject:
    """ahserver's ``get_userinfo()``: ``{userid, username, userorgid}`` as text; empty when anonymous.

    A user known from a header login (``identify_user``) has only ``userid``
    (the other two ``''``).
    """
    request = current_context().request
    ticket = await current_ticket(request)
    if ticket is not None:
        parts = (ticket.get("userid"), ticket.get("username"), ticket.get("userorgid"))
    else:
        user = await current_user(request)
        if user is None:
            return DictObject()
        parts = (user, "", "")
    userid, username, userorgid = ("" if p is None else str(p) for p in parts)
    return DictObject(userid=userid, username=username, userorgid=userorgid)


async def get_username() -> str | None:
    """ahserver's ``get_username()``: the ``username`` given at login; None when anonymous."""
    return cast("str | None", (await get_userinfo()).username)


def _identity(info: DictObject) -> str | None:
    """ahserver's ``user``: the login as ``"userid:username:userorgid"`` text."""
    if not info:
        return None
    return f"{info.userid}:{info.username}:{info.userorgid}"


async def _lookup_user() -> str | None:
    return _identity(await get_userinfo())


def request_user(context: Any) -> Any:
    """ahserver's per-request ``user``: ``"userid:username:userorgid"``, None, or a coroutine of one.

    Free for a visitor with no session cookie on a site without header
    logins; otherwise looked up once (the access check usually has already).
    :meth:`ahcore.context.RequestContext.namespace` calls this itself, not
    through the ``request_namespace`` hook (see there).
    """
    request = context.request
    state = peek_state(request)
    known = state.user if state is not None else _UNSET
    if known is None:
        return None
    if (
        known is _UNSET
        and (hdrs.COOKIE not in request.headers or COOKIE_NAME not in request.cookies)
        and not getattr(context.site, "identifies_users", True)
    ):
        return None
    return _lookup_user()


# ------------------------------------------------------------------ session values
#
# ahserver scripts kept their own values in the session (get_session,
# session_getvalue, session_setvalue). They live in the same aiohttp-session
# session as the ticket, under one key, so they are stored where the session
# is: in the encrypted cookie (the default) or in Redis. Values are JSON (the
# storage's encoder), bounded so a cookie stays under the browsers' 4 KiB.
# They belong to the login they were set under: a login starts a fresh
# session (values set before it are gone), and values set while logged in
# are dropped once that ticket has ended (logout, expiry, another login), so
# a cookie copied before logout does not keep them.

VALUES = "ahcore.values"
#: Largest JSON text of a session's values: in a cookie, and in Redis.
COOKIE_VALUES_LIMIT = 2048
REDIS_VALUES_LIMIT = 64 * 1024


class SessionValues(MutableMapping[str, Any]):
    """A script's values in the visitor's session (ahserver's ``await get_session()``).

    A dict-like object: ``s['k'] = v``, ``s.get('k')``, ``del s['k']`` …
    Keys are text, values JSON (lists, dicts, text, numbers, ``None``);
    anything else, or more than the size limit, is a ``ValueError`` and
    nothing changes. Changes are saved with the response.
    """

    def __init__(self, session: Session, sid: str | None, limit: int) -> None:
        self._session = session
        self._sid = sid
        self.limit = limit
        stored = session.get(VALUES)
        if isinstance(stored, dict) and stored.get("sid") == sid and isinstance(stored.get("v"), dict):
            self._values: dict[str, Any] = dict(stored["v"])
        else:
            self._values = {}
            if stored is not None:
                del session[VALUES]  # another login's values, or not ours: dropped

    def _store(self, values: dict[str, Any]) -> None:
        try:
            size = len(json.dumps(values))  # as the storage encodes it (ASCII, \u escapes)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"session values must be JSON (text, numbers, lists, dicts): {exc}") from None
        if size > self.limit:
            raise ValueError(
                f"session values would take {size} bytes; the limit is {self.limit} "
                "(keep large data in the database, and its id in the session)"
            )
        self._values = values
        if values:
            self._session[VALUES] = {"sid": self._sid, "v": values}
        elif VALUES in self._session:
            del self._session[VALUES]

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise ValueError(f"session keys are text, not {type(key).__name__}")
        self._store({**self._values, key: value})

    def __delitem__(self, key: str) -> None:
        values = dict(self._values)
        del values[key]
        self._store(values)

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SessionValues({self._values!r})"


async def session_values(request: web.Request) -> SessionValues:
    """The script values of ``request``'s session (see :class:`SessionValues`)."""
    session = await get_session(request)
    if session is None:
        raise RuntimeError("sessions are not set up for this application")
    settings = request.app[SESSIONS]
    ticket = await current_ticket(request)
    limit = REDIS_VALUES_LIMIT if settings.redis is not None else COOKIE_VALUES_LIMIT
    return SessionValues(session, ticket["sid"] if ticket else None, limit)


async def _get_session() -> SessionValues:
    return await session_values(current_context().request)


async def session_getvalue(key: str, defaultvalue: Any = None) -> Any:
    """ahserver's ``session_getvalue(key, default)``."""
    return (await _get_session()).get(key, defaultvalue)


async def session_setvalue(key: str, value: Any) -> None:
    """ahserver's ``session_setvalue(key, value)``: saved with the response."""
    (await _get_session())[key] = value


@hookimpl
def env_globals(app: web.Application) -> dict[str, Any]:
    """The session names; each finds its request through ``current_context()``."""
    return {
        "get_session": _get_session,
        "session_getvalue": session_getvalue,
        "session_setvalue": session_setvalue,
        "get_username": get_username,
        "get_userinfo": get_userinfo,
        "get_user": get_user,
        "remember_user": _remember_user,
        "forget_user": _forget_user,
        "get_ticket": get_ticket,
        "get_userorgid": get_userorgid,
    }
