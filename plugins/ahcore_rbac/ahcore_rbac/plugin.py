"""The plugin module registered as ``rbac`` in the ``ahcore`` entry-point group.

Only public hooks: ``register_routes`` (state and login endpoints, before the
app freezes), ``on_startup`` (hashing pool, database and tables),
``on_shutdown`` (hashing pool), ``auth_check`` (the access decision),
``identify_user`` (header logins), ``on_hot_reload`` (cache clearing) and
``env_globals`` (names for scripts).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ahcore.api import (
    Problem,
    SiteView,
    current_context,
    current_ticket,
    forget_user,
    get_site,
    hookimpl,
    read_body,
    remember_user,
)
from ahcore_rbac.settings import FALLBACK_SQLITE_FILE, RbacSettings
from ahcore_rbac.state import RBAC_KEY, LoginResult, RbacState, UserInfo, get_rbac

log = logging.getLogger("ahcore_rbac")


@hookimpl
def check_settings(settings: Mapping[str, Any], site: SiteView) -> list[Problem]:
    """``plugins.rbac``: every key's type and range, and the database ``db`` names."""
    try:
        parsed = RbacSettings.from_mapping(dict(settings))
    except ValueError as exc:
        return [Problem(str(exc))]
    found = []
    if parsed.db not in site.config.databases:
        fallback = FALLBACK_SQLITE_FILE
        if "sqlite" not in site.drivers:
            found.append(
                Problem(
                    f"plugins.rbac.db: {parsed.db!r} is not in databases and the sqlite "
                    f"driver is off, so the fallback {fallback} cannot be used; add the "
                    'database to databases, or remove "sqlite": false from plugins'
                )
            )
        elif "db" in settings:
            found.append(
                Problem(
                    f"plugins.rbac.db: {parsed.db!r} is not in databases; users and roles "
                    f"are kept in the fallback SQLite file {fallback} (a misspelt name?)",
                    severity="warning",
                )
            )
    if parsed.default == "allow":
        found.append(
            Problem(
                'plugins.rbac.default is "allow": a path no permission rule covers is open '
                "to everyone; remove it to deny by default",
                severity="warning",
            )
        )
    return found


@hookimpl
def register_routes(app: web.Application) -> None:
    """Create the rbac state (so other plugins find it in their ``on_startup``) and the endpoints."""
    site = get_site(app)
    state = RbacState(site, RbacSettings.of(site))
    app[RBAC_KEY] = state
    if state.settings.routes:
        prefix = state.settings.prefix
        app.router.add_post(prefix + "/login", login_view)
        app.router.add_post(prefix + "/logout", logout_view)
        app.router.add_get(prefix + "/whoami", whoami_view)


@hookimpl
async def on_startup(app: web.Application) -> None:
    """Start the hashing pool, attach to the database pools, create the tables when missing."""
    state = get_rbac(app)
    state.passwords.start()
    state.attach(get_site(app).pools)
    await state.create_schema()
    if state.settings.default == "allow":
        log.warning(
            'rbac: plugins.rbac.default is "allow": a path no permission rule covers is open '
            "to everyone. Meant for migrating a site; grant what must stay open (the "
            'permission table, or plugins.rbac.public) and remove the setting to deny by default'
        )


@hookimpl
def on_shutdown(app: web.Application) -> None:
    """Stop the hashing pool."""
    state = app.get(RBAC_KEY)
    if state is not None:
        state.passwords.shutdown()


@hookimpl
async def auth_check(request: web.Request, user: str | None, path: str) -> bool | None:
    """Allow or deny ``path`` by the most specific permission rule.

    A path no rule covers is denied (``plugins.rbac.default: "allow"``:
    abstain, so the kernel's allow applies). Without a session user, an
    ``Authorization`` header (Basic, Bearer or an added authenticator) may
    identify one.
    """
    state = request.app.get(RBAC_KEY)
    if state is None:
        return None
    table = await state.permissions()
    if table.required(path) is None:
        # No identity work for paths no rule covers: the answer is the same for all.
        return None if state.settings.default == "allow" else False
    if user is None:
        user = await state.header_user(request)
    return table.allows(path, await state.roles_of(user))


@hookimpl
async def identify_user(request: web.Request) -> str | None:
    """Basic, bearer and added login methods, so ``get_user()`` and 401/403 see header users."""
    state = request.app.get(RBAC_KEY)
    return None if state is None else await state.header_user(request)


@hookimpl
def on_hot_reload(app: web.Application, data: Mapping[str, Any]) -> None:
    """Any hot reload also drops cached roles and permissions (edits show at once)."""
    state = app.get(RBAC_KEY)
    if state is not None:
        state.clear_caches()


async def rbac_login(username: str, password: str) -> dict[str, Any]:
    """Check a password and, when it is right, log the visitor in (for a site's own login page)."""
    request = current_context().request
    state = get_rbac(request.app)
    result = await state.login(username, password)
    if result.status == "ok" and result.user is not None:
        await remember_user(request, result.user.id, result.user.username, result.user.orgid or "")
    return _result_body(result)


async def rbac_roles() -> list[str]:
    """The visitor's roles, sorted."""
    request = current_context().request
    state = get_rbac(request.app)
    return sorted(await state.roles_of(await state.request_user(request)))


@hookimpl
def env_globals(app: web.Application) -> dict[str, Any]:
    """``rbac_login(username, password)`` and ``rbac_roles()``; each finds its
    request through ``ahcore.current_context()``."""
    return {"rbac_login": rbac_login, "rbac_roles": rbac_roles}


# ------------------------------------------------------------------ endpoints


def _user_body(info: UserInfo) -> dict[str, Any]:
    return {"id": info.id, "username": info.username, "orgid": info.orgid}


def _result_body(result: LoginResult) -> dict[str, Any]:
    if result.status == "ok" and result.user is not None:
        return {"ok": True, "user": _user_body(result.user)}
    if result.status == "locked":
        return {
            "ok": False,
            "error": "account locked after too many failed logins; "
            f"try again in {result.retry_after} s",
            "retry_after": result.retry_after,
        }
    return {"ok": False, "error": "wrong username or password"}


async def _credentials(request: web.Request) -> tuple[str, str]:
    """The form's or JSON object's ``username`` and ``password``.

    Read by the kernel's one body reader: bound by ``client_max_size`` and
    ``website.request_timeout``, so a client trickling its body cannot hold
    the connection; a JSON body that is not an object is a 400.
    """
    data = await read_body(request, "fields")
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise web.HTTPBadRequest(text="400: username and password are required\n")
    return username, password


async def login_view(request: web.Request) -> web.Response:
    """``POST {prefix}/login``: 200 and a fresh session, 401 wrong, 429 locked."""
    username, password = await _credentials(request)
    result = await get_rbac(request.app).login(username, password)
    body = _result_body(result)
    if result.status == "ok" and result.user is not None:
        user = result.user
        await remember_user(request, user.id, user.username, user.orgid or "")
        return web.json_response(body)
    if result.status == "locked":
        return web.json_response(
            body, status=429, headers={"Retry-After": str(max(result.retry_after, 1))}
        )
    return web.json_response(body, status=401)


async def logout_view(request: web.Request) -> web.Response:
    """``POST {prefix}/logout``: clears the session."""
    await forget_user(request)
    return web.json_response({"ok": True})


async def whoami_view(request: web.Request) -> web.Response:
    """``GET {prefix}/whoami``: the user (session or header) and their roles."""
    state = get_rbac(request.app)
    userid = await state.request_user(request)
    info = await state.user(userid) if userid is not None else None
    via = None
    if userid is not None:
        via = "session" if await current_ticket(request) else "header"
    return web.json_response(
        {
            "user": _user_body(info) if info is not None else None,
            "via": via,
            "roles": sorted(await state.roles_of(userid)),
        }
    )
