"""A reload swaps the site's snapshot in one step; requests in flight keep theirs."""

from __future__ import annotations

import asyncio
import json

import pytest

from ahcore.appkeys import get_site
from ahcore.config import load_config

pytest.importorskip("ahcore_dspy", reason="needs the dspy plugin (not in the kernel-only session)")

SLOW = """
before = configValue('.v')
await async_sleep(0.4)
return {'before': before, 'after': configValue('.v')}
"""


async def test_a_request_in_flight_keeps_the_config_it_started_with(make_site, ahcore_client):
    site_dir = make_site(
        config={"plugins": {"dspy": True}, "v": 1},
        files={"wwwroot/slow.dspy": SLOW, "wwwroot/now.dspy": "return {'v': configValue('.v')}"},
    )
    client = await ahcore_client(site_dir)
    site = get_site(client.app)
    in_flight = asyncio.ensure_future(client.get("/slow.dspy"))
    await asyncio.sleep(0.15)  # the script has read v and sleeps
    cfg_path = site_dir / "conf" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["v"] = 2
    cfg_path.write_text(json.dumps(cfg))
    old = site.snapshot
    site.apply_config(load_config(site_dir))
    assert site.snapshot is not old and site.snapshot.config.raw["v"] == 2
    assert await (await client.get("/now.dspy")).json() == {"v": 2}
    assert await (await in_flight).json() == {"before": 1, "after": 1}


async def test_a_refused_config_leaves_the_snapshot_untouched(make_site, ahcore_client):
    site_dir = make_site(config={"v": 1})
    client = await ahcore_client(site_dir)
    site = get_site(client.app)
    old = site.snapshot
    cfg_path = site_dir / "conf" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["website"]["paths"] = [["$[workdir]$/no-such-root", ""]]
    cfg_path.write_text(json.dumps(cfg))
    try:
        site.apply_config(load_config(site_dir))
    except Exception as exc:  # ConfigError: the root does not exist
        assert "no-such-root" in str(exc)
    assert site.snapshot is old
