"""Small static files from memory (ahcore.staticfiles) through a real site: what a client sees.

Each test ages its files past ``RACY_NS`` (a file written this instant is
never cached) and waits for the cache to be filled, then checks the answer
is the one FileResponse gave for the same file.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import aiohttp

from ahcore.app import create_app
from ahcore.appkeys import get_site
from ahcore.server import start_site
from ahcore.staticfiles import FILE_LIMIT

PAGE = b"<!doctype html><title>t</title>\n" + b"<p>static</p>\n" * 40


def age(path: Path, seconds: float = 100.0) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def static_site(make_site, config=None) -> Path:
    site = make_site(
        config=config,
        files={
            "wwwroot/page.html": PAGE,
            "wwwroot/style.css": "p { color: red }\n",
            "wwwroot/big.bin": b"x" * (FILE_LIMIT + 1),
        },
    )
    for name in ("page.html", "style.css", "big.bin"):
        age(site / "wwwroot" / name)
    return site


async def cached(client, url: str) -> None:
    """Request ``url`` once (a miss) and wait until its bytes are in the cache."""
    site = get_site(client.app)
    resolved = site.resolve(url)
    r = await client.get(url)
    assert r.status == 200
    await r.read()
    assert await site.static_cache.load(resolved.path, resolved.stat)


def without_date(headers) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in headers.items() if k != "Date")


async def test_a_cached_answer_is_the_file_response_answer(make_site, ahcore_client):
    client = await ahcore_client(static_site(make_site))
    site = get_site(client.app)
    for method in ("GET", "HEAD"):
        site.static_cache.clear()
        first = await client.request(method, "/page.html")  # FileResponse
        first_body = await first.read()
        await cached(client, "/page.html")
        again = await client.request(method, "/page.html")
        assert (again.status, without_date(again.headers)) == (
            first.status,
            without_date(first.headers),
        )
        assert await again.read() == first_body == (PAGE if method == "GET" else b"")
    assert site.static_cache.size == len(PAGE)
    assert again.headers["Content-Type"] == "text/html"
    assert again.headers["Content-Length"] == str(len(PAGE))
    assert again.headers["Accept-Ranges"] == "bytes"
    # The kernel's headers are added to it as to every answer.
    assert again.headers["X-Content-Type-Options"] == "nosniff"
    assert again.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert again.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    r = await client.get("/style.css")
    await cached(client, "/style.css")
    r = await client.get("/style.css")
    assert r.headers["Content-Type"] == "text/css" and await r.text() == "p { color: red }\n"


async def test_configured_security_headers_apply_to_cached_answers(make_site, ahcore_client):
    config = {"website": {"security_headers": {"X-Frame-Options": None, "X-Test": "yes"}}}
    client = await ahcore_client(static_site(make_site, config))
    await cached(client, "/page.html")
    r = await client.get("/page.html")
    assert r.headers["X-Test"] == "yes" and "X-Frame-Options" not in r.headers
    site = get_site(client.app)
    assert site.resolve("/page.html").path in site.static_cache


async def test_conditional_requests_and_ranges(make_site, ahcore_client):
    client = await ahcore_client(static_site(make_site))
    await cached(client, "/page.html")
    r = await client.get("/page.html")
    etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    r = await client.get("/page.html", headers={"If-None-Match": etag})
    assert r.status == 304 and await r.read() == b"" and r.headers["ETag"] == etag
    r = await client.get("/page.html", headers={"If-None-Match": f'"nope", {etag}'})
    assert r.status == 304
    r = await client.get("/page.html", headers={"If-Modified-Since": modified})
    assert r.status == 304 and r.headers["Last-Modified"] == modified
    r = await client.get("/page.html", headers={"If-None-Match": '"nope"'})
    assert r.status == 200 and await r.read() == PAGE
    r = await client.get(
        "/page.html", headers={"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}
    )
    assert r.status == 200 and await r.read() == PAGE
    # If-Match and If-Unmodified-Since: FileResponse's 412 (and 200 when they hold).
    r = await client.get("/page.html", headers={"If-Match": '"nope"'})
    assert r.status == 412
    r = await client.get("/page.html", headers={"If-Match": etag})
    assert r.status == 200 and await r.read() == PAGE
    r = await client.get(
        "/page.html", headers={"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}
    )
    assert r.status == 412
    # Range and If-Range: FileResponse's 206 and 416.
    r = await client.get("/page.html", headers={"Range": "bytes=2-10"})
    assert r.status == 206 and await r.read() == PAGE[2:11]
    assert r.headers["Content-Range"] == f"bytes 2-10/{len(PAGE)}"
    r = await client.get("/page.html", headers={"Range": f"bytes={len(PAGE) + 5}-"})
    assert r.status == 416
    r = await client.get("/page.html", headers={"Range": "bytes=0-1", "If-Range": modified})
    assert r.status == 206 and await r.read() == PAGE[:2]
    r = await client.post("/page.html", data="x")
    assert r.status == 405


async def test_a_file_changed_on_disk_is_served_fresh(make_site, ahcore_client):
    site_dir = static_site(make_site)
    client = await ahcore_client(site_dir)
    await cached(client, "/style.css")
    etag = (await client.get("/style.css")).headers["ETag"]
    path = site_dir / "wwwroot" / "style.css"
    path.write_text("p { color: blue }\n")  # same size, now
    r = await client.get("/style.css")
    assert await r.text() == "p { color: blue }\n" and r.headers["ETag"] != etag
    r = await client.get("/style.css", headers={"If-None-Match": etag})
    assert r.status == 200  # the old ETag no longer matches
    age(path, 50)
    await cached(client, "/style.css")
    r = await client.get("/style.css")
    assert await r.text() == "p { color: blue }\n"
    replacement = site_dir / "wwwroot" / "new.css"
    replacement.write_text("em {}\n")
    age(replacement, 50)
    os.replace(replacement, path)  # a new inode, as editors and deploys make
    assert await (await client.get("/style.css")).text() == "em {}\n"
    path.unlink()
    assert (await client.get("/style.css")).status == 404


async def test_large_files_and_precompressed_siblings_go_to_file_response(make_site, ahcore_client):
    site_dir = static_site(make_site)
    client = await ahcore_client(site_dir)
    site = get_site(client.app)
    r = await client.get("/big.bin")
    assert r.status == 200 and len(await r.read()) == FILE_LIMIT + 1
    resolved = site.resolve("/big.bin")
    assert not await site.static_cache.load(resolved.path, resolved.stat)
    await cached(client, "/style.css")
    gz = site_dir / "wwwroot" / "style.css.gz"
    gz.write_bytes(
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03+H\xad\x04\x00\x9b\xc8\x81\xc5\x03\x00\x00\x00"
    )
    r = await client.get("/style.css", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert r.headers.get("Content-Encoding") == "gzip" and r.headers["Vary"] == "Accept-Encoding"
    r = await client.get("/style.css", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in r.headers and await r.text() == "p { color: red }\n"


async def test_cached_answers_are_in_the_access_log(make_site, tmp_path):
    logfile = tmp_path / "site.log"
    config = {"logger": {"levelname": "info", "logfile": str(logfile)}}
    site_dir = static_site(make_site, config)
    logger = logging.getLogger("tests.static_cache")
    logger.setLevel(logging.INFO)
    running = await start_site(create_app(site_dir), access_log=logger)
    try:
        site = get_site(running.app)
        resolved = site.resolve("/page.html")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{running.url}/page.html?n=1") as r:
                await r.read()
            assert await site.static_cache.load(resolved.path, resolved.stat)
            async with http.get(f"{running.url}/page.html?n=2") as r:
                assert await r.read() == PAGE
    finally:
        await running.close()
    lines = logfile.read_text().splitlines()
    assert any('"GET /page.html?n=2 HTTP/1.1" 200 ' in line for line in lines), lines
