"""``python -m ahcore_rbac -w SITE COMMAND …``: manage users, roles and grants.

Works on the site's own config (same database, same argon2 parameters) and
without a running server. A running server sees the changes after
``cache_ttl`` seconds or at once after a hot reload.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from ahcore.api import ConfigError, PluginError, open_site
from ahcore_rbac import store
from ahcore_rbac.passwords import api_key_hash, new_api_key
from ahcore_rbac.state import RBAC_KEY, RbacState


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ahcore rbac",
        description="Manage a site's users, roles, path rules and API keys, on the site's own "
        "config and database, without a running server. A running server sees the changes "
        "after cache_ttl seconds, or at once after a hot reload.",
    )
    parser.add_argument("-w", "--workdir", default=os.getcwd(), help="site folder (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("adduser", help="add a user (or set the password of an existing one)")
    p.add_argument("username")
    p.add_argument("--password", help="the password (asked for when omitted)")
    p.add_argument("--org", dest="orgid", help="organisation id")
    p.add_argument("--orgtype", dest="orgtypeid", help="organisation type id")

    p = sub.add_parser("addrole", help="add role ORGTYPE.NAME")
    p.add_argument("orgtype")
    p.add_argument("name")

    p = sub.add_parser("grant-role", help="give USER the role ROLE (e.g. shop.clerk)")
    p.add_argument("username")
    p.add_argument("role")

    p = sub.add_parser("revoke-role", help="take ROLE from USER")
    p.add_argument("username")
    p.add_argument("role")

    p = sub.add_parser("addperm", help="add a path rule (protected, granted to nobody yet)")
    p.add_argument("path", help="exact path, or a prefix ending in ** or %%")

    p = sub.add_parser("grant-perm", help="let ROLE reach PATH (role and rule made if missing)")
    p.add_argument("role", help="t.n, t.*, *.n, any, logined or anonymous")
    p.add_argument("path")

    p = sub.add_parser("apikey", help="issue a new API key for USER (replaces the old one)")
    p.add_argument("username")
    return parser


async def run(args: argparse.Namespace) -> str:
    """Run one command against the site in ``args.workdir``; return what to print.

    The site is started as for serving (its config, its plugins, its
    database) but listens nowhere: :func:`ahcore.api.open_site`.
    """
    async with open_site(Path(args.workdir)) as site:
        assert site.app is not None
        state = site.app.get(RBAC_KEY)
        if state is None:
            raise RuntimeError(
                'the rbac plugin is not enabled for this site: add "rbac": true to the '
                "config's \"plugins\" section"
            )
        return await _command(state, args)


async def _command(state: RbacState, args: argparse.Namespace) -> str:
    cmd = args.command
    async with state.sor() as sor:
        if cmd == "adduser":
            password = args.password
            if password is None:
                password = getpass.getpass(f"password for {args.username}: ")
            hashed = await state.passwords.hash(password)
            row = await store.user_by_name(sor, args.username)
            if row is not None:
                await store.set_password_hash(sor, str(row["id"]), hashed)
                await store.reset_failures(sor, str(row["id"]))
                return f"password of {args.username} changed"
            userid = await store.add_user(sor, args.username, hashed, args.orgid, args.orgtypeid)
            return f"user {args.username} added (id {userid})"
        if cmd == "addrole":
            await store.ensure_role(sor, f"{args.orgtype}.{args.name}")
            return f"role {args.orgtype}.{args.name} added"
        if cmd == "addperm":
            await store.ensure_permission(sor, args.path)
            return f"permission {args.path} added"
        if cmd == "grant-perm":
            await store.grant_permission(sor, args.role, args.path)
            return f"{args.role} may reach {args.path}"
        row = await store.user_by_name(sor, args.username)
        if row is None:
            raise LookupError(f"no user {args.username!r}")
        userid = str(row["id"])
        if cmd == "grant-role":
            await store.grant_role(sor, userid, args.role)
            return f"{args.username} has role {args.role}"
        if cmd == "revoke-role":
            n = await store.revoke_role(sor, userid, args.role)
            return f"{args.username} lost role {args.role}" if n else "nothing to revoke"
        if cmd == "apikey":
            key = new_api_key()
            await store.set_api_key_hash(sor, userid, api_key_hash(key))
            return key
    raise ValueError(f"unknown command {cmd!r}")


def main(argv: list[str] | None = None) -> int:
    """Manage a site's users, roles, path rules and API keys (ahcore-rbac)."""
    args = build_parser().parse_args(argv)
    args.workdir = Path(args.workdir).resolve()
    try:
        print(asyncio.run(run(args)))
    except (ConfigError, PluginError) as exc:
        print("ahcore_rbac: " + "\n".join(exc.problems), file=sys.stderr)
        return 2
    except (LookupError, ValueError, RuntimeError) as exc:
        print(f"ahcore_rbac: {exc}", file=sys.stderr)
        return 1
    return 0
