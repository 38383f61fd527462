"""ahcore.staticfiles: small files answered from memory, validated by the stat stamp."""

from __future__ import annotations

import os
import time
from pathlib import Path

from aiohttp import web

from ahcore.staticfiles import FILE_LIMIT, RACY_NS, StaticCache


def write(path: Path, data: bytes, age: float = 100.0) -> os.stat_result:
    """Write ``data`` and date the file ``age`` seconds back (outside RACY_NS)."""
    path.write_bytes(data)
    then = time.time() - age
    os.utime(path, (then, then))
    return os.stat(path)


async def test_a_hit_answers_from_memory_with_file_response_headers(tmp_path, make_request) -> None:
    path = tmp_path / "a.css"
    st = write(path, b"body { color: red }\n")
    cache = StaticCache()
    first = cache.respond(make_request("GET", "/a.css"), path, st)
    assert isinstance(first, web.FileResponse)  # a miss: FileResponse, the read starts
    assert await cache.load(path, st) and path in cache
    hit = cache.respond(make_request("GET", "/a.css"), path, st)
    assert type(hit) is web.Response and hit.body == b"body { color: red }\n"
    assert hit.headers["Content-Type"] == "text/css"
    assert hit.headers["ETag"] == f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    assert hit.headers["Accept-Ranges"] == "bytes"
    assert "Last-Modified" in hit.headers


async def test_a_changed_file_is_not_answered_from_the_old_bytes(tmp_path, make_request) -> None:
    path = tmp_path / "a.txt"
    st = write(path, b"old")
    cache = StaticCache()
    assert await cache.load(path, st)
    # Same size, another mtime; then a new inode (a replaced file): both miss.
    st2 = write(path, b"new", age=50)
    assert isinstance(cache.respond(make_request(), path, st2), web.FileResponse)
    assert await cache.load(path, st2)
    assert cache.respond(make_request(), path, st2).body == b"new"
    replacement = tmp_path / "b.txt"
    write(replacement, b"newer", age=50)
    os.replace(replacement, path)
    st3 = os.stat(path)
    assert isinstance(cache.respond(make_request(), path, st3), web.FileResponse)
    assert await cache.load(path, st3)
    assert cache.respond(make_request(), path, st3).body == b"newer"
    assert len(cache) == 1 and cache.size == 5
    os.chmod(path, 0o000)  # FileResponse would answer 403 (unless run as root)
    st4 = os.stat(path)
    assert isinstance(cache.respond(make_request(), path, st4), web.FileResponse)
    os.chmod(path, 0o644)


async def test_a_read_that_finds_another_file_is_not_cached(tmp_path) -> None:
    path = tmp_path / "a.txt"
    st = write(path, b"one")
    write(path, b"two!", age=10)  # changed after the resolver's stat
    cache = StaticCache()
    assert not await cache.load(path, st)
    assert len(cache) == 0


async def test_the_total_cap_evicts_the_least_recently_used(tmp_path, make_request) -> None:
    cache = StaticCache(total_limit=2500, file_limit=1000)
    stats = {}
    for name in "abc":
        stats[name] = write(tmp_path / name, name.encode() * 1000)
        assert await cache.load(tmp_path / name, stats[name])
    assert len(cache) == 2 and cache.size == 2000
    assert tmp_path / "a" not in cache  # the oldest went
    cache.respond(make_request(), tmp_path / "b", stats["b"])  # b is used again
    assert await cache.load(tmp_path / "a", stats["a"])
    assert tmp_path / "c" not in cache and tmp_path / "b" in cache
    assert cache.size <= 2500


async def test_large_empty_and_just_written_files_stay_with_file_response(
    tmp_path, make_request
) -> None:
    cache = StaticCache()
    big = tmp_path / "big.bin"
    st = write(big, b"x" * (FILE_LIMIT + 1))
    assert not await cache.load(big, st)
    assert isinstance(cache.respond(make_request(), big, st), web.FileResponse)
    empty = tmp_path / "empty.txt"
    assert not await cache.load(empty, write(empty, b""))
    fresh = tmp_path / "fresh.txt"
    fresh.write_bytes(b"just written")
    st = os.stat(fresh)
    assert time.time_ns() - st.st_mtime_ns < RACY_NS
    assert not await cache.load(fresh, st)  # a second write may follow in the same tick
    assert len(cache) == 0


async def test_conditional_range_and_encoded_requests(tmp_path, make_request) -> None:
    path = tmp_path / "page.html"
    st = write(path, b"<p>hi</p>")
    cache = StaticCache()
    assert await cache.load(path, st)
    etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    r = cache.respond(make_request("GET", "/", {"If-None-Match": etag}), path, st)
    assert r.status == 304 and r.headers["ETag"] == etag and not r.body
    r = cache.respond(make_request("GET", "/", {"If-None-Match": '"other"'}), path, st)
    assert r.status == 200 and r.body == b"<p>hi</p>"
    for header in ("Range", "If-Range", "If-Match", "If-Unmodified-Since"):
        r = cache.respond(make_request("GET", "/", {header: "bytes=0-1"}), path, st)
        assert isinstance(r, web.FileResponse), header
    gzip = {"Accept-Encoding": "gzip, deflate, br"}
    assert type(cache.respond(make_request("GET", "/", gzip), path, st)) is web.Response
    write(tmp_path / "page.html.gz", b"\x1f\x8b")
    assert isinstance(cache.respond(make_request("GET", "/", gzip), path, st), web.FileResponse)
    assert type(cache.respond(make_request(), path, st)) is web.Response  # identity asked


async def test_dev_mode_tags_a_cached_page_without_touching_the_cached_bytes(
    make_app, make_request
) -> None:
    from ahcore.appkeys import SITE_KEY
    from ahcore.pipeline import static_file
    from ahcore.server import livereload

    app = make_app(
        {"website": {"paths": [["$[workdir]$/wwwroot", ""]]}},
        {"wwwroot/page.html": "<body>hi</body>"},
    )
    site = app[SITE_KEY]
    reload = livereload.install_livereload(app)
    resolved = site.resolve("/page.html")
    then = time.time() - 100
    os.utime(resolved.path, (then, then))
    resolved = site.resolve("/page.html")
    assert await site.static_cache.load(resolved.path, resolved.stat)

    async def static(request: web.Request) -> web.StreamResponse:
        return static_file(request, site.resolve(request.path), site.static_cache)

    for _ in range(2):
        page = await reload.middleware(make_request("GET", "/page.html", app=app), static)
        assert page.body == b"<body>hi" + livereload.TAG + b"</body>"  # type: ignore[attr-defined]
    hit = static_file(make_request("GET", "/page.html"), resolved, site.static_cache)
    assert hit.body == b"<body>hi</body>"  # type: ignore[attr-defined]
