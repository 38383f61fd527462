"""Fixtures of the unit tests: requests made without a server, sites built without starting.

Each file here tests one kernel module (``tests/unit/test_<module>.py``,
``test_db_<module>.py`` for ``ahcore/db``) by calling its functions and
classes directly. A request is an aiohttp mocked request (no socket), a
site is built with :func:`ahcore.app.create_app` and never started, unless
the behaviour under test only exists in a running application.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp import streams, web
from aiohttp.test_utils import make_mocked_request

from ahcore.app import create_app


def _transport(remote: str | None) -> mock.Mock:
    transport = mock.Mock()
    extra = {"peername": (remote, 40000) if remote else None, "sockname": ("127.0.0.1", 8080)}
    transport.get_extra_info.side_effect = lambda name, default=None: extra.get(name, default)
    transport.is_closing.return_value = False
    return transport


RequestFactory = Callable[..., web.Request]


@pytest.fixture
def make_request() -> RequestFactory:
    """``make_request(method, path, headers, app=, remote=, body=, scheme=)``: a request, no server.

    ``body`` (bytes) is fed to the request's stream and ended, as if the
    client had sent all of it; it needs a running event loop (an async test).
    ``remote`` is the peer address; ``scheme="https"`` makes it a TLS request.
    """

    def make(
        method: str = "GET",
        path: str = "/",
        headers: Mapping[str, str] | None = None,
        *,
        app: web.Application | None = None,
        remote: str | None = "127.0.0.1",
        body: bytes | None = None,
        scheme: str | None = None,
        client_max_size: int = 1024**2,
    ) -> web.Request:
        kwargs: dict[str, Any] = {}
        hdrs = {"Host": "example.org", **(headers or {})}
        if body is not None:
            protocol = mock.Mock(_reading_paused=False)
            payload = streams.StreamReader(protocol, 2**16, loop=asyncio.get_running_loop())
            payload.feed_data(body)
            payload.feed_eof()
            kwargs["payload"] = payload
            hdrs.setdefault("Content-Length", str(len(body)))
        request = make_mocked_request(
            method,
            path,
            headers=hdrs,
            app=app,
            transport=_transport(remote),
            client_max_size=client_max_size,
            **kwargs,
        )
        if scheme is not None:
            request = request.clone(scheme=scheme)
        return request

    return make


AppFactory = Callable[..., web.Application]


@pytest.fixture
def make_app(make_site: Callable[..., Path]) -> AppFactory:
    """``make_app(config, files, plugins={name: obj})``: a built (not started) application."""

    def make(
        config: Mapping[str, Any] | None = None,
        files: Mapping[str, str | bytes] | None = None,
        plugins: Mapping[str, object] | None = None,
        **kwargs: Any,
    ) -> web.Application:
        site_dir = make_site(config=config, files=files)
        return create_app(site_dir, extra_plugins=dict(plugins or {}), **kwargs)

    return make
