"""Access to a URL: every ``auth_check`` plugin asked, 401 or 403 on a denial.

Its own module so that the pipeline, function routes and admin endpoints
share one rule without importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ahcore.plugins import await_me_maybe
from ahcore.session import current_user

if TYPE_CHECKING:
    from ahcore.site import Site


async def check_access(site: Site, request: web.Request, path: str) -> None:
    """Ask every ``auth_check`` plugin; any False denies, else any True allows.

    When all abstain the site default applies (allow). Denial is 401 for an
    anonymous visitor and 403 for a logged-in user.
    """
    if not site.uses_auth():
        return
    user = await current_user(request)
    allowed = None
    for result in site.pm.hook.auth_check(request=request, user=user, path=path):
        verdict = await await_me_maybe(result)
        if verdict is False:
            allowed = False
            break
        if verdict is True:
            allowed = True
    if allowed is False:
        if user is None:
            raise web.HTTPUnauthorized(text="401: Unauthorized: please log in\n")
        raise web.HTTPForbidden(text="403: Forbidden\n")


async def explicit_allow(site: Site, request: web.Request, path: str) -> bool:
    """True only when some ``auth_check`` allows ``path`` and none denies (admin endpoints)."""
    user = await current_user(request)
    allowed = False
    for result in site.pm.hook.auth_check(request=request, user=user, path=path):
        verdict = await await_me_maybe(result)
        if verdict is False:
            return False
        allowed = allowed or verdict is True
    return allowed
