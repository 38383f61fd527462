"""ahcore.site: the Site of one application, its snapshots and its public view."""

from __future__ import annotations

import contextvars
import json

import pytest

from ahcore import Processor, ProcessorSpec, hookimpl
from ahcore.appkeys import get_site
from ahcore.config import ConfigError, load_config
from ahcore.plugins import PluginError


class Page(Processor):
    async def produce(self, context):
        return "page"


class PagePlugin:
    @hookimpl
    def register_processor(self):
        return [ProcessorSpec("page", (".page",), Page), ProcessorSpec("pagejs", (".page.js",), Page)]


class AlsoPage:
    @hookimpl
    def register_processor(self):
        return ProcessorSpec("page", (".other",), Page)


class Guard:
    @hookimpl
    def auth_check(self, request, user, path):
        return None


@pytest.fixture
def site(make_app):
    app = make_app(
        {
            "website": {"paths": [["$[workdir]$/wwwroot", ""], ["$[workdir]$/docs", "/docs"]]},
            "plugins": {"page": {"colour": "blue"}, "flag": True},
            "v": 1,
        },
        files={
            "wwwroot/a.page": "x",
            "wwwroot/dir/index.html": "i",
            "wwwroot/.hidden": "h",
            "docs/guide.txt": "g",
        },
        plugins={"page": PagePlugin(), "flag": object()},
    )
    return get_site(app)


def write_config(site, **changes) -> None:
    path = site.workdir / "conf" / "config.json"
    cfg = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "website":
            cfg["website"].update(value)
        else:
            cfg[key] = value
    path.write_text(json.dumps(cfg))


def test_resolve_is_the_request_lookup(site) -> None:
    found = site.resolve("/a.page")
    assert found is not None and found.spec.name == "page" and found.spec.plugin == "page"
    assert site.resolve("/docs/guide.txt").path.read_text() == "g"
    assert site.resolve("/dir/").url == "/dir/index.html"


@pytest.mark.parametrize("url", ["/dir", "/missing", "/.hidden", "/../conf/config.json",
                                 "/%2e%2e/conf/config.json", "/conf/config.json", "/dir/%00"])
def test_resolve_is_none_where_nothing_may_be_served(site, url) -> None:
    assert site.resolve(url) is None  # never an exception for a plugin to catch


def test_file_url_and_processor_name(site) -> None:
    assert site.file_url(site.workdir / "docs" / "guide.txt") == "/docs/guide.txt"
    assert site.file_url(site.workdir / "conf" / "config.json") is None
    assert site.processor_name("x.page") == "page"
    assert site.processor_name("x.page.js") == "pagejs"
    assert site.processor_name("x.txt") is None


def test_plugin_settings(site) -> None:
    assert site.plugin_settings("page") == {"colour": "blue"}
    assert site.plugin_settings("flag") == {}  # true: no settings
    assert site.plugin_settings("unknown") == {}


def test_never_raw_holds_every_claimed_suffix_in_lower_case(site) -> None:
    assert {".page", ".page.js", ".dspy", ".py"} <= set(site.never_raw)
    assert all(s == s.lower() for s in site.never_raw)


def test_the_snapshot_holds_one_configs_decisions(site) -> None:
    snap = site.snapshot
    assert snap.owner == id(site)
    assert snap.config is site.config
    assert snap.resolver is site.resolver
    assert snap.roots == site.roots and len(snap.roots) == 2
    assert dict(snap.response_headers)["X-Content-Type-Options"] == "nosniff"
    assert snap.server_header == "ahcore"


def test_apply_config_swaps_the_snapshot_and_names_what_needs_a_restart(site) -> None:
    old = site.snapshot
    write_config(site, v=2, plugins={"page": True}, filesroot="files",
                 website={"trusted_proxies": ["10.0.0.0/8"], "port": 9999})
    restart = site.apply_config(load_config(site.workdir))
    assert site.snapshot is not old
    assert site.config.raw["v"] == 2
    assert [str(n) for n in site.trusted_proxies] == ["10.0.0.0/8"]  # applied at once
    assert restart == ["plugins (flag, page)", "website.host/port", "filesroot"]


def test_a_refused_config_keeps_the_old_snapshot(site) -> None:
    old = site.snapshot
    write_config(site, website={"paths": [["$[workdir]$/no-such-root", ""]]})
    with pytest.raises(ConfigError, match="no-such-root"):
        site.apply_config(load_config(site.workdir))
    assert site.snapshot is old


async def test_changed_roots_rebuild_every_processor(site) -> None:
    found = site.resolve("/a.page")
    await site.processor_cache.get(found.spec, found.path, found.stat, site)
    write_config(site, v=3)
    site.apply_config(load_config(site.workdir))
    assert len(site.processor_cache) == 1  # same roots: kept
    write_config(site, website={"paths": [["$[workdir]$/wwwroot", "/new"]]})
    site.apply_config(load_config(site.workdir))
    assert len(site.processor_cache) == 0
    assert site.resolve("/new/a.page") is not None and site.resolve("/a.page") is None


def test_a_pinned_snapshot_survives_a_reload(site) -> None:
    snap, token = site.pin()
    try:
        write_config(site, v=4)
        site.apply_config(load_config(site.workdir))
        assert site.snapshot is snap and site.config.raw["v"] == 1  # this request's own
        # A request that starts now (a context without the pin) sees the new config.
        assert contextvars.Context().run(lambda: site.config.raw["v"]) == 4
    finally:
        site.unpin(token)
    assert site.config.raw["v"] == 4


async def test_a_pin_never_leaks_into_another_sites_view(site, make_app) -> None:
    other = get_site(make_app({"v": "other"}))
    snap, token = site.pin()
    try:
        assert other.snapshot is not snap and other.config.raw["v"] == "other"
    finally:
        site.unpin(token)


def test_pools_exist_only_once_the_app_starts(site) -> None:
    with pytest.raises(RuntimeError, match="made when the application starts"):
        site.pools  # noqa: B018 - the property raises


def test_uses_auth_follows_the_plugins(site, make_app) -> None:
    assert site.uses_auth() is False
    guarded = get_site(make_app({"plugins": {"guard": True}}, plugins={"guard": Guard()}))
    assert guarded.uses_auth() is True


def test_uploads_follow_filesroot_and_the_uploads_section(make_app) -> None:
    assert get_site(make_app()).uploads is None
    site = get_site(make_app({"filesroot": "$[workdir]$/files", "website": {"client_max_size": 5000},
                              "uploads": {"max_file_size": 100, "max_parts": 3}}))
    assert site.uploads.root == site.workdir / "files"
    assert (site.uploads.max_file_size, site.uploads.max_body_size, site.uploads.max_parts) == (100, 5000, 3)


def test_a_processor_no_plugin_provides_is_a_501_gap(make_app) -> None:
    site = get_site(make_app({"website": {"processors": [[".xterm", "xterm"]]}}))
    gap = site.gaps[".xterm"]
    assert gap.status == 501 and gap.processor == "xterm"
    assert "no installed plugin provides" in gap.message
    assert site.processor_name("shell.xterm") == "xterm"  # answered by the 501 stand-in
    assert ".xterm" in site.never_raw


def test_two_plugins_declaring_one_processor_name_stop_start_up(make_app) -> None:
    with pytest.raises(PluginError, match="processor 'page' is declared by both"):
        make_app({"plugins": {"page": True, "also": True}},
                 plugins={"page": PagePlugin(), "also": AlsoPage()})


def test_a_missing_root_stops_start_up_naming_it(make_site) -> None:
    from ahcore.app import create_app

    site_dir = make_site()
    cfg = json.loads((site_dir / "conf" / "config.json").read_text())
    cfg["website"]["paths"].append(["$[workdir]$/gone", "/gone"])
    (site_dir / "conf" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"website.paths\[1\]: the content root .*gone does not exist"):
        create_app(site_dir)
