"""ahcore.scriptfiles called directly: what a script may send, store and link to."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ahcore import Processor, ProcessorSpec, hookimpl
from ahcore.appkeys import get_site
from ahcore.context import RequestContext
from ahcore.headers import content_disposition
from ahcore.scriptfiles import (
    MEDIA_PATH_LIMIT,
    FileStorage,
    b64media2url,
    decode_data_url,
    file_download,
    file_response,
    hex2base64,
    servable_file,
    store_stream,
)
from ahcore.site import Site
from ahcore.sitefiles import FileOutZone, SiteFileNotFound


class PageProcessor(Processor):
    """Stands for any processor: its files are ones the site runs."""


class PagePlugin:
    @hookimpl
    def register_processor(self) -> ProcessorSpec:
        return ProcessorSpec("page", (".tmpl",), PageProcessor)


CONFIG: dict[str, Any] = {
    "filesroot": "$[workdir]$/files",
    "uploads": {"max_file_size": 64},
    "website": {
        "paths": [["$[workdir]$/wwwroot", ""]],
        "processors": [[".tmpl", "page"]],
    },
    "plugins": {"page": True},
}
FILES = {
    "wwwroot/a.txt": "a",
    "wwwroot/sub/deep.txt": "deep",
    'wwwroot/say "hi"; x.txt': "quoted",
    "wwwroot/page.tmpl": "{{ 1 }}",
    "wwwroot/tool.py": "print(1)",
    "wwwroot/.hidden": "secret",
    "wwwroot/.git/config": "secret",
    "wwwroot2/sibling.txt": "not a root",
    "files/2020/01/01/up.html": "<script>x</script>",
    "data/list.csv": "a,b\n",
}


def build(make_site: Any, tmp_path: Path, **config: Any) -> Site:
    cfg = {**CONFIG, **config}
    workdir = make_site(config=cfg, files=FILES)
    (tmp_path / "outside.txt").write_text("not the site's")
    return get_site(_create(workdir))


def _create(workdir: Path) -> web.Application:
    from ahcore.app import create_app

    return create_app(workdir, extra_plugins={"page": PagePlugin()})


def contents(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def names_under(root: str | Path) -> list[str]:
    return [p.name for p in Path(root).rglob("*")]


@pytest.fixture
def site(make_site: Any, tmp_path: Path) -> Site:
    return build(make_site, tmp_path)


@pytest.fixture
def active(site: Site, make_request: Any) -> Iterator[RequestContext]:
    """A request context of ``site`` made current, as while a script runs."""
    context = RequestContext(make_request(app=site.app), site, None)
    token = context.activate()
    yield context
    context.deactivate(token)


# ---------------------------------------------------------------- servable_file


@pytest.mark.parametrize(
    "name", ["wwwroot/a.txt", "wwwroot/sub/deep.txt", "wwwroot/sub/../a.txt", "files/2020/01/01/up.html"]
)
def test_files_under_a_content_root_or_filesroot_are_servable(site: Site, name: str) -> None:
    assert servable_file(site, name) == (site.workdir / os.path.normpath(name)).resolve()
    assert servable_file(site, site.workdir / name) == servable_file(site, name)  # absolute, PathLike


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../outside.txt", "only files under filesroot or a content root"),
        ("wwwroot/../../outside.txt", "only files under filesroot or a content root"),
        ("conf/config.json", "only files under filesroot or a content root"),
        ("wwwroot/../conf/config.json", "only files under filesroot or a content root"),
        ("data/list.csv", "only files under filesroot or a content root"),
        ("wwwroot2/sibling.txt", "only files under filesroot or a content root"),
        ("/etc/passwd", "only files under filesroot or a content root"),
        ("wwwroot", "only files under filesroot or a content root"),
        ("wwwroot/.hidden", "dot-named files and folders are private"),
        ("wwwroot/.git/config", "dot-named files and folders are private"),
        ("wwwroot/page.tmpl", "files the site runs are never sent as they are"),
        ("wwwroot/tool.py", "files the site runs are never sent as they are"),
        ("wwwroot/a.txt\x00.png", "a path may not contain NUL"),
    ],
)
def test_everything_else_is_refused_with_a_reason(site: Site, name: str, reason: str) -> None:
    with pytest.raises(FileOutZone) as info:
        servable_file(site, name)
    assert info.value.status == 403
    assert reason in str(info.value)


@pytest.mark.parametrize("name", ["wwwroot/missing.txt", "wwwroot/sub", "files/2020/nothing"])
def test_a_missing_file_or_a_folder_is_not_found(site: Site, name: str) -> None:
    with pytest.raises(SiteFileNotFound) as info:
        servable_file(site, name)
    assert info.value.status == 404


def test_links_out_follow_the_follow_symlinks_setting(make_site: Any, tmp_path: Path) -> None:
    on = build(make_site, tmp_path)
    off = build(make_site, tmp_path, website={**CONFIG["website"], "follow_symlinks": False})
    for site in (on, off):
        (site.workdir / "wwwroot" / "out.txt").symlink_to(tmp_path / "outside.txt")
        (site.workdir / "wwwroot" / "conf.json").symlink_to(site.workdir / "conf" / "config.json")
        (site.workdir / "wwwroot" / "peek").symlink_to(site.workdir / "wwwroot" / ".hidden")
        (site.workdir / "wwwroot" / "code.txt").symlink_to(site.workdir / "wwwroot" / "tool.py")
    assert servable_file(on, "wwwroot/out.txt") == (tmp_path / "outside.txt").resolve()
    with pytest.raises(FileOutZone, match="outside the site"):
        servable_file(off, "wwwroot/out.txt")
    for site in (on, off):
        # Whatever the setting, a link never reaches conf/, a dot-file or code.
        with pytest.raises(FileOutZone, match="conf/ folder is private|outside the site"):
            servable_file(site, "wwwroot/conf.json")
        with pytest.raises(FileOutZone, match="dot-named"):
            servable_file(site, "wwwroot/peek")
        with pytest.raises(FileOutZone, match="files the site runs"):
            servable_file(site, "wwwroot/code.txt")


# ---------------------------------------------------------------- responses


async def test_file_response_sends_a_site_file_inline_or_as_a_download(
    active: RequestContext,
) -> None:
    inline = await file_response(active.request, "wwwroot/a.txt")
    assert isinstance(inline, web.FileResponse)
    assert "Content-Disposition" not in inline.headers
    assert "Content-Security-Policy" not in inline.headers
    name = 'say "hi"; x.txt'
    sent = await file_download(active.request, "wwwroot/" + name)
    header = sent.headers["Content-Disposition"]
    assert header == content_disposition(name)
    assert header.startswith('attachment; filename="say \\"hi\\"; x.txt"; filename*=utf-8\'\'')
    assert "\r" not in header and "\n" not in header


async def test_an_upload_is_sent_sandboxed(active: RequestContext) -> None:
    sent = await file_response(active.request, "files/2020/01/01/up.html")
    assert sent.headers["Content-Security-Policy"] == "sandbox"
    assert "Content-Disposition" not in sent.headers
    download = await file_download(active.request, "files/2020/01/01/up.html")
    assert download.headers["Content-Security-Policy"] == "sandbox"
    assert download.headers["Content-Disposition"].startswith('attachment; filename="up.html"')


async def test_file_response_refuses_what_servable_file_refuses(active: RequestContext) -> None:
    with pytest.raises(FileOutZone):
        await file_response(active.request, "conf/config.json")
    with pytest.raises(SiteFileNotFound):
        await file_download(active.request, "wwwroot/nope.txt")


# ---------------------------------------------------------------- data URLs


def test_data_urls_and_bare_base64_decode() -> None:
    png = base64.b64encode(b"\x89PNG").decode()
    assert decode_data_url(f"data:image/png;base64,{png}", 64) == (b"\x89PNG", "image/png")
    assert decode_data_url("data:text/plain,a%20b", 64) == (b"a b", "text/plain")
    assert decode_data_url(png, 64) == (b"\x89PNG", "application/octet-stream")
    # Line breaks in the base64 (as MIME writes it) are not an error.
    assert decode_data_url("data:text/plain;base64,QUJD\r\nREVG", 64) == (b"ABCDEF", "text/plain")


@pytest.mark.parametrize("text", ["not base64!", "QUJ", "data:image/png;base64,@@@@", "data:image/png;base64,QU!JD",
     "data:;base64,QUJ"],)
def test_bad_base64_is_a_400_naming_the_problem(text: str) -> None:
    with pytest.raises(web.HTTPBadRequest) as info:
        decode_data_url(text, 64)
    assert info.value.text is not None and info.value.text.startswith("not a base64 data URL")


def test_a_data_url_over_the_limit_is_a_413() -> None:
    assert decode_data_url(base64.b64encode(b"x" * 64).decode(), 64) == (
        b"x" * 64, "application/octet-stream",
    )
    with pytest.raises(web.HTTPRequestEntityTooLarge) as info:
        decode_data_url(base64.b64encode(b"x" * 80).decode(), 64)
    assert "uploads.max_file_size (64 bytes)" in (info.value.text or "")


# ---------------------------------------------------------------- FileStorage


def test_file_storage_needs_filesroot(make_app: Any, make_request: Any) -> None:
    app = make_app({"website": {"paths": [["$[workdir]$/wwwroot", ""]]}}, {"wwwroot/a": "a"})
    site = get_site(app)
    context = RequestContext(make_request(app=app), site, None)
    token = context.activate()
    try:
        with pytest.raises(RuntimeError, match="needs 'filesroot'"):
            FileStorage()
    finally:
        context.deactivate(token)


async def test_file_storage_saves_under_random_names_inside_filesroot(
    active: RequestContext,
) -> None:
    fs = FileStorage()
    stored = await fs.save("../../conf/evil.TXT", "hello")
    assert stored.startswith("/") and stored.endswith(".txt") and "evil" not in stored
    real = fs.realPath(stored)
    assert contents(real) == b"hello"
    assert real.startswith(fs.root + os.sep)
    assert fs.webpath(real) == stored
    assert fs.webpath(fs.root) is None
    assert fs.webpath(str(active.site.workdir / "conf" / "config.json")) is None
    with pytest.raises(web.HTTPBadRequest):
        fs.realPath("../conf/config.json")
    assert await fs.save("b.bin", b"\x00\x01") != stored


async def test_file_storage_bounds_what_it_stores(active: RequestContext) -> None:
    fs = FileStorage()
    await fs.save("ok.bin", b"x" * 64)
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await fs.save("big.bin", b"x" * 65)
    parts = [b"x" * 40, b"x" * 40, b""]

    async def read() -> bytes:
        return parts.pop(0)

    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await fs.save("big.bin", read)
    left = names_under(fs.root)
    assert not any(n.endswith(".part") for n in left), left
    assert sum(n.endswith(".bin") for n in left) == 1, left  # only ok.bin


async def test_a_stream_is_stored_whole(active: RequestContext) -> None:
    store = active.site.uploads
    assert store is not None

    async def chunks() -> Any:
        for part in (b"ab", b"cd", b"e"):
            yield part

    sub = await store_stream(store, chunks(), "x.dat")
    assert store.realpath(sub).read_bytes() == b"abcde"
    assert not store.realpath(sub).with_name(store.realpath(sub).name + ".part").exists()


async def test_save_base64_file_keeps_the_media_suffix(active: RequestContext) -> None:
    fs = FileStorage()
    real = fs.save_base64_file("data:image/png;base64," + base64.b64encode(b"PNG").decode())
    assert real.endswith(".png") and contents(real) == b"PNG"


def test_remove_of_a_missing_file_is_logged_not_raised(
    active: RequestContext, caplog: pytest.LogCaptureFixture
) -> None:
    fs = FileStorage()
    with caplog.at_level(logging.ERROR, logger="ahcore.scriptfiles"):
        fs.remove("/2020/01/01/none.txt")
    assert "FileStorage.remove('/2020/01/01/none.txt') failed" in caplog.text
    fs.remove("/2020/01/01/up.html")
    assert not (active.site.workdir / "files/2020/01/01/up.html").exists()


async def test_streaming_read_honours_range(active: RequestContext, make_request: Any) -> None:
    fs = FileStorage()
    stored = await fs.save("t.txt", "0123456789")

    async def read(headers: dict[str, str]) -> bytes:
        request = make_request(headers=headers, app=active.site.app)
        return b"".join([c async for c in fs.streaming_read(request, stored, buf_size=3)])

    assert await read({}) == b"0123456789"
    assert await read({"Range": "bytes=2-4"}) == b"234"
    assert await read({"Range": "bytes=-3"}) == b"789"
    assert await read({"Range": "bytes=8-"}) == b"89"


# ---------------------------------------------------------------- media URLs


async def test_b64media2url(active: RequestContext, monkeypatch: pytest.MonkeyPatch) -> None:
    request = active.request
    assert await b64media2url(request, "https://cdn.example/x.png") == "https://cdn.example/x.png"
    assert await b64media2url(request, "x" * (MEDIA_PATH_LIMIT + 1)) == ""
    assert await b64media2url(request, "/2020/01/01/a b.png") == (
        "http://example.org/idfile?path=/2020/01/01/a%20b.png"
    )
    url = await b64media2url(request, "data:image/png;base64," + base64.b64encode(b"P").decode())
    assert url.startswith("http://example.org/idfile?path=/") and url.endswith(".png")
    stored = url.split("path=", 1)[1]
    assert contents(FileStorage().realPath(stored)) == b"P"
    monkeypatch.delenv("BASEURL", raising=False)
    assert await b64media2url(None, "/a.png") == "/idfile?path=/a.png"
    monkeypatch.setenv("BASEURL", "https://site.example")
    assert await b64media2url(None, "/a.png") == "https://site.example/idfile?path=/a.png"


@pytest.mark.parametrize(
    ("hex_str", "typ", "out"),
    [
        ("48656c6c6f", "txt", "SGVsbG8="),
        ("0x48656C6C6F", "bin", "SGVsbG8="),
        ("48656c6c6f", "png", "data:image/png;base64,SGVsbG8="),
        ("48656c6c6f", "mp3", "data:audio/mpeg;base64,SGVsbG8="),
        ("", "txt", ""),
    ],
)
def test_hex2base64(hex_str: str, typ: str, out: str) -> None:
    assert hex2base64(hex_str, typ) == out


def test_hex2base64_refuses_text_that_is_not_hex() -> None:
    with pytest.raises(ValueError):
        hex2base64("zz", "txt")
