"""The rbac tables and every statement on them, through ahcore's sqlor layer.

Ids are uuid4 hex strings, so the same DDL works on SQLite, PostgreSQL and
MySQL (no engine-specific auto-increment). Every value is bound through
``${name}$`` placeholders, never spliced into SQL text.
"""

from __future__ import annotations

import uuid
from typing import Any

from ahcore.api import DictObject, SQLor
from ahcore_rbac.rules import split_role

SCHEMA = (
    """create table if not exists users (
        id varchar(32) primary key,
        username varchar(255) not null unique,
        password_hash varchar(255) not null,
        orgid varchar(64),
        orgtypeid varchar(64),
        failed_logins integer not null default 0,
        locked_until bigint,
        api_key_hash varchar(64)
    )""",
    """create table if not exists role (
        id varchar(32) primary key,
        orgtypeid varchar(64) not null,
        name varchar(128) not null,
        unique (orgtypeid, name)
    )""",
    """create table if not exists userrole (
        id varchar(32) primary key,
        userid varchar(32) not null,
        roleid varchar(32) not null,
        unique (userid, roleid)
    )""",
    """create table if not exists permission (
        id varchar(32) primary key,
        path varchar(512) not null unique
    )""",
    """create table if not exists rolepermission (
        id varchar(32) primary key,
        roleid varchar(32) not null,
        permid varchar(32) not null,
        unique (roleid, permid)
    )""",
)


def new_id() -> str:
    return uuid.uuid4().hex


async def create_schema(sor: SQLor) -> None:
    """Create the five tables when missing (idempotent: runs at every start)."""
    for ddl in SCHEMA:
        await sor.sqlExe(ddl, {})


# ------------------------------------------------------------------ users


async def user_by_name(sor: SQLor, username: str) -> DictObject | None:
    rows = await sor.sqlExe("select * from users where username = ${u}$", {"u": username})
    return rows[0] if rows else None


async def user_by_id(sor: SQLor, userid: str) -> DictObject | None:
    rows = await sor.sqlExe("select * from users where id = ${id}$", {"id": userid})
    return rows[0] if rows else None


async def user_by_api_key(sor: SQLor, key_hash: str) -> DictObject | None:
    rows = await sor.sqlExe("select * from users where api_key_hash = ${h}$", {"h": key_hash})
    return rows[0] if rows else None


async def add_user(
    sor: SQLor,
    username: str,
    password_hash: str,
    orgid: str | None = None,
    orgtypeid: str | None = None,
) -> str:
    userid = new_id()
    await sor.sqlExe(
        "insert into users (id, username, password_hash, orgid, orgtypeid, failed_logins)"
        " values (${id}$, ${u}$, ${h}$, ${o}$, ${t}$, 0)",
        {"id": userid, "u": username, "h": password_hash, "o": orgid, "t": orgtypeid},
    )
    return userid


async def set_password_hash(sor: SQLor, userid: str, password_hash: str) -> None:
    await sor.sqlExe(
        "update users set password_hash = ${h}$ where id = ${id}$", {"h": password_hash, "id": userid}
    )


async def set_api_key_hash(sor: SQLor, userid: str, key_hash: str | None) -> None:
    await sor.sqlExe(
        "update users set api_key_hash = ${h}$ where id = ${id}$", {"h": key_hash, "id": userid}
    )


async def record_failure(sor: SQLor, userid: str) -> int:
    """Count one more failed login (atomically) and return the new count."""
    await sor.sqlExe(
        "update users set failed_logins = failed_logins + 1 where id = ${id}$", {"id": userid}
    )
    rows = await sor.sqlExe("select failed_logins from users where id = ${id}$", {"id": userid})
    return int(rows[0]["failed_logins"]) if rows else 0


async def lock_user(sor: SQLor, userid: str, until: int) -> None:
    await sor.sqlExe(
        "update users set locked_until = ${until}$, failed_logins = 0 where id = ${id}$",
        {"until": until, "id": userid},
    )


async def reset_failures(sor: SQLor, userid: str) -> None:
    await sor.sqlExe(
        "update users set failed_logins = 0, locked_until = null where id = ${id}$", {"id": userid}
    )


# ------------------------------------------------------------------ roles and grants


async def granted_roles(sor: SQLor, userid: str) -> list[tuple[str, str]]:
    rows = await sor.sqlExe(
        "select r.orgtypeid, r.name from userrole ur join role r on r.id = ur.roleid"
        " where ur.userid = ${id}$",
        {"id": userid},
    )
    return [(r["orgtypeid"], r["name"]) for r in rows]


async def ensure_role(sor: SQLor, role: str) -> str:
    """The id of role ``t.n`` (or a bare implicit name), created when missing."""
    orgtypeid, name = split_role(role)
    if not name:
        raise ValueError(f"bad role name {role!r}")
    rows = await sor.sqlExe(
        "select id from role where orgtypeid = ${t}$ and name = ${n}$", {"t": orgtypeid, "n": name}
    )
    if rows:
        return str(rows[0]["id"])
    roleid = new_id()
    await sor.sqlExe(
        "insert into role (id, orgtypeid, name) values (${id}$, ${t}$, ${n}$)",
        {"id": roleid, "t": orgtypeid, "n": name},
    )
    return roleid


async def ensure_permission(sor: SQLor, path: str) -> str:
    """The id of the permission for path rule ``path``, created when missing."""
    if not path.startswith("/"):
        raise ValueError(f"a permission path starts with '/': {path!r}")
    rows = await sor.sqlExe("select id from permission where path = ${p}$", {"p": path})
    if rows:
        return str(rows[0]["id"])
    permid = new_id()
    await sor.sqlExe(
        "insert into permission (id, path) values (${id}$, ${p}$)", {"id": permid, "p": path}
    )
    return permid


async def grant_role(sor: SQLor, userid: str, role: str) -> None:
    roleid = await ensure_role(sor, role)
    rows = await sor.sqlExe(
        "select id from userrole where userid = ${u}$ and roleid = ${r}$", {"u": userid, "r": roleid}
    )
    if not rows:
        await sor.sqlExe(
            "insert into userrole (id, userid, roleid) values (${id}$, ${u}$, ${r}$)",
            {"id": new_id(), "u": userid, "r": roleid},
        )


async def revoke_role(sor: SQLor, userid: str, role: str) -> int:
    orgtypeid, name = split_role(role)
    return int(
        await sor.sqlExe(
            "delete from userrole where userid = ${u}$ and roleid in"
            " (select id from role where orgtypeid = ${t}$ and name = ${n}$)",
            {"u": userid, "t": orgtypeid, "n": name},
        )
    )


async def grant_permission(sor: SQLor, role: str, path: str) -> None:
    roleid = await ensure_role(sor, role)
    permid = await ensure_permission(sor, path)
    rows = await sor.sqlExe(
        "select id from rolepermission where roleid = ${r}$ and permid = ${p}$",
        {"r": roleid, "p": permid},
    )
    if not rows:
        await sor.sqlExe(
            "insert into rolepermission (id, roleid, permid) values (${id}$, ${r}$, ${p}$)",
            {"id": new_id(), "r": roleid, "p": permid},
        )


async def permission_rows(sor: SQLor) -> list[tuple[str, Any, Any]]:
    """``(path, orgtypeid, name)`` per grant; a rule granted to nobody has ``None`` role parts."""
    rows = await sor.sqlExe(
        "select p.path, r.orgtypeid, r.name from permission p"
        " left join rolepermission rp on rp.permid = p.id"
        " left join role r on r.id = rp.roleid",
        {},
    )
    return [(r["path"], r["orgtypeid"], r["name"]) for r in rows]
