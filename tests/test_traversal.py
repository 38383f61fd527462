"""Traversal attempts over a raw socket (client libraries would normalise the path)."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from aiohttp.test_utils import TestServer

from ahcore.app import create_app


async def raw_get(server: TestServer, target: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
    await writer.drain()
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data


def confine(site_dir) -> None:
    """Switch the site to ``website.follow_symlinks: false``."""
    path = site_dir / "conf" / "config.json"
    cfg = json.loads(path.read_text())
    cfg["website"]["follow_symlinks"] = False
    path.write_text(json.dumps(cfg))


@pytest.fixture(params=[True, False], ids=["follow_symlinks", "confined"])
async def server(request, site_dir, echo_plugin, tmp_path):
    if not request.param:
        confine(site_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET")
    (outside / "evil.echo").write_text("EVIL-RAN")
    www = site_dir / "wwwroot"
    os.symlink(outside / "secret.txt", www / "link.txt")
    os.symlink(outside, www / "linkdir")
    os.symlink(www / "loop_a", www / "loop_b")
    os.symlink(www / "loop_b", www / "loop_a")
    os.symlink(www / "hello.txt", www / "inside_link.txt")
    srv = TestServer(create_app(site_dir, extra_plugins={"echo": echo_plugin}))
    await srv.start_server()
    yield srv
    await srv.close()


ATTACKS = [
    "/../outside/secret.txt",
    "/../../../../etc/passwd",
    "/%2e%2e/outside/secret.txt",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/..%2foutside/secret.txt",
    "/..%2Foutside%2Fsecret.txt",
    "/%252e%252e/outside/secret.txt",
    "/%252e%252e%252foutside%252fsecret.txt",
    "/..\\outside\\secret.txt",
    "/..%5coutside%5csecret.txt",
    "/sub/..%5c..%5coutside%5csecret.txt",
    "/hello.txt%00.echo",
    "/%00/../outside/secret.txt",
    "//..//outside/secret.txt",
    "/./../outside/secret.txt",
    "/loop_a",
    "/loop_b/x",
    "/%c0%ae%c0%ae/outside/secret.txt",
    "/%ff%fe",
    "/.secret",
    "/%2esecret",
    "/conf/config.json",
    "/two/../conf/secret.txt",
]


@pytest.mark.parametrize("target", ATTACKS)
async def test_traversal_is_refused(server, target):
    """Traversal in any encoding answers the same 404 as a missing file, links followed or not."""
    status, data = await raw_get(server, target)
    _, missing = await raw_get(server, "/no-such-file.txt")
    assert status == 404, (target, status)
    assert data.split(b"\r\n\r\n", 1)[1] == missing.split(b"\r\n\r\n", 1)[1]
    assert b"TOP-SECRET" not in data and b"EVIL-RAN" not in data and b"do not serve" not in data
    assert b"Traceback" not in data


LINKS_OUT = ["/link.txt", "/linkdir/secret.txt", "/linkdir/evil.echo"]


@pytest.mark.parametrize("target", LINKS_OUT)
async def test_links_out_of_the_root_follow_the_setting(request, server, target):
    """Links the owner placed are followed by default and refused with follow_symlinks: false."""
    status, data = await raw_get(server, target)
    if "confined" in request.node.callspec.id:
        assert status == 404 and b"TOP-SECRET" not in data and b"EVIL-RAN" not in data
    else:
        assert status == 200 and (b"TOP-SECRET" in data or b"EVIL-RAN" in data), target


async def test_symlink_inside_root_is_served(server):
    status, data = await raw_get(server, "/inside_link.txt")
    assert status == 200 and data.endswith(b"hello world\n")


async def test_doubled_slashes_and_dot_segments_normalise(server):
    for target in ("//hello.txt", "/./hello.txt", "/sub/../hello.txt"):
        status, data = await raw_get(server, target)
        if target == "/sub/../hello.txt":
            assert status == 404  # '..' is refused, never resolved
        else:
            assert status == 200 and data.endswith(b"hello world\n"), target


async def test_a_symlink_repointed_outside_the_root_is_refused_at_once(site_dir, echo_plugin, tmp_path):
    www = site_dir / "wwwroot"
    inside = www / "inside.txt"
    inside.write_text("inside")
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("TOP-SECRET")
    link = www / "flip.txt"
    os.symlink(inside, link)
    confine(site_dir)
    srv = TestServer(create_app(site_dir, extra_plugins={"echo": echo_plugin}))
    await srv.start_server()
    try:
        status, data = await raw_get(srv, "/flip.txt")
        assert status == 200 and data.endswith(b"inside")
        link.unlink()
        os.symlink(outside, link)
        status, data = await raw_get(srv, "/flip.txt")
        assert status == 404 and b"TOP-SECRET" not in data
    finally:
        await srv.close()
