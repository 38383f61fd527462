"""A pytest plugin for testing ahcore sites and plugins (loaded automatically).

Fixtures:

``ahcore_client``
    An async factory: ``client = await ahcore_client(workdir)`` starts the site
    in-process and returns an aiohttp ``TestClient``; extra keywords go to
    :func:`ahcore.app.create_app` (``extra_plugins=``, ``debug=``).

``ahcore_server``
    An async factory: ``server = await ahcore_server(workdir)`` starts the site
    on 127.0.0.1 and returns an :class:`ahcore.server.RunningSite`
    (``server.host``, ``server.port``, ``server.url``), closed after the
    test; for tests that talk raw sockets.

Both serve the site as ``ahcore serve`` does, through
:func:`ahcore.server.start_site` (slow-client deadlines included), not with
aiohttp's plain ``TestServer``.

``make_site``
    A factory writing a site folder: ``make_site(config={...}, files={"wwwroot/a.txt": "hi"})``
    returns its path (under ``tmp_path``); a config without ``website.paths``
    gets ``wwwroot`` as its root (see :func:`write_site`).

Needs ``pytest-aiohttp`` (``pip install ahcore[testing]``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer
from yarl import URL

if TYPE_CHECKING:
    from ahcore.server import RunningSite

try:  # pytest-aiohttp (ahcore[testing]) brings pytest-asyncio
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - plugin loaded without the testing extra
    _async_fixture = pytest.fixture  # type: ignore[assignment]


def write_site(
    root: Path,
    config: Mapping[str, Any] | None = None,
    files: Mapping[str, str | bytes] | None = None,
) -> Path:
    """Write ``conf/config.json`` and ``files`` (relative path → content) under ``root``.

    ``website.paths`` is required in a real config; when ``config`` leaves it
    out, the site's ``wwwroot`` (always created) is filled in, so a test
    writes only the keys it is about. Every content root the config lists
    inside the site folder is created too (a missing root stops start-up).
    To test a config without ``paths`` or with a missing root, write
    ``conf/config.json`` yourself.
    """
    root.mkdir(parents=True, exist_ok=True)
    cfg: Any = dict(config) if config is not None else {}
    website = cfg.get("website", {})
    if isinstance(website, Mapping) and "paths" not in website:
        cfg["website"] = website = {"paths": [["$[workdir]$/wwwroot", ""]], **website}
    if isinstance(website, Mapping) and isinstance(website.get("paths"), list):
        for entry in website["paths"]:
            if isinstance(entry, list) and entry and isinstance(entry[0], str):
                folder = (root / entry[0].replace("$[workdir]$", str(root))).resolve()
                if folder.is_relative_to(root.resolve()):
                    folder.mkdir(parents=True, exist_ok=True)
    (root / "conf").mkdir(exist_ok=True)
    (root / "conf" / "config.json").write_text(json.dumps(cfg, indent=2))
    (root / "wwwroot").mkdir(exist_ok=True)
    for rel, content in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


@pytest.fixture
def make_site(tmp_path: Path) -> Callable[..., Path]:
    """``make_site(config=..., files=...)``: write a site folder under ``tmp_path``; return its path."""
    counter = iter(range(1_000_000))

    def make(
        config: Mapping[str, Any] | None = None,
        files: Mapping[str, str | bytes] | None = None,
        name: str | None = None,
    ) -> Path:
        return write_site(tmp_path / (name or f"site{next(counter)}"), config, files)

    return make


class SiteTestServer(BaseTestServer):
    """aiohttp's test-server interface (for ``TestClient``), started by ``start_site``."""

    def __init__(self, app: web.Application, *, host: str = "127.0.0.1", **kwargs: Any) -> None:
        """Serve ``app`` on ``host`` (a free port) once :meth:`start_server` runs."""
        super().__init__(host=host, **kwargs)
        self.app = app
        self.running: RunningSite | None = None

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:  # pragma: no cover
        raise NotImplementedError("SiteTestServer starts through start_site")

    async def start_server(self, loop: Any = None, **kwargs: Any) -> None:
        """Start ``app`` through :func:`ahcore.server.start_site`, as ``ahcore serve`` does."""
        from ahcore.server import start_site

        if self.runner:
            return
        self.running = running = await start_site(
            self.app, self.host, self.port or 0, ssl_context=kwargs.get("ssl")
        )
        self.runner = running.runner
        self.host, self.port = running.host, running.port
        self.scheme = self.scheme or running.scheme
        self._root = URL.build(scheme=self.scheme, host=self.host, port=self.port)


@pytest.fixture
def ahcore_client(aiohttp_client: Any) -> Callable[..., Awaitable[Any]]:
    """The site in-process with an aiohttp test client (an async factory: await it with the site)."""
    from ahcore.app import create_app

    async def start(workdir: str | Path, **kwargs: Any) -> Any:
        return await aiohttp_client(SiteTestServer(create_app(workdir, **kwargs)))

    return start


@_async_fixture
async def ahcore_server() -> AsyncIterator[Callable[..., Awaitable[RunningSite]]]:
    """The site listening on 127.0.0.1 (an async factory: await it with the site)."""
    from ahcore.app import create_app
    from ahcore.server import start_site

    started: list[RunningSite] = []

    async def start(workdir: str | Path, **kwargs: Any) -> RunningSite:
        running = await start_site(create_app(workdir, **kwargs))
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await running.close()


def build_app(workdir: str | Path, **kwargs: Any) -> web.Application:
    """The application ``ahcore serve`` would build for ``workdir`` (``create_app``).

    For a plugin test that runs the server itself, with :func:`start_test_site`.
    """
    from ahcore.app import create_app

    return create_app(workdir, **kwargs)


async def start_test_site(app: web.Application, **kwargs: Any) -> RunningSite:
    """Serve ``app`` as ``ahcore serve`` does (``start_site``); the caller closes it.

    For a test that must control the server's life, such as its shutdown.
    """
    from ahcore.server import start_site

    return await start_site(app, **kwargs)
