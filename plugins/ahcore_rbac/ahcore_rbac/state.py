"""Per-application rbac state: settings, caches, authenticators, login logic.

Kept on the app under :data:`RBAC_KEY` (never on the module), so two
applications in one process never share users or caches.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from ahcore.api import DatabaseConfig, DBPools, SQLor, current_user
from ahcore_rbac import store
from ahcore_rbac.passwords import MAX_PASSWORD_LENGTH, Passwords, api_key_hash
from ahcore_rbac.rules import ANY, VISITOR_ROLES, PermissionTable, role_name, user_roles
from ahcore_rbac.settings import FALLBACK_SQLITE_FILE, RbacSettings

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from ahcore.api import SiteView

log = logging.getLogger("ahcore_rbac")

Authenticator = Callable[[web.Request], Awaitable[str | None]]
"""An extra way to identify a request's user (no session): returns a user id or None."""

_UNSET = object()
_HEADER_USER: web.RequestKey[Any] = web.RequestKey("ahcore_rbac.header_user", object)
_HEADER_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class UserInfo:
    """A user as access checks see it (cached for ``cache_ttl``)."""

    id: str
    username: str
    orgid: str | None
    roles: frozenset[str]


@dataclass(frozen=True)
class LoginResult:
    """``status`` is ``ok``, ``bad`` (unknown user or wrong password) or ``locked``."""

    status: str
    user: UserInfo | None = None
    retry_after: int = 0


class RbacState:
    """Everything the rbac plugin keeps for one application."""

    def __init__(self, site: SiteView, settings: RbacSettings) -> None:
        self.site = site
        self.settings = settings
        self.passwords = Passwords(settings.argon2, settings.hash_workers)
        self.pools: DBPools | None = None
        self.authenticators: list[Authenticator] = [self.basic_auth, self.bearer_auth]
        self._perms: tuple[float, PermissionTable] | None = None
        self._users: dict[str, tuple[float, UserInfo | None]] = {}
        self._header_users: dict[str, tuple[float, str]] = {}
        self._login_turns = _LoginTurns()
        self._unknown_names = _UnknownNameFailures()

    # ------------------------------------------------------------ database

    def attach(self, pools: DBPools) -> None:
        """Use ``pools``; add the fallback SQLite database when ``db`` is not configured."""
        self.pools = pools
        name = self.settings.db
        if name in pools:
            return
        path = self.site.workdir / FALLBACK_SQLITE_FILE
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            pools.add_database(name, DatabaseConfig(driver="sqlite", kwargs={"dbname": str(path)}))
        except LookupError:
            raise RuntimeError(
                f"plugins.rbac.db is {name!r}, which is not in 'databases', and the sqlite "
                "driver is not enabled for the fallback file: configure the database or "
                'enable "sqlite" in "plugins"'
            ) from None
        log.info("rbac: database %r not configured; using %s", name, path)

    def sor(self) -> AbstractAsyncContextManager[SQLor]:
        """One transaction on the rbac database."""
        if self.pools is None:
            raise RuntimeError("the rbac plugin has not started")
        return self.pools.sqlorContext(self.settings.db)

    async def create_schema(self) -> None:
        async with self.sor() as sor:
            await store.create_schema(sor)

    # ------------------------------------------------------------ caches

    def clear_caches(self) -> None:
        """Forget cached permissions, user roles and header identities (hot reload)."""
        self._perms = None
        self._users.clear()
        self._header_users.clear()

    def _fresh(self, stamp: float) -> bool:
        return time.monotonic() - stamp < self.settings.cache_ttl

    async def permissions(self) -> PermissionTable:
        cached = self._perms
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        async with self.sor() as sor:
            rows = await store.permission_rows(sor)
        granted = [(path, role_name(t, n) if n is not None else None) for path, t, n in rows]
        # plugins.rbac.public: rules open to every visitor, kept in the config.
        granted.extend((rule, ANY) for rule in self.settings.public)
        table = PermissionTable.build(granted)
        self._perms = (time.monotonic(), table)
        return table

    async def user(self, userid: str) -> UserInfo | None:
        """The user with their roles, or None when no such user exists (any more)."""
        cached = self._users.get(userid)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        async with self.sor() as sor:
            row = await store.user_by_id(sor, userid)
            granted = await store.granted_roles(sor, userid) if row is not None else []
        info = None
        if row is not None:
            info = UserInfo(
                str(row["id"]), row["username"], row["orgid"], user_roles(granted, row["orgtypeid"])
            )
        if len(self._users) > _HEADER_CACHE_LIMIT:
            self._users.clear()
        self._users[userid] = (time.monotonic(), info)
        return info

    async def roles_of(self, userid: str | None) -> frozenset[str]:
        """Roles for access checks: visitors get ``anonymous`` and ``any``.

        A session naming a user that no longer exists keeps only ``any``.
        """
        if userid is None:
            return VISITOR_ROLES
        info = await self.user(str(userid))
        return info.roles if info is not None else frozenset({"any"})

    # ------------------------------------------------------------ identity

    async def request_user(self, request: web.Request) -> str | None:
        """The session user, else the user of an ``Authorization`` header (cached per request)."""
        user = await current_user(request)
        if user is not None:
            return str(user)
        return await self.header_user(request)

    async def header_user(self, request: web.Request) -> str | None:
        cached = request.get(_HEADER_USER, _UNSET)
        if cached is not _UNSET:
            return cast("str | None", cached)
        user = None
        for authenticate in self.authenticators:
            user = await authenticate(request)
            if user is not None:
                break
        request[_HEADER_USER] = user
        return user

    def _remember_header(self, key: str, userid: str) -> None:
        if len(self._header_users) > _HEADER_CACHE_LIMIT:
            self._header_users.clear()
        self._header_users[key] = (time.monotonic(), userid)

    def _recall_header(self, key: str) -> str | None:
        cached = self._header_users.get(key)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        return None

    async def basic_auth(self, request: web.Request) -> str | None:
        """``Authorization: Basic``: the same check (and lock-out) as the login endpoint.

        A success is cached by a digest of the header for ``cache_ttl``, so a
        client sending Basic on every request does not pay argon2 each time.
        """
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic" or not value:
            return None
        key = "basic:" + hashlib.sha256(value.strip().encode()).hexdigest()
        userid = self._recall_header(key)
        if userid is not None:
            return userid
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, colon, password = decoded.partition(":")
        if not colon:
            return None
        result = await self.login(username, password)
        if result.status != "ok" or result.user is None:
            return None
        self._remember_header(key, result.user.id)
        return result.user.id

    async def bearer_auth(self, request: web.Request) -> str | None:
        """``Authorization: Bearer <api key>``: looked up by the key's sha256."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        digest = api_key_hash(value.strip())
        key = "bearer:" + digest
        userid = self._recall_header(key)
        if userid is not None:
            return userid
        async with self.sor() as sor:
            row = await store.user_by_api_key(sor, digest)
        if row is None:
            return None
        self._remember_header(key, str(row["id"]))
        return str(row["id"])

    # ------------------------------------------------------------ login

    async def login(self, username: str, password: str) -> LoginResult:
        """Check a username and password, counting failures and honouring lock-out.

        While an account is locked even the right password is refused, so
        guessing cannot continue in the background. A successful login
        clears the failure count (and upgrades an outdated hash).

        The attempts for one username are checked one at a time in this
        process (:class:`_LoginTurns`): each reads the failures the ones
        before it recorded, so guesses sent in parallel cannot all be
        checked before the first failure is counted. With several workers at
        most ``max_failures + workers - 1`` guesses are checked per lock-out.
        """
        if not username or len(password) > MAX_PASSWORD_LENGTH:
            await self.passwords.verify(None, password[:MAX_PASSWORD_LENGTH])
            return LoginResult("bad")
        async with self._login_turns.turn(username):
            return await self._check_login(username, password)

    async def _check_login(self, username: str, password: str) -> LoginResult:
        async with self.sor() as sor:
            row = await store.user_by_name(sor, username)
        now = int(time.time())
        if row is None:
            # A name with no account is counted and locked out exactly as an
            # account is: otherwise the first 429 would tell a guesser which
            # names exist (and the hash check keeps the timing the same).
            unknown = self._unknown_names
            retry_after = unknown.locked_for(username, now)
            if retry_after:
                return LoginResult("locked", retry_after=retry_after)
            await self.passwords.verify(None, password)
            if unknown.failed(username, now, self.settings.max_failures, self.settings.lockout_seconds):
                log.warning("rbac: unknown login name %r locked after %d failed logins",
                            username[:80], self.settings.max_failures)
                return LoginResult("locked", retry_after=self.settings.lockout_seconds)
            return LoginResult("bad")
        userid = str(row["id"])
        locked_until = row["locked_until"]
        if locked_until is not None and int(locked_until) > now:
            return LoginResult("locked", retry_after=int(locked_until) - now)
        if not await self.passwords.verify(row["password_hash"], password):
            async with self.sor() as sor:
                failures = await store.record_failure(sor, userid)
                if failures >= self.settings.max_failures:
                    await store.lock_user(sor, userid, now + self.settings.lockout_seconds)
                    log.warning("rbac: user %r locked after %d failed logins", username, failures)
                    return LoginResult("locked", retry_after=self.settings.lockout_seconds)
            return LoginResult("bad")
        rehash = self.passwords.needs_rehash(row["password_hash"])
        if row["failed_logins"] or locked_until is not None or rehash:
            new_hash = await self.passwords.hash(password) if rehash else None
            async with self.sor() as sor:
                await store.reset_failures(sor, userid)
                if new_hash is not None:
                    await store.set_password_hash(sor, userid, new_hash)
        info = await self.user(userid)
        return LoginResult("ok", info) if info is not None else LoginResult("bad")


class _LoginTurns:
    """One ``asyncio.Lock`` per username with logins in progress, dropped when the last ends.

    Held on the :class:`RbacState` (one per application); only names being
    tried right now have an entry, so unknown names cannot grow it.
    """

    __slots__ = ("_locks",)

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, username: str) -> AsyncIterator[None]:
        entry = self._locks.get(username)
        if entry is None:
            entry = self._locks[username] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[username]


class _UnknownNameFailures:
    """Failed logins and lock-outs of names that have no account, kept in memory.

    An account's failures are counted in the database; a name without one
    has no row to count in, and writing one per guessed name would let
    anyone grow the table. Here each such name gets the same count and the
    same lock-out as an account, so ``429`` and ``Retry-After`` come at the
    same attempt whether the name exists or not.

    Bounded: at most :data:`_UNKNOWN_NAMES_LIMIT` names, each kept as the
    sha256 of its text (a name of a megabyte costs 32 bytes), the least
    recently failed forgotten first (a forgotten name starts counting again,
    which only costs a guesser more password checks). Counted per worker: with
    several workers an account locks after ``max_failures`` failures in all,
    a name without one after ``max_failures`` in one worker.
    """

    __slots__ = ("_names",)

    def __init__(self) -> None:
        # sha256(name) -> [failures in a row, locked until (epoch seconds, 0: not locked)]
        self._names: OrderedDict[bytes, list[int]] = OrderedDict()

    @staticmethod
    def _key(username: str) -> bytes:
        return hashlib.sha256(username.encode("utf-8", "surrogatepass")).digest()

    def locked_for(self, username: str, now: int) -> int:
        """Seconds ``username`` stays locked (0 when it is not)."""
        entry = self._names.get(self._key(username))
        if entry is None or entry[1] <= now:
            return 0
        return entry[1] - now

    def failed(self, username: str, now: int, max_failures: int, lockout_seconds: int) -> bool:
        """Count one failure; True when it locks the name (the count starts again)."""
        names = self._names
        key = self._key(username)
        entry = names.pop(key, None)
        if entry is None or (entry[1] and entry[1] <= now):  # new, or its lock-out is over
            entry = [0, 0]
        entry[0] += 1
        locked = entry[0] >= max_failures
        if locked:
            entry[:] = [0, now + lockout_seconds]
        names[key] = entry
        while len(names) > _UNKNOWN_NAMES_LIMIT:
            names.popitem(last=False)
        return locked


#: Names without an account whose failed logins are remembered (per worker).
_UNKNOWN_NAMES_LIMIT = 10_000


RBAC_KEY: web.AppKey[RbacState] = web.AppKey("ahcore_rbac.state", RbacState)


def get_rbac(app: web.Application) -> RbacState:
    """The rbac state of an application (other plugins append to ``.authenticators``)."""
    return app[RBAC_KEY]
