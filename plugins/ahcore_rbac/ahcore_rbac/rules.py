"""Role names and path rules: pure functions, so the access logic is testable alone.

A role is ``{orgtypeid}.{name}``, or a bare name (``anonymous``, ``any``,
``logined``) when its org type is empty. ``*`` on either side is a wildcard
*granted to users*, never matched against: a user holding ``shop.clerk``
also holds ``shop.*`` and ``*.clerk``, so a permission granted to ``shop.*``
reaches every role of org type ``shop``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

ANONYMOUS = "anonymous"
ANY = "any"
LOGINED = "logined"
VISITOR_ROLES = frozenset({ANONYMOUS, ANY})


def role_name(orgtypeid: str | None, name: str) -> str:
    """``orgtypeid.name``, or ``name`` alone for the org-type-less implicit roles."""
    return f"{orgtypeid}.{name}" if orgtypeid else name


def split_role(role: str) -> tuple[str, str]:
    """Inverse of :func:`role_name`: ``"shop.clerk"`` → ``("shop", "clerk")``; ``"any"`` → ``("", "any")``."""
    orgtypeid, dot, name = role.partition(".")
    return (orgtypeid, name) if dot else ("", role)


def user_roles(
    granted: Iterable[tuple[str | None, str]], orgtypeid: str | None = None
) -> frozenset[str]:
    """Every role a logged-in user holds: implicit, granted and derived.

    ``any`` and ``logined`` always; each granted ``t.n`` plus ``t.*`` and
    ``*.n``; and ``{orgtypeid}.*`` for the user's own org type.
    """
    roles = {ANY, LOGINED}
    if orgtypeid:
        roles.add(f"{orgtypeid}.*")
    for t, n in granted:
        roles.add(role_name(t, n))
        if t:
            roles.add(f"{t}.*")
            roles.add(f"*.{n}")
    return frozenset(roles)


def _strip(path: str) -> str:
    return path.rstrip("/") or "/"


@dataclass
class PermissionTable:
    """Which roles may reach which paths.

    A rule ending in ``**`` or ``%`` is a prefix (``/admin/**`` covers
    ``/admin`` and everything below it; ``/admin%`` also ``/administration``);
    any other rule is an exact path (a trailing ``/`` does not matter). The
    most specific rule governs a path: an exact rule, else the longest
    matching prefix. That lets a site protect a tree and open (or narrow) one
    corner of it. A rule granted to nobody denies everyone.
    """

    exact: dict[str, set[str]] = field(default_factory=dict)
    prefixes: list[tuple[str, set[str]]] = field(default_factory=list)

    @classmethod
    def build(cls, rows: Iterable[tuple[str, str | None]]) -> PermissionTable:
        """From ``(path rule, role or None)`` pairs (None: the rule exists, granted to nobody)."""
        exact: dict[str, set[str]] = {}
        prefixes: dict[str, set[str]] = {}
        for rule, role in rows:
            if rule.endswith("**"):
                roles = prefixes.setdefault(rule[:-2], set())
            elif rule.endswith("%"):
                roles = prefixes.setdefault(rule[:-1], set())
            else:
                roles = exact.setdefault(_strip(rule), set())
            if role is not None:
                roles.add(role)
        ordered = sorted(prefixes.items(), key=lambda item: len(item[0]), reverse=True)
        return cls(exact, ordered)

    def required(self, path: str) -> set[str] | None:
        """Roles that may reach ``path`` (any one suffices), or None when no rule covers it."""
        stripped = _strip(path)
        roles = self.exact.get(stripped)
        if roles is not None:
            return roles
        for prefix, roles in self.prefixes:
            if path.startswith(prefix) or (prefix.endswith("/") and stripped == _strip(prefix)):
                return roles
        return None

    def allows(self, path: str, roles: frozenset[str]) -> bool | None:
        """True/False when a rule covers ``path``; None (abstain) otherwise."""
        required = self.required(path)
        if required is None:
            return None
        return not required.isdisjoint(roles)
