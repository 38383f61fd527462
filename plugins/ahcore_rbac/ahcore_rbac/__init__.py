"""ahcore-rbac: users, roles and path permissions for ahcore sites.

Public API for other plugins and embedding code:

- :func:`get_rbac` — the per-application :class:`RbacState`;
- ``get_rbac(app).authenticators`` — a list of :data:`Authenticator`
  callables (``async (request) -> userid | None``) tried in order for
  requests without a session user; append yours in your ``on_startup``;
- ``await get_rbac(app).request_user(request)`` — session or header user.
"""

from __future__ import annotations

from ahcore_rbac.state import RBAC_KEY, Authenticator, LoginResult, RbacState, UserInfo, get_rbac

__all__ = ["RBAC_KEY", "Authenticator", "LoginResult", "RbacState", "UserInfo", "get_rbac"]
