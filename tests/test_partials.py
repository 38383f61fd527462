"""Partials: a processor's file named ``_…`` is no page, but other files still use it."""

from __future__ import annotations

from typing import Any

from ahcore import Processor, ProcessorSpec, RequestContext, hookimpl
from ahcore.api import path_call


class CallProcessor(Processor):
    """`.call` files: the value of the file their text names, by ``path_call``."""

    async def produce(self, context: RequestContext) -> Any:
        return await path_call(context, self.path.read_text().strip(), {"who": "caller"})


class CallPlugin:
    @hookimpl
    def register_processor(self):
        return ProcessorSpec("call", (".call",), CallProcessor)


async def start(make_site, ahcore_client, echo_plugin):
    site = make_site(
        config={
            "website": {"processors": [[".echo", "echo"], [".call", "call"]]},
            "plugins": {"echo": True, "call": True},
        },
        files={
            "wwwroot/_part.echo": "part for {who}",
            "wwwroot/page.echo": "page",
            "wwwroot/sub/_deep.echo": "deep",
            "wwwroot/_folder/in.echo": "a page in a _folder",
            "wwwroot/_static/_helpers.js": "static",
            "wwwroot/uses_part.call": "/_part.echo",
            "wwwroot/sub/uses_deep.call": "_deep.echo",
        },
    )
    return await ahcore_client(site, extra_plugins={"echo": echo_plugin, "call": CallPlugin()})


async def test_a_partial_is_not_a_page(make_site, ahcore_client, echo_plugin) -> None:
    client = await start(make_site, ahcore_client, echo_plugin)
    for url in ("/_part.echo", "/sub/_deep.echo", "/%5Fpart.echo", "/./_part.echo"):
        resp = await client.get(url)
        assert resp.status == 404, url
        assert "part for" not in await resp.text()
    assert (await client.head("/_part.echo")).status == 404
    assert (await client.post("/_part.echo")).status == 404
    assert await (await client.get("/page.echo")).text() == "page"


async def test_other_files_still_use_partials(make_site, ahcore_client, echo_plugin) -> None:
    client = await start(make_site, ahcore_client, echo_plugin)
    assert await (await client.get("/uses_part.call")).text() == "part for caller"
    assert await (await client.get("/sub/uses_deep.call")).text() == "deep"


async def test_only_processor_files_by_their_own_name(make_site, ahcore_client, echo_plugin) -> None:
    client = await start(make_site, ahcore_client, echo_plugin)
    # Static files keep their names (documentation generators publish _static/_x.js)...
    assert await (await client.get("/_static/_helpers.js")).text() == "static"
    # ...and a folder's name does not make its files partials.
    assert await (await client.get("/_folder/in.echo")).text() == "a page in a _folder"
