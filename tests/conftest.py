"""Shared fixtures: a tiny processor plugin defined here, as a third party would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ahcore import Processor, ProcessorSpec, RequestContext, hookimpl


class EchoProcessor(Processor):
    """`.echo` files: the file's text with ``{name}`` filled from params_kw."""

    loads = 0

    async def load(self) -> None:
        type(self).loads += 1
        self.text = self.path.read_text()

    async def produce(self, context: RequestContext) -> Any:
        params = await context.params()
        return self.text.format_map({k: str(v) for k, v in params.items()} | {"url": context.url})


class EchoPlugin:
    @hookimpl
    def register_processor(self):
        return [
            ProcessorSpec("echo", (".echo",), EchoProcessor),
            ProcessorSpec("echojs", (".echo.js",), EchoProcessor),
        ]


@pytest.fixture
def echo_plugin() -> EchoPlugin:
    return EchoPlugin()


def require_services() -> bool:
    return os.environ.get("AHCORE_REQUIRE_SERVICES") == "1"


@pytest.fixture
def site_dir(make_site) -> Path:
    return make_site(
        config={
            "website": {
                "paths": [["$[workdir]$/wwwroot", ""], ["$[workdir]$/second", "/two"]],
                "processors": [[".echo", "echo"]],
            },
            "plugins": {"echo": True},
        },
        files={
            "wwwroot/hello.txt": "hello world\n",
            "wwwroot/page.echo": "hi {who}",
            "wwwroot/sub/index.echo": "index of sub",
            "wwwroot/.secret": "dotfile",
            "wwwroot/script.dspy": "return 1",
            "second/two.txt": "from second root",
            "conf/secret.txt": "do not serve",
        },
    )
