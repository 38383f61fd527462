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


class ParamsProcessor(Processor):
    """`.params` files: answer with params_kw and a few namespace facts as JSON."""

    async def produce(self, context: RequestContext) -> Any:
        ns = await context.namespace()
        return {
            "params": dict(ns["params_kw"]),
            "host": ns["gethost"](),
            "url": ns["entire_url"]("/x"),
            "json_is_module": ns["json"].__name__ == "json",
        }


class BoomProcessor(Processor):
    """`.boom` files: raise, to exercise the 500 path."""

    async def produce(self, context: RequestContext) -> Any:
        raise RuntimeError("secret-detail-in-exception")


class SlowProcessor(Processor):
    """`.slow` files: sleep for the number of seconds in the file."""

    async def produce(self, context: RequestContext) -> Any:
        import asyncio

        await asyncio.sleep(float(self.path.read_text()))
        return "slow done"


class EchoPlugin:
    @hookimpl
    def register_processor(self):
        return [
            ProcessorSpec("echo", (".echo",), EchoProcessor),
            ProcessorSpec("echojs", (".echo.js",), EchoProcessor),
            ProcessorSpec("params", (".params",), ParamsProcessor),
            ProcessorSpec("boom", (".boom",), BoomProcessor),
            ProcessorSpec("slow", (".slow",), SlowProcessor),
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
