"""ahcore.app: what create_app decides while building (nothing started)."""

from __future__ import annotations

import pytest
from aiohttp import web

from ahcore import hookimpl
from ahcore.app import BUILTIN_PLUGINS, HOT_RELOADER, create_app
from ahcore.appkeys import get_site
from ahcore.config import ConfigError
from ahcore.functions import FUNCTIONS_KEY
from ahcore.hotreload import ENDPOINT


async def plugin_page(request: web.Request) -> web.Response:
    return web.Response(text="plugin")


class Routes:
    @hookimpl
    def register_routes(self, app):
        app.router.add_get("/plugin/route", plugin_page)


class AsyncRoutes:
    @hookimpl
    async def register_routes(self, app):
        return None


def paths(app: web.Application) -> list[str]:
    return [r.resource.canonical for r in app.router.routes()]


def test_a_plain_site_has_no_middleware_and_one_catch_all(make_app) -> None:
    app = make_app()
    assert list(app.middlewares) == []
    assert paths(app) == ["/{tail}"]
    assert FUNCTIONS_KEY in app and get_site(app).app is app
    assert {name for name, _ in BUILTIN_PLUGINS} <= {
        get_site(app).pm.get_name(p) for p in get_site(app).pm.get_plugins()
    }


def test_plugin_routes_are_guarded_without_middleware_and_come_first(make_app) -> None:
    app = make_app({"plugins": {"routes": True}}, plugins={"routes": Routes()})
    assert list(app.middlewares) == []
    assert paths(app)[0] == "/plugin/route" and paths(app)[-1] == "/{tail}"
    # Every route, the plugin's and the kernel's, behind the one guard.
    assert [getattr(r.handler, "__name__", "") for r in app.router.routes()] == [
        "guarded_plugin_page",  # GET
        "guarded_plugin_page",  # and the HEAD add_get adds
        "guarded_serve",
    ]


# create_app refuses the coroutine without closing it: Python warns it was never awaited.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_register_routes_must_be_synchronous(make_app) -> None:
    with pytest.raises(TypeError, match="register_routes must be synchronous"):
        make_app({"plugins": {"routes": True}}, plugins={"routes": AsyncRoutes()})


def test_the_hot_reload_endpoint_only_when_enabled(make_app) -> None:
    assert ENDPOINT not in paths(make_app())
    app = make_app({"hot_reload": True})
    assert paths(app)[0] == ENDPOINT and HOT_RELOADER in app


def test_a_short_cookie_secret_stops_start_up_unless_debug(make_site, caplog) -> None:
    site_dir = make_site(config={"website": {"cookie_secret": "short"}})
    with pytest.raises(ConfigError, match="cookie_secret is 5 bytes"):
        create_app(site_dir)
    assert get_site(create_app(site_dir, debug=True)).debug is True
    assert "accepted because of --debug" in caplog.text
    assert create_app(site_dir, check_secret=False) is not None
