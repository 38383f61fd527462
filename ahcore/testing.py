"""A pytest plugin for testing ahcore sites and plugins (loaded automatically).

Fixtures:

``ahcore_client``
    An async factory: ``client = await ahcore_client(workdir)`` starts the site
    in-process and returns an aiohttp ``TestClient``; extra keywords go to
    :func:`ahcore.app.create_app` (``extra_plugins=``, ``debug=``).

``make_site``
    A factory writing a site folder: ``make_site(config={...}, files={"wwwroot/a.txt": "hi"})``
    returns its path (under ``tmp_path``).

Needs ``pytest-aiohttp`` (``pip install ahcore[testing]``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest


def write_site(
    root: Path,
    config: Mapping[str, Any] | None = None,
    files: Mapping[str, str | bytes] | None = None,
) -> Path:
    """Write ``conf/config.json`` and ``files`` (relative path → content) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = {"website": {"paths": [["$[workdir]$/wwwroot", ""]]}} if config is None else config
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
    counter = iter(range(1_000_000))

    def make(
        config: Mapping[str, Any] | None = None,
        files: Mapping[str, str | bytes] | None = None,
        name: str | None = None,
    ) -> Path:
        return write_site(tmp_path / (name or f"site{next(counter)}"), config, files)

    return make


@pytest.fixture
def ahcore_client(aiohttp_client: Any) -> Callable[..., Awaitable[Any]]:
    from ahcore.app import create_app

    async def start(workdir: str | Path, **kwargs: Any) -> Any:
        app = create_app(workdir, **kwargs)
        return await aiohttp_client(app)

    return start
