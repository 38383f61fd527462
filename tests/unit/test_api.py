"""ahcore.api: the declared plugin API and its few functions of its own."""

from __future__ import annotations

import pytest
from aiohttp import web

from ahcore import api, hookimpl
from ahcore.db.pools import DBPools


def test_every_declared_name_exists() -> None:
    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert missing == []
    assert len(set(api.__all__)) == len(api.__all__)


class Lifecycle:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def on_startup(self, app):
        self.calls.append("startup")

    @hookimpl
    def on_shutdown(self, app):
        self.calls.append("shutdown")


async def test_open_site_starts_the_site_listening_nowhere(make_site, monkeypatch) -> None:
    from ahcore import app as app_module

    plugin = Lifecycle()
    real_create_app = app_module.create_app
    monkeypatch.setattr(
        app_module, "create_app",
        lambda workdir, **kw: real_create_app(workdir, extra_plugins={"life": plugin}, **kw),
    )
    site_dir = make_site(config={"plugins": {"life": True},
                                 "databases": {"db": {"driver": "sqlite3", "kwargs": {"dbname": "a.db"}}}})
    async with api.open_site(site_dir) as site:
        assert plugin.calls == ["startup"]
        assert isinstance(site.pools, DBPools) and "db" in site.pools
        assert site.global_namespace  # the namespace was built
        assert site.workdir == site_dir.resolve()
    assert plugin.calls == ["startup", "shutdown"]


async def test_open_site_refuses_a_broken_site(make_site) -> None:
    site_dir = make_site(config={"plugins": {"no_such_plugin": True}})
    with pytest.raises(api.PluginError, match="no plugin 'no_such_plugin' is installed"):
        async with api.open_site(site_dir):
            pass


async def test_add_globals_only_once_started(make_app) -> None:
    app = make_app()
    with pytest.raises(RuntimeError, match="return the names from the plugin's env_globals hook"):
        api.add_globals(app, {"late": 1})
    site = api.get_site(app)
    await site.build_namespace(app)
    api.add_globals(app, {"late": 1, "json": "replaced on purpose"})
    assert site.global_namespace["late"] == 1
    assert site.global_namespace["json"] == "replaced on purpose"


async def test_a_global_added_with_a_builtins_name_reaches_class_bodies_too(make_app) -> None:
    # Class bodies and eval() find site names through the scripts' __builtins__,
    # which holds a copy of the site names that shadow a builtin.
    app = make_app()
    site = api.get_site(app)
    await site.build_namespace(app)
    before = site.script_namespace_class()
    api.add_globals(app, {"late": 1})
    assert site.script_namespace_class() is before  # a plain name needs no new class
    api.add_globals(app, {"max": "site max"})
    cls = site.script_namespace_class()
    assert cls is not before and cls.script_builtins["max"] == "site max"
    assert cls.script_builtins["late"] == 1 and cls.script_builtins["abs"] is abs


def test_request_scheme(make_request) -> None:
    assert api.request_scheme(make_request()) == "http"
    assert api.request_scheme(make_request(scheme="https")) == "https"
    assert api.request_scheme(make_request(app=web.Application())) == "http"


def test_url_segments_is_the_resolvers_lexical_check() -> None:
    assert api.url_segments("/a/./b") == ("a", "b")
    with pytest.raises(web.HTTPNotFound):
        api.url_segments("/%2e%2e/x")
