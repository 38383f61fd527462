"""A site laid out like a 2025–26 module-based ahserver site, served by its own app module.

Written for this suite (no third-party site code): ``wwwroot/shop`` is a
symlink to the module's own folder elsewhere on disk; ``app/shop_app.py`` is
an ahserver app module (``webapp(init)``, ``ServerEnv()``,
``RegisterFunction``, ``add_startup``) started as a real process; the pages
are ``.ui`` bricks pages, a ``.dspy`` script calling the names the app
module registered, a websocket script, a proxy file against a local
upstream, a function route and a markdown page fetched both as a page and
as source. ``ahcore check`` must pass on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

pytest.importorskip("ahserver", reason="needs the ahserver plugin (not in the kernel-only session)")
pytest.importorskip("ahcore_bui", reason="needs the ahcore_bui plugin (not in the kernel-only session)")
pytest.importorskip("ahcore_ws", reason="needs the ahcore_ws plugin (not in the kernel-only session)")
pytest.importorskip("ahcore_proxy", reason="needs the ahcore_proxy plugin (not in the kernel-only session)")
pytest.importorskip("ahcore_md", reason="needs the ahcore_md plugin (not in the kernel-only session)")
pytest.importorskip("ahcore_dspy", reason="needs the ahcore_dspy plugin (not in the kernel-only session)")

pytestmark = pytest.mark.slow

APP_MODULE = '''\
"""The shop's app module, as ahserver sites write them."""
from ahserver.configuredServer import add_startup
from ahserver.functionProcessor import RegisterFunction
from ahserver.serverenv import ServerEnv
from ahserver.webapp import webapp

RELOADS = []


def get_module_dbname(module):
    return {"shop": "shopdb"}.get(module, "main")


async def hello(request, params_kw, *parts, **ns):
    return {"hello": params_kw.get("name", "world"), "parts": list(parts)}


def on_hot_reload(data):
    RELOADS.append(dict(data))


def reload_count():
    return len(RELOADS)


async def started(app):
    ServerEnv().startup_ran = True


def init():
    env = ServerEnv()
    env.get_module_dbname = get_module_dbname
    env.reload_count = reload_count
    env.event_dispatcher.bind("hot_reload", on_hot_reload)
    RegisterFunction().register("hello", hello)
    add_startup(started)


if __name__ == "__main__":
    webapp(init)
'''

HEADER = "<!doctype html><html><body><header>BRICKS-HEADER</header>\n"
FOOTER = "\n<footer>BRICKS-FOOTER</footer></body></html>"

MODULE_FILES = {
    "index.ui": '{"widgettype": "Text", "options": {"text": "{{ params_kw.title or \'Shop\' }}"}}',
    "api/dbname.dspy": (
        "return {'db': get_module_dbname('shop'), 'started': startup_ran,"
        " 'reloads': reload_count()}"
    ),
    "chat.ws": (
        "msg = json.loads(ws_data)\n"
        "await ws_send({'echo': msg['text'], 'db': get_module_dbname('shop')})\n"
    ),
    "upstream.proxy": (
        '{"url": "http://127.0.0.1:{{ configValue(\'.upstream_port\') }}/items",'
        ' "params": {"q": "{{ params_kw.q }}"}}'
    ),
    "guide.md": "# Guide\n\nSee [the items](items.md).\n",
    "items.md": "# Items\n",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def module_site(tmp_path: Path) -> tuple[Path, int, int]:
    """The site folder, its port and the upstream's port."""
    port, upstream_port = free_port(), free_port()
    shop = tmp_path / "modules" / "shop" / "wwwroot"  # the module's own folder
    write(shop, MODULE_FILES)
    site = tmp_path / "site"
    write(
        site / "wwwroot",
        {
            "bricks/header.tmpl": HEADER,
            "bricks/footer.tmpl": FOOTER,
            "bricks/bricksapp.tmpl": "<app>{{ params_kw.content | safe }}</app>",
            "index.html": "<h1>site</h1>",
        },
    )
    os.symlink(shop, site / "wwwroot" / "shop")  # how module-based sites mount modules
    write(site / "app", {"shop_app.py": APP_MODULE})
    config = {
        "website": {
            "paths": [["$[workdir]$/wwwroot", ""]],
            "host": "127.0.0.1",
            "port": port,
            "coding": "utf-8",
            "indexes": ["index.html", "index.ui"],
            "processors": [
                [".tmpl", "tmpl"],
                [".dspy", "dspy"],
                [".md", "md"],
                [".ui", "bui"],
                [".ws", "ws"],
                [".proxy", "proxy"],
            ],
            "startswiths": [{"leading": "/fn/hello", "registerfunction": "hello"}],
            "cookie_secret": "module-site-test-secret-of-at-least-32-bytes",
        },
        "logger": {"name": "shop", "levelname": "info"},
        "hot_reload": {"enabled": True, "interval": 0.2, "token": "module-site-reload-token-32-bytes!!"},
        "upstream_port": upstream_port,
        "plugins": {
            "dspy": True,
            "tmpl": True,
            "md": True,
            "bui": True,
            "ws": True,
            "proxy": {"allow_hosts": [f"127.0.0.1:{upstream_port}"]},
            "compat": True,
        },
    }
    write(site, {"conf/config.json": json.dumps(config, indent=2)})
    return site, port, upstream_port


async def start_upstream(port: int) -> web.AppRunner:
    async def items(request: web.Request) -> web.Response:
        return web.json_response({"q": request.query.get("q"), "items": [1, 2, 3]})

    app = web.Application()
    app.router.add_get("/items", items)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def wait_until_up(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"the app module exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("the app module did not start serving")


def test_ahcore_check_passes_on_the_module_site(module_site):
    site, _, _ = module_site
    out = subprocess.run(
        [sys.executable, "-m", "ahcore", "check", "-w", str(site)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


async def test_the_module_site_runs_unchanged_through_its_app_module(module_site):
    site, port, upstream_port = module_site
    upstream = await start_upstream(upstream_port)
    proc = subprocess.Popen(
        [sys.executable, str(site / "app" / "shop_app.py"), "-w", str(site), "-p", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until_up(base + "/index.html", proc)
        async with aiohttp.ClientSession() as http:
            # a .ui page inside the symlinked module folder, wrapped by the site's bricks layout
            async with http.get(base + "/shop/index.ui?title=Hi") as resp:
                assert resp.status == 200
                text = await resp.text()
                assert text.startswith(HEADER.rstrip()) and text.rstrip().endswith(FOOTER.strip())
                assert '"text": "Hi"' in text
            # bricks' own loader asks for the bare widget description
            async with http.get(base + "/shop/index.ui?_webbricks_=1") as resp:
                assert resp.content_type == "application/json"
                assert (await resp.json())["widgettype"] == "Text"
            # names the app module registered through ServerEnv(), and its startup
            async with http.get(base + "/shop/api/dbname.dspy") as resp:
                assert await resp.json() == {"db": "shopdb", "started": True, "reloads": 0}
            # a function route to a function registered with RegisterFunction
            async with http.get(base + "/fn/hello/a/b?name=ann") as resp:
                assert await resp.json() == {"hello": "ann", "parts": ["a", "b"]}
            # a websocket script in the module folder
            async with http.ws_connect(base + "/shop/chat.ws") as ws:
                await ws.send_str(json.dumps({"text": "hi"}))
                reply = json.loads((await ws.receive(timeout=10)).data)
                assert reply["data"] == {"echo": "hi", "db": "shopdb"} or reply == {
                    "echo": "hi",
                    "db": "shopdb",
                }
            # a proxy file, against the local upstream its allowlist names
            async with http.get(base + "/shop/upstream.proxy?q=pens") as resp:
                assert resp.status == 200
                assert await resp.json() == {"q": "pens", "items": [1, 2, 3]}
            # markdown: a browser gets the page, a script fetching it gets the source
            async with http.get(base + "/shop/guide.md", headers={"Accept": "text/html"}) as resp:
                assert resp.content_type == "text/html"
                assert "<h1" in await resp.text()
            async with http.get(
                base + "/shop/guide.md", headers={"Accept": "*/*", "Sec-Fetch-Dest": "empty"}
            ) as resp:
                source = await resp.text()
                assert source.startswith("# Guide")
                assert f"{base}/shop/items.md" in source  # links made absolute
                assert "Accept" in resp.headers.get("Vary", "")
            # the app module's hot-reload handler runs on a reload
            async with http.post(
                base + "/__hot_reload__",
                headers={"X-Hot-Reload-Token": "module-site-reload-token-32-bytes!!"},
            ) as resp:
                assert resp.status == 200
            async with http.get(base + "/shop/api/dbname.dspy") as resp:
                assert (await resp.json())["reloads"] >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        await upstream.cleanup()
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
