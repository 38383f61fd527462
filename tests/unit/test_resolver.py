"""ahcore.resolver: URL → file, the only place a request path touches the filesystem."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiohttp import web

from ahcore.processor import Processor, ProcessorRegistry, ProcessorSpec
from ahcore.resolver import RedirectToSlash, Resolver, Root, split_segments

# ---------------------------------------------------------------- split_segments


@pytest.mark.parametrize(
    ("raw", "segments"),
    [
        ("/", ()),
        ("", ()),
        ("/a/b.txt", ("a", "b.txt")),
        ("//a///b/", ("a", "b")),
        ("/./a/./b/.", ("a", "b")),
        ("/a/%2e/b", ("a", "b")),  # an encoded "." is dropped like a plain one
        ("/a?x=/../..", ("a",)),
        ("/a#../../etc", ("a",)),
        ("/caf%C3%A9/na%20me", ("café", "na me")),
        ("/%252e%252e/x", ("%2e%2e", "x")),  # decoded exactly once: a name, not a traversal
        ("/100%/x%zz", ("100%", "x%zz")),  # a stray % is kept as written
        ("/a..b/c.", ("a..b", "c.")),
    ],
)
def test_split_segments(raw, segments) -> None:
    assert split_segments(raw) == segments


@pytest.mark.parametrize(
    "raw",
    [
        "/../etc/passwd",
        "/a/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2e/x",
        "/.%2e/x",
        "/a%2f..%2f..%2fetc",
        "/a%2Fb",
        "/a%5cb",
        "/a\\b",
        "/a%00.txt",
        "/a\x00b",
        "/.env",
        "/sub/.git/config",
        "/%2eenv",
        "/...",
        "/%C0%AE%C0%AE/x",  # overlong UTF-8 dots
        "/%ff",
        "/%e2%82",  # truncated UTF-8
    ],
)
def test_hostile_paths_are_404_before_any_lookup(raw) -> None:
    with pytest.raises(web.HTTPNotFound) as info:
        split_segments(raw)
    assert info.value.text == "404: Not Found\n"  # the same answer as a missing file


# ---------------------------------------------------------------- Root


def test_root_make(tmp_path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "www")
    root = Root.make(tmp_path / "link", "/static/v1/")
    assert root.folder == tmp_path / "link"
    assert root.real == os.path.realpath(tmp_path / "www") + os.sep
    assert root.prefix == ("static", "v1")
    assert Root.make(tmp_path / "www", "").prefix == ()


# ---------------------------------------------------------------- Resolver


class Script(Processor):
    pass


SCRIPT = ProcessorSpec("script", (".dspy",), Script)
TMPLJS = ProcessorSpec("tmpljs", (".tmpl.js",), Script)
TMPL = ProcessorSpec("tmpl", (".tmpl",), Script)


@pytest.fixture
def tree(tmp_path) -> Path:
    """A site: two roots (``/`` and ``/two``), conf/, dotfiles, indexes, an outside folder."""
    files = {
        "site/wwwroot/hello.txt": "hello",
        "site/wwwroot/page.dspy": "return 1",
        "site/wwwroot/app.tmpl.js": "js",
        "site/wwwroot/app.tmpl": "t",
        "site/wwwroot/code.py": "import os",
        "site/wwwroot/Code.PY": "import os",
        "site/wwwroot/.secret": "dot",
        "site/wwwroot/sub/index.html": "sub index",
        "site/wwwroot/sub/index.dspy": "never reached: index.html comes first",
        "site/wwwroot/scripted/index.dspy": "return 2",
        "site/wwwroot/empty/keep.txt": "k",
        "site/wwwroot/shared.txt": "from the first root",
        "site/second/shared.txt": "from the second root",
        "site/second/only2.txt": "second only",
        "site/second/two/deep.txt": "deep",
        "site/conf/config.json": "{}",
        "outside/secret.txt": "outside the roots",
        "outside/mod/page.txt": "module page",
    }
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def make_resolver(tree: Path, *, listing: bool = False, follow: bool = True, roots=None) -> Resolver:
    site = tree / "site"
    roots = roots or [Root.make(site / "wwwroot", ""), Root.make(site / "second", "/two")]
    registry = ProcessorRegistry([(".dspy", SCRIPT), (".tmpl.js", TMPLJS), (".tmpl", TMPL)])
    return Resolver(
        roots,
        ["index.html", "index.dspy"],
        registry,
        forbidden_dirs=[str(site / "conf")],
        allow_listing=listing,
        never_raw=(".dspy", ".py"),
        follow_symlinks=follow,
    )


def get(resolver: Resolver, url: str):
    return resolver.resolve(split_segments(url), url.endswith("/"))


def test_a_static_file(tree) -> None:
    found = get(make_resolver(tree), "/hello.txt")
    assert found.path == Path(os.path.realpath(tree / "site/wwwroot/hello.txt"))
    assert found.url == "/hello.txt"
    assert found.spec is None and not found.is_dir
    assert found.stat.st_size == 5


def test_a_processor_file_carries_its_spec_longest_suffix_first(tree) -> None:
    r = make_resolver(tree)
    assert get(r, "/page.dspy").spec is SCRIPT
    found = get(r, "/app.tmpl.js")
    assert found.spec is TMPLJS and found.suffix == ".tmpl.js"
    assert get(r, "/app.tmpl").spec is TMPL


def test_roots_are_searched_in_order_and_by_prefix(tree) -> None:
    r = make_resolver(tree)
    assert get(r, "/shared.txt").path.read_text() == "from the first root"
    assert get(r, "/two/shared.txt").path.read_text() == "from the second root"
    assert get(r, "/two/two/deep.txt").url == "/two/two/deep.txt"
    assert get(r, "/only2.txt") is None  # the second root only serves under /two


def test_missing_things_are_none(tree) -> None:
    r = make_resolver(tree)
    assert get(r, "/nope.txt") is None
    assert get(r, "/hello.txt/more") is None
    assert get(r, "/nope/") is None


def test_a_directory_without_its_slash_redirects(tree) -> None:
    r = make_resolver(tree)
    with pytest.raises(RedirectToSlash) as info:
        get(r, "/sub")
    assert info.value.url == "/sub/"
    with pytest.raises(RedirectToSlash) as info:
        get(r, "/two/two")
    assert info.value.url == "/two/two/"


def test_a_directory_serves_its_first_index(tree) -> None:
    r = make_resolver(tree)
    found = get(r, "/sub/")
    assert found.path.name == "index.html" and found.url == "/sub/index.html"
    scripted = get(r, "/scripted/")
    assert scripted.spec is SCRIPT and scripted.url == "/scripted/index.dspy"
    assert get(r, "/empty/") is None  # no index, no listing


def test_listing_only_when_allowed(tree) -> None:
    found = get(make_resolver(tree, listing=True), "/empty/")
    assert found.is_dir and found.url == "/empty/"
    assert found.path == Path(os.path.realpath(tree / "site/wwwroot/empty"))


def test_source_is_never_sent_raw_in_any_case(tree) -> None:
    r = make_resolver(tree)
    assert get(r, "/code.py") is None
    assert get(r, "/Code.PY") is None


def test_conf_is_never_served_even_from_a_root_that_contains_it(tree) -> None:
    site = tree / "site"
    r = make_resolver(tree, roots=[Root.make(site, "")])
    assert get(r, "/conf/config.json") is None
    assert get(r, "/wwwroot/hello.txt") is not None


def test_a_link_to_a_dotfile_is_not_served(tree) -> None:
    (tree / "site/wwwroot/visible.txt").symlink_to(tree / "site/wwwroot/.secret")
    assert get(make_resolver(tree), "/visible.txt") is None


def test_a_link_named_txt_to_a_script_is_still_a_script(tree) -> None:
    (tree / "site/wwwroot/looks-static.txt").symlink_to(tree / "site/wwwroot/page.dspy")
    assert get(make_resolver(tree), "/looks-static.txt").spec is SCRIPT
    (tree / "site/wwwroot/src.txt").symlink_to(tree / "site/wwwroot/code.py")
    assert get(make_resolver(tree), "/src.txt") is None


def test_links_out_of_the_root_follow_the_setting(tree) -> None:
    (tree / "site/wwwroot/mod").symlink_to(tree / "outside/mod")
    followed = get(make_resolver(tree), "/mod/page.txt")
    assert followed.path.read_text() == "module page"
    assert followed.url == "/mod/page.txt"  # the URL it was asked by
    assert get(make_resolver(tree, follow=False), "/mod/page.txt") is None


def test_a_link_into_conf_is_refused_either_way(tree) -> None:
    (tree / "site/wwwroot/cfg.json").symlink_to(tree / "site/conf/config.json")
    (tree / "site/wwwroot/confdir").symlink_to(tree / "site/conf")
    for follow in (True, False):
        r = make_resolver(tree, follow=follow)
        assert get(r, "/cfg.json") is None
        assert get(r, "/confdir/config.json") is None


def test_a_fifo_is_never_opened(tree) -> None:
    os.mkfifo(tree / "site/wwwroot/pipe.txt")
    assert get(make_resolver(tree), "/pipe.txt") is None  # returns: it was only stat-ed


def test_a_dangling_link_is_missing(tree) -> None:
    (tree / "site/wwwroot/dangling.txt").symlink_to(tree / "nowhere")
    assert get(make_resolver(tree), "/dangling.txt") is None


def test_a_file_added_to_an_earlier_root_is_seen_at_once(tree) -> None:
    r = make_resolver(tree, roots=[Root.make(tree / "site/wwwroot", ""), Root.make(tree / "site/second", "")])
    assert get(r, "/only2.txt").path.read_text() == "second only"
    (tree / "site/wwwroot/only2.txt").write_text("now in the first")
    assert get(r, "/only2.txt").path.read_text() == "now in the first"


def test_a_replaced_or_removed_file_is_seen_at_once(tree) -> None:
    r = make_resolver(tree)
    first = get(r, "/hello.txt")
    new = tree / "site/wwwroot/hello.new"
    new.write_text("replaced, longer")
    os.replace(new, tree / "site/wwwroot/hello.txt")
    again = get(r, "/hello.txt")
    assert again.stat.st_ino != first.stat.st_ino and again.stat.st_size == 16
    (tree / "site/wwwroot/hello.txt").unlink()
    assert get(r, "/hello.txt") is None


def test_an_index_added_earlier_in_the_list_is_seen(tree) -> None:
    r = make_resolver(tree)
    assert get(r, "/scripted/").url == "/scripted/index.dspy"
    (tree / "site/wwwroot/scripted/index.html").write_text("now html")
    assert get(r, "/scripted/").url == "/scripted/index.html"


def test_a_link_repointed_out_of_the_root_is_refused_at_once(tree) -> None:
    link = tree / "site/wwwroot/current.txt"
    link.symlink_to(tree / "site/wwwroot/hello.txt")
    r = make_resolver(tree, follow=False)
    assert get(r, "/current.txt").path.read_text() == "hello"
    link.unlink()
    link.symlink_to(tree / "outside/secret.txt")
    assert get(r, "/current.txt") is None


def test_file_url(tree) -> None:
    (tree / "site/wwwroot/mod").symlink_to(tree / "outside/mod")
    r = make_resolver(tree)
    assert r.file_url(tree / "site/wwwroot/sub/index.html") == "/sub/index.html"
    assert r.file_url(tree / "site/second/two/deep.txt") == "/two/two/deep.txt"
    assert r.file_url(str(tree / "site/wwwroot/mod/page.txt")) == "/mod/page.txt"  # written via the link
    assert r.file_url(tree / "outside/secret.txt") is None
    get(r, "/mod/page.txt")
    assert r.file_url(tree / "outside/mod/page.txt") == "/mod/page.txt"  # found through the link
    assert make_resolver(tree, follow=False).file_url(tree / "site/wwwroot/mod/page.txt") is None


def test_canonical(tree) -> None:
    r = make_resolver(tree)
    assert r.canonical(("a", "b")) == "/a/b"
    assert r.canonical(("a",), True) == "/a/"
    assert r.canonical((), True) == "/"


def test_walk_lists_what_a_url_could_reach_and_ends_on_link_loops(tree) -> None:
    (tree / "site/wwwroot/sub/loop").symlink_to(tree / "site/wwwroot")
    (tree / "site/wwwroot/cfg").symlink_to(tree / "site/conf")
    os.mkfifo(tree / "site/wwwroot/pipe")
    r = make_resolver(tree)
    urls = {"/".join(segments) for segments, _ in r.walk(r.roots[0])}
    assert "hello.txt" in urls and "sub/index.html" in urls and "page.dspy" in urls
    assert not any(u.startswith(".") or "/." in u for u in urls)
    assert not any(u.startswith("cfg") for u in urls)
    assert "pipe" not in urls
    assert not any(u.startswith("sub/loop") for u in urls)  # the root was visited already
    second = {"/".join(s) for s, _ in r.walk(r.roots[1])}
    assert second == {"two/shared.txt", "two/only2.txt", "two/two/deep.txt"}


def test_segments_split_like_split_segments_and_never_remember_a_refusal(tree) -> None:
    """Resolver.segments: the split of a request's raw path, remembered only when it is sound."""
    r = make_resolver(tree)
    for raw in ("/hello.txt", "/sub/", "/a/./b//c", "/caf%C3%A9"):
        assert r.segments(raw) == (split_segments(raw), raw.endswith("/"))
        assert r.segments(raw) == (split_segments(raw), raw.endswith("/"))  # the remembered one
    for hostile in ("/%2e%2e/etc/passwd", "/.secret", "/a%00b"):
        for _ in range(2):  # refused every time: a 404 is never cached as an answer
            with pytest.raises(web.HTTPNotFound):
                r.segments(hostile)
    long = "/" + "x" * (Resolver.SPLIT_CACHE_PATH + 1)
    assert r.segments(long) == ((long[1:],), False)
    assert long not in r._split  # noqa: SLF001 - a prober's long paths take no memory


# ------------------------------------------------------------ one turn of the loop


def page(resolver: Resolver, url: str):
    return resolver.resolve_page(split_segments(url), url.endswith("/"))


def counting_stat(monkeypatch) -> list[str]:
    """Record every os.stat the resolver makes."""
    calls: list[str] = []
    real = os.stat

    def stat(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr("ahcore.resolver.os.stat", stat)
    return calls


async def test_a_page_is_looked_up_once_per_turn_of_the_loop(tree, monkeypatch) -> None:
    """Requests answered in the same turn share one lookup; the next turn looks again."""
    r = make_resolver(tree)
    calls = counting_stat(monkeypatch)
    first = page(r, "/page.dspy")
    made = len(calls)
    assert made >= 1
    for _ in range(5):
        assert page(r, "/page.dspy") is first
    assert len(calls) == made  # no stat for the rest of the turn

    (tree / "site/wwwroot/page.dspy").write_text("return 'changed, and longer'\n")
    await asyncio.sleep(0)  # the next turn: a request read now sees the saved file
    again = page(r, "/page.dspy")
    assert len(calls) > made
    assert again.stat.st_size == len("return 'changed, and longer'\n")


async def test_a_lookup_from_inside_a_request_is_never_remembered(tree) -> None:
    """include/path_call use resolve(): a file written in this turn is seen at once."""
    r = make_resolver(tree)
    assert page(r, "/hello.txt").stat.st_size == 5
    (tree / "site/wwwroot/hello.txt").write_text("rewritten in this turn")
    assert get(r, "/hello.txt").stat.st_size == len("rewritten in this turn")


async def test_what_a_turn_does_not_remember(tree) -> None:
    """Misses, partials and folders are looked up every time, even within one turn."""
    r = make_resolver(tree)
    assert page(r, "/nothing-here.txt") is None
    (tree / "site/wwwroot/nothing-here.txt").write_text("now it is")
    assert page(r, "/nothing-here.txt").stat.st_size == len("now it is")
    (tree / "site/wwwroot/_part.dspy").write_text("return 1\n")
    assert page(r, "/_part.dspy") is None  # a partial is no page
    listing = make_resolver(tree, listing=True)
    assert page(listing, "/empty/").is_dir
    (tree / "site/wwwroot/empty/index.html").write_text("an index now")
    assert page(listing, "/empty/").url == "/empty/index.html"  # the folder was not remembered
    assert set(r._this_turn) == {(("nothing-here.txt",), False)}  # noqa: SLF001 - found pages only


def test_without_a_running_loop_nothing_is_remembered(tree) -> None:
    """`ahcore check` and other callers outside a loop always see the file as it is now."""
    r = make_resolver(tree)
    assert page(r, "/hello.txt").stat.st_size == 5
    (tree / "site/wwwroot/hello.txt").write_text("longer now")
    assert page(r, "/hello.txt").stat.st_size == len("longer now")
    assert not r._this_turn  # noqa: SLF001
