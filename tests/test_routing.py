"""URL → file: roots in order, indexes, longest suffix, static files, listing, methods."""

from __future__ import annotations

import json
import os

import pytest
from yarl import URL

from ahcore import get_site, hookimpl


async def test_roots_are_searched_in_order_and_prefixes_apply(site_dir, ahcore_client, echo_plugin):
    (site_dir / "second" / "hello.txt").write_text("shadowed")
    client = await ahcore_client(site_dir, extra_plugins={"echo": echo_plugin})
    r = await client.get("/hello.txt")
    assert r.status == 200 and await r.text() == "hello world\n"
    r = await client.get("/two/two.txt")
    assert await r.text() == "from second root"
    assert (await client.get("/two.txt")).status == 404


async def test_processor_runs_for_its_suffix(site_dir, ahcore_client, echo_plugin):
    client = await ahcore_client(site_dir, extra_plugins={"echo": echo_plugin})
    r = await client.get("/page.echo", params={"who": "ann"})
    assert r.status == 200
    assert await r.text() == "hi ann"
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"


async def test_longest_suffix_wins(make_site, ahcore_client, echo_plugin):
    site = make_site(
        config={
            "website": {"processors": [[".echo", "echo"], [".echo.js", "echojs"]]},
            "plugins": {"echo": True},
        },
        files={"wwwroot/a.echo.js": "js {url}", "wwwroot/b.echo": "plain {url}"},
    )
    client = await ahcore_client(site, extra_plugins={"echo": echo_plugin})
    r = await client.get("/a.echo.js")
    assert await r.text() == "js /a.echo.js"
    from ahcore.appkeys import get_site

    reg = get_site(client.app).processors
    assert reg.match("a.echo.js")[1].name == "echojs"
    assert reg.match("b.echo")[1].name == "echo"
    assert reg.match(".echo") is None  # a bare suffix is a dotfile, not a page


async def test_directory_index_and_trailing_slash_redirect(
    site_dir, ahcore_client, echo_plugin, make_site
):
    site = make_site(
        config={
            "website": {"indexes": ["index.html", "index.echo"], "processors": [[".echo", "echo"]]},
            "plugins": {"echo": True},
        },
        files={"wwwroot/sub/index.echo": "index {url}"},
    )
    client = await ahcore_client(site, extra_plugins={"echo": echo_plugin})
    r = await client.get("/sub", allow_redirects=False, params={"a": "1"})
    assert r.status == 301 and r.headers["Location"] == "/sub/?a=1"
    r = await client.get("/sub/")
    assert await r.text() == "index /sub/index.echo"


async def test_the_slash_redirect_keeps_odd_folder_names_a_path_and_the_query_as_sent(
    ahcore_client, make_site
):
    # Found by probing: the Location was built from the decoded path, so a
    # folder "x?y" redirected to /x?y/ (a query) and "h#x" to /h#x/ (a fragment).
    site = make_site(files={"wwwroot/x?y/index.html": "q", "wwwroot/h#x/index.html": "f",
                            "wwwroot/100%/index.html": "p"})
    client = await ahcore_client(site)
    for raw, location in (("/x%3Fy", "/x%3Fy/"), ("/h%23x", "/h%23x/"), ("/100%25", "/100%25/"),
                          ("/x%3Fy?a=%2F%26b&c", "/x%3Fy/?a=/%26b&c")):
        r = await client.get(URL(raw, encoded=True), allow_redirects=False)
        assert r.status == 301 and r.headers["Location"] == location, raw
    r = await client.get(URL("/x%3Fy/", encoded=True))
    assert r.status == 200 and await r.text() == "q"


async def test_static_etag_304_range_and_methods(site_dir, ahcore_client, echo_plugin):
    client = await ahcore_client(site_dir, extra_plugins={"echo": echo_plugin})
    r = await client.get("/hello.txt")
    etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    assert r.headers["Content-Type"].startswith("text/plain")
    r = await client.get("/hello.txt", headers={"If-None-Match": etag})
    assert r.status == 304
    r = await client.get("/hello.txt", headers={"If-Modified-Since": modified})
    assert r.status == 304
    r = await client.get("/hello.txt", headers={"Range": "bytes=0-4"})
    assert r.status == 206 and await r.read() == b"hello"
    r = await client.head("/hello.txt")
    assert r.status == 200
    r = await client.post("/hello.txt", data="x")
    assert r.status == 405


async def test_listing_only_when_allowed(make_site, ahcore_client):
    files = {"wwwroot/docs/a.txt": "a", "wwwroot/docs/<b>.txt": "b", "wwwroot/docs/.hidden": "h"}
    off = make_site(files=files)
    client = await ahcore_client(off)
    assert (await client.get("/docs/")).status == 404
    on = make_site(config={"website": {"allowListFolder": True}}, files=files)
    client = await ahcore_client(on)
    r = await client.get("/docs/")
    body = await r.text()
    assert r.status == 200 and "a.txt" in body
    assert "&lt;b&gt;.txt" in body and "<b>.txt" not in body
    assert ".hidden" not in body


async def test_sources_dotfiles_and_conf_are_never_served(site_dir, ahcore_client, echo_plugin):
    # script.dspy exists but the dspy processor is not enabled on this site
    client = await ahcore_client(site_dir, extra_plugins={"echo": echo_plugin})
    for url in ("/script.dspy", "/.secret", "/conf/secret.txt", "/conf/config.json"):
        r = await client.get(url)
        assert r.status == 404, url
        assert "return 1" not in await r.text()


async def test_a_root_that_contains_conf_does_not_serve_it(make_site, ahcore_client):
    site = make_site(
        config={"website": {"paths": [["$[workdir]$", ""]]}}, files={"public.txt": "ok"}
    )
    client = await ahcore_client(site)
    assert (await client.get("/public.txt")).status == 200
    r = await client.get("/conf/config.json")
    assert r.status == 404


async def test_processor_is_cached_per_file_and_rebuilt_on_change(
    site_dir, ahcore_client, echo_plugin
):
    from ahcore.appkeys import get_site

    client = await ahcore_client(site_dir, extra_plugins={"echo": echo_plugin})
    cache = get_site(client.app).processor_cache
    for _ in range(3):
        assert await (await client.get("/page.echo", params={"who": "x"})).text() == "hi x"
    assert len(cache) == 1
    first = next(iter(cache._entries.values()))[1]
    path = site_dir / "wwwroot" / "page.echo"
    path.write_text("bye {who}")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert await (await client.get("/page.echo", params={"who": "x"})).text() == "bye x"
    assert next(iter(cache._entries.values()))[1] is not first


async def test_concurrent_first_requests_share_one_build(site_dir, ahcore_client, echo_plugin):
    import asyncio

    processor_class = echo_plugin.register_processor()[0].factory
    before = processor_class.loads
    client = await ahcore_client(site_dir, extra_plugins={"echo": echo_plugin})
    results = await asyncio.gather(*(client.get("/page.echo?who=z") for _ in range(20)))
    assert all(r.status == 200 for r in results)
    assert processor_class.loads - before == 1


@pytest.mark.parametrize("follow", [True, False], ids=["follow_symlinks", "confined"])
async def test_remembered_lookups_see_every_change_on_disk(make_site, ahcore_client, tmp_path, follow):
    """The resolver remembers where a URL led; the next request still sees
    a file added to an earlier root or index, a removed file, a replaced
    file and a re-pointed symlink — followed out of the root by default, at
    once refused there with ``follow_symlinks: false``."""
    site = make_site(
        config={
            "website": {
                "paths": [["$[workdir]$/first", ""], ["$[workdir]$/wwwroot", ""]],
                "indexes": ["index.html", "index.txt"],
                "follow_symlinks": follow,
            }
        },
        files={
            "first/.keep": "",
            "wwwroot/page.txt": "from the second root",
            "wwwroot/dir/index.txt": "second index",
            "wwwroot/a.txt": "A",
            "wwwroot/b.txt": "B",
            "wwwroot/gone.txt": "here",
        },
    )
    client = await ahcore_client(site)

    async def body(url: str) -> tuple[int, str]:
        r = await client.get(url)
        return r.status, await r.text()

    root = site / "wwwroot"
    for _ in range(2):  # the second request is served from the remembered trail
        assert await body("/page.txt") == (200, "from the second root")
        assert await body("/dir/") == (200, "second index")
        assert await body("/gone.txt") == (200, "here")
    (site / "first" / "page.txt").write_text("from the first root")
    assert await body("/page.txt") == (200, "from the first root")
    (root / "dir" / "index.html").write_text("first index")
    assert await body("/dir/") == (200, "first index")
    (root / "gone.txt").unlink()
    assert (await body("/gone.txt"))[0] == 404
    (root / "new.txt").write_text("old")
    assert await body("/new.txt") == (200, "old")
    (root / "new.tmp").write_text("replacement")
    os.replace(root / "new.tmp", root / "new.txt")
    assert await body("/new.txt") == (200, "replacement")

    (root / "link.txt").symlink_to(root / "a.txt")
    assert await body("/link.txt") == (200, "A")
    (root / "link.txt").unlink()
    (root / "link.txt").symlink_to(root / "b.txt")
    assert await body("/link.txt") == (200, "B")
    outside = tmp_path / "outside.txt"
    outside.write_text("secret outside the root")
    (root / "link.txt").unlink()
    (root / "link.txt").symlink_to(outside)
    if follow:
        assert await body("/link.txt") == (200, "secret outside the root")
    else:
        assert (await body("/link.txt"))[0] == 404
    (root / "link.txt").unlink()
    (root / "link.txt").symlink_to(root / "a.txt")
    assert await body("/link.txt") == (200, "A")


# ---------------------------------------------------------------- source never sent raw


async def test_files_of_an_installed_but_not_enabled_processor_answer_404(
    make_site, ahcore_client, echo_plugin
):
    """The echo plugin is installed (in-process) but the site does not enable it:
    its suffixes answer 404, case variants included, never the source."""
    site = make_site(
        config={"plugins": {}},
        files={
            "wwwroot/page.echo": "ECHO-SOURCE {who}",
            "wwwroot/a.echo.js": "ECHO-SOURCE js",
            "wwwroot/shout.ECHO": "ECHO-SOURCE upper",
            "wwwroot/d/index.echo": "ECHO-SOURCE index",
            "wwwroot/fine.txt": "served",
        },
    )
    client = await ahcore_client(site, extra_plugins={"echo": echo_plugin})
    before = sorted((str(p), p.stat().st_mtime_ns) for p in site.rglob("*"))
    for url in ("/page.echo", "/a.echo.js", "/shout.ECHO", "/d/", "/d/index.echo"):
        for method in ("GET", "HEAD", "POST"):
            r = await client.request(method, url)
            assert r.status == 404, (method, url, r.status)
            assert "ECHO-SOURCE" not in await r.text()
    assert await (await client.get("/fine.txt")).text() == "served"
    assert sorted((str(p), p.stat().st_mtime_ns) for p in site.rglob("*")) == before


async def test_an_index_tmpl_without_the_tmpl_plugin_is_not_sent_as_source(make_site, ahcore_client):
    """The reported bug: tmpl installed but not enabled, GET / sent the template source."""
    pytest.importorskip("ahcore_tmpl")
    site = make_site(
        config={"plugins": {"dspy": True}},
        files={"wwwroot/index.tmpl": "{{ 'TEMPLATE-SOURCE' }}", "wwwroot/app.tmpl.js": "{{ 1 }}"},
    )
    client = await ahcore_client(site)
    for url in ("/", "/index.tmpl", "/app.tmpl.js"):
        r = await client.get(url)
        assert r.status == 404, url
        assert "TEMPLATE-SOURCE" not in await r.text() and "{{" not in await r.text()


async def test_a_processor_no_installed_plugin_provides_answers_501(make_site, ahcore_client, caplog):
    site = make_site(
        config={
            "website": {
                "indexes": ["index.html", "index.xterm"],
                "processors": [[".xterm", "xterm"], [".llm", "llm"]],
            }
        },
        files={
            "wwwroot/shell.xterm": "XTERM-SOURCE",
            "wwwroot/term/index.xterm": "XTERM-SOURCE",
            "wwwroot/ask.LLM": "LLM-SOURCE",
            "wwwroot/hello.txt": "the rest still works",
        },
    )
    client = await ahcore_client(site)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        g.message for g in get_site(client.app).gaps.values()
    ]
    for method, url in (("GET", "/shell.xterm"), ("POST", "/shell.xterm"), ("GET", "/term/")):
        r = await client.request(method, url)
        body = await r.text()
        assert r.status == 501, (method, url)
        assert "'xterm'" in body and "ahcore-xterm" in body and "XTERM-SOURCE" not in body
        assert "Traceback" not in body
    r = await client.get("/ask.LLM")  # not the configured case: no processor, still never raw
    assert r.status == 404 and "LLM-SOURCE" not in await r.text()
    assert await (await client.get("/hello.txt")).text() == "the rest still works"


async def test_a_named_processor_whose_plugin_is_switched_off_answers_404(
    make_site, ahcore_client, echo_plugin, caplog
):
    site = make_site(
        config={
            "website": {"processors": [[".echo", "echo"]]},
            "plugins": {"echo": False},
        },
        files={"wwwroot/page.echo": "ECHO-SOURCE"},
    )
    client = await ahcore_client(site, extra_plugins={"echo": echo_plugin})
    r = await client.get("/page.echo")
    assert r.status == 404 and "ECHO-SOURCE" not in await r.text()
    gap = get_site(client.app).gaps[".echo"]
    assert gap.deliberate and gap.status == 404
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


# ---------------------------------------------------------------- symlinked module folders


def module_site(make_site, tmp_path, *, follow: bool = True):
    """An ahserver module-based layout: wwwroot/shop is a link to the module's own folder."""
    module = tmp_path / "modules" / "shop" / "wwwroot"
    module.mkdir(parents=True)
    (module / "index.echo").write_text("shop index {url}")
    (module / "price.txt").write_text("42 EUR")
    (module / "deep").mkdir()
    (module / "deep" / "page.echo").write_text("deep {url}")
    site = make_site(
        config={
            "website": {
                "processors": [[".echo", "echo"]],
                "indexes": ["index.html", "index.echo"],
                "follow_symlinks": follow,
            },
            "plugins": {"echo": True},
        },
        files={"wwwroot/index.html": "home"},
    )
    (site / "wwwroot" / "shop").symlink_to(module, target_is_directory=True)
    return site, module


async def test_a_module_folder_linked_into_the_root_is_served(
    make_site, ahcore_client, echo_plugin, tmp_path
):
    site, module = module_site(make_site, tmp_path)
    client = await ahcore_client(site, extra_plugins={"echo": echo_plugin})
    for _ in range(2):  # the second time from the resolver's remembered trail
        assert await (await client.get("/shop/price.txt")).text() == "42 EUR"
        # the processor sees the URL the file is served under, not its place on disk
        assert await (await client.get("/shop/")).text() == "shop index /shop/index.echo"
        assert await (await client.get("/shop/deep/page.echo")).text() == "deep /shop/deep/page.echo"
    resolver = get_site(client.app).resolver
    assert resolver.file_url(module / "deep" / "page.echo") == "/shop/deep/page.echo"
    assert resolver.file_url(site / "wwwroot" / "shop" / "price.txt") == "/shop/price.txt"
    # a changed file in the module is seen at once (re-validated by inode)
    (module / "price.tmp").write_text("43 EUR")
    os.replace(module / "price.tmp", module / "price.txt")
    assert await (await client.get("/shop/price.txt")).text() == "43 EUR"


async def test_follow_symlinks_false_confines_every_path_to_its_root(
    make_site, ahcore_client, echo_plugin, tmp_path
):
    site, module = module_site(make_site, tmp_path, follow=False)
    client = await ahcore_client(site, extra_plugins={"echo": echo_plugin})
    for url in ("/shop/price.txt", "/shop/", "/shop/deep/page.echo"):
        r = await client.get(url, allow_redirects=False)
        assert r.status == 404, url
        assert "42 EUR" not in await r.text()
    assert await (await client.get("/")).text() == "home"
    assert get_site(client.app).resolver.file_url(module / "price.txt") is None


async def test_access_control_sees_the_url_a_linked_module_is_served_under(
    make_site, ahcore_client, echo_plugin, tmp_path
):
    seen: list[str] = []

    class NoPrices:
        @hookimpl
        def auth_check(self, request, user, path):
            seen.append(path)
            return False if path.startswith("/shop/price") else None

    site, _ = module_site(make_site, tmp_path)
    cfg_path = site / "conf" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["plugins"]["noprices"] = True
    cfg_path.write_text(json.dumps(cfg))
    client = await ahcore_client(site, extra_plugins={"echo": echo_plugin, "noprices": NoPrices()})
    r = await client.get("/shop/price.txt")
    assert r.status == 401 and "42 EUR" not in await r.text()
    assert seen[-1] == "/shop/price.txt"
    assert (await client.get("/shop/deep/page.echo")).status == 200


async def test_a_template_in_a_linked_module_includes_its_neighbours(make_site, ahcore_client, tmp_path):
    pytest.importorskip("ahcore_tmpl")
    module = tmp_path / "mod"
    module.mkdir()
    (module / "page.tmpl").write_text('[{% include "part.tmpl" %}|{% include "/top.tmpl" %}]')
    (module / "part.tmpl").write_text("module part")
    site = make_site(
        config={"website": {"processors": [[".tmpl", "tmpl"]]}},
        files={"wwwroot/top.tmpl": "site top", "wwwroot/part.tmpl": "WRONG: the root's part"},
    )
    (site / "wwwroot" / "mod").symlink_to(module, target_is_directory=True)
    client = await ahcore_client(site)
    r = await client.get("/mod/page.tmpl")
    assert r.status == 200 and await r.text() == "[module part|site top]"
