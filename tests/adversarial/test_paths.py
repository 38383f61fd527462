"""Paths a visitor may try, over raw sockets: links, special files, source files.

A client library would normalise ``..`` and percent-encodings away, so every
request here is raw bytes. The site follows the owner's symlinks (the
default, as ahserver did for module folders) unless a test confines it.
Each refused path must answer exactly what a missing file answers (404),
within a deadline (a FIFO that got opened would hang the request, a device
like ``/dev/zero`` would stream forever), and leave every file as it was.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import pytest
from advkit import parse_reply, raw_exchange, request_bytes

from ahcore.testing import write_site


def snapshot(*roots: Path) -> list[tuple[str, int, int]]:
    """Every path under ``roots`` with its size and mtime, links not followed."""
    out = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                st = os.lstat(os.path.join(dirpath, name))
                out.append((os.path.join(dirpath, name), st.st_size, st.st_mtime_ns))
    return sorted(out)


@pytest.fixture
def layout(tmp_path: Path):
    """A site whose wwwroot holds owner-placed links of every kind."""
    outside = tmp_path / "outside"
    module = outside / "shop"
    module.mkdir(parents=True)
    (module / "price.txt").write_text("42 EUR")
    (module / "calc.dspy").write_text("return {'SCRIPT-RAN': True}\n")
    (outside / ".env").write_text("SECRET-ENV=1")
    site = write_site(
        tmp_path / "site",
        {
            "website": {
                "processors": [[".dspy", "dspy"]],
                "allowListFolder": True,
                "cookie_secret": "x" * 40,
            },
            "plugins": {"dspy": True},
        },
        {
            "wwwroot/hello.txt": "hello",
            "wwwroot/page.tmpl": "SECRET-TEMPLATE {{ 1 }}",
            "wwwroot/fifodir/keep.txt": "keep",
            "conf/db.txt": "SECRET-CONF",
        },
    )
    www = site / "wwwroot"
    (www / "shop").symlink_to(module, target_is_directory=True)
    (www / "cfg").symlink_to(site / "conf", target_is_directory=True)
    (www / "cfg.txt").symlink_to(site / "conf" / "db.txt")
    (www / "env.txt").symlink_to(outside / ".env")
    (www / "zero.txt").symlink_to("/dev/zero")
    (www / "null.txt").symlink_to("/dev/null")
    (www / "dangling.txt").symlink_to(tmp_path / "nowhere")
    os.mkfifo(www / "pipe.txt")
    os.mkfifo(www / "fifodir" / "index.html")
    (www / "pipe-link.txt").symlink_to(www / "pipe.txt")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(www / "sock.txt"))
    yield site, outside
    sock.close()


def assert_never_opened(fifo: Path) -> None:
    """A FIFO nobody holds open for reading refuses a non-blocking writer (ENXIO)."""
    with pytest.raises(OSError) as info:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert info.value.errno == errno.ENXIO


REFUSED = [
    "/pipe.txt",  # FIFO: opening it would block
    "/pipe-link.txt",
    "/fifodir/index.html",  # a FIFO as the folder's index
    "/sock.txt",  # a socket
    "/zero.txt",  # a device: would stream forever
    "/null.txt",
    "/dangling.txt",
    "/cfg/db.txt",  # a link into conf/
    "/cfg.txt",
    "/cfg/config.json",
    "/env.txt",  # a link to a dotfile
    "/shop/../cfg/db.txt",  # lexical checks first, through a linked folder too
    "/shop/%2e%2e/%2e%2e/site/conf/db.txt",
    "/shop/..%2f..%2fsite%2fconf%2fdb.txt",
    "/shop%2f..%2fcfg.txt",
    "/shop/calc.dspy%00.txt",
    "/page.tmpl",  # an installed processor's source (tmpl not enabled here)
    "/PAGE.tmpl",
    "/shop/.%2e/.env",
]


@pytest.mark.parametrize("follow", [True, False], ids=["follow_symlinks", "confined"])
async def test_special_files_links_into_conf_and_traversal_answer_404(serve, layout, follow):
    pytest.importorskip("ahcore_tmpl")
    site, outside = layout
    if not follow:
        cfg_path = site / "conf" / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["website"]["follow_symlinks"] = False
        cfg_path.write_text(json.dumps(cfg))
    server = await serve(site)
    before = snapshot(site, outside)
    missing = await raw_exchange(server, request_bytes("GET", "/no-such-file.txt"), timeout=5)
    assert missing.status == 404
    for target in REFUSED:
        reply = await raw_exchange(server, request_bytes("GET", target), timeout=5)
        assert reply.status == 404, (target, reply.status)
        assert reply.body == missing.body, target
        reply.assert_clean()
        assert b"SECRET" not in reply.raw and b"{{" not in reply.raw, target
    assert_never_opened(site / "wwwroot" / "pipe.txt")
    assert_never_opened(site / "wwwroot" / "fifodir" / "index.html")
    # the listing names no special file and no link that leads nowhere served
    listing = await raw_exchange(server, request_bytes("GET", "/"), timeout=5)
    assert listing.status == 200
    for name in (b"pipe.txt", b"sock.txt", b"zero.txt", b"dangling.txt"):
        assert name not in listing.body, name
    # a folder whose index is a FIFO is listed (listing is on), the FIFO is not
    folder = await raw_exchange(server, request_bytes("GET", "/fifodir/"), timeout=5)
    assert folder.status == 200 and b"keep.txt" in folder.body and b"index.html" not in folder.body
    assert snapshot(site, outside) == before


async def test_a_linked_module_folder_is_served_and_its_scripts_run(serve, layout):
    site, outside = layout
    server = await serve(site)
    price = await raw_exchange(server, request_bytes("GET", "/shop/price.txt"), timeout=5)
    assert price.status == 200 and price.body == b"42 EUR"
    script = await raw_exchange(server, request_bytes("GET", "/shop/calc.dspy"), timeout=5)
    assert script.status == 200 and json.loads(script.body) == {"SCRIPT-RAN": True}
    # a script in a linked folder is a script: never its source
    assert b"return" not in script.body


async def test_linked_module_folders_are_not_followed_when_confined(serve, layout):
    site, outside = layout
    cfg_path = site / "conf" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["website"]["follow_symlinks"] = False
    cfg_path.write_text(json.dumps(cfg))
    server = await serve(site)
    for target in ("/shop/price.txt", "/shop/calc.dspy", "/shop/"):
        reply = await raw_exchange(server, request_bytes("GET", target), timeout=5)
        assert reply.status == 404, target
        assert b"42 EUR" not in reply.raw and b"SCRIPT-RAN" not in reply.raw
    hello = await raw_exchange(server, request_bytes("GET", "/hello.txt"), timeout=5)
    assert hello.status == 200


async def test_a_processor_the_server_lacks_answers_501_and_never_the_source(serve, tmp_path):
    site = write_site(
        tmp_path / "site",
        {"website": {"processors": [[".xterm", "xterm"]], "cookie_secret": "x" * 40}},
        {"wwwroot/shell.xterm": "SECRET-SOURCE of a terminal"},
    )
    server = await serve(site)
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE"):
        reply = await raw_exchange(
            server, request_bytes(method, "/shell.xterm", b"x" if method != "GET" else b""), timeout=5
        )
        assert reply.status == 501, (method, reply.status)
        reply.assert_clean()
    reply = parse_reply((await raw_exchange(server, request_bytes("GET", "/shell.xterm"))).raw)
    assert b"'xterm'" in reply.body and b"ahcore-xterm" in reply.body
