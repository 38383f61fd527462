"""200 logged-in visitors at once, each with its own cookie jar: no cross-talk."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from advkit import GUARD_FILES, GuardPlugin, guard_config

USERS = 200


@pytest.fixture
async def server(make_site, serve):
    site = make_site(config=guard_config(), files=GUARD_FILES)
    return await serve(site, extra_plugins={"guard": GuardPlugin()})


async def test_concurrent_users_see_only_their_own_user_and_params(server):
    base = f"http://127.0.0.1:{server.port}"
    connector = aiohttp.TCPConnector(limit=0)
    sessions = [
        aiohttp.ClientSession(
            base,
            connector=connector,
            connector_owner=False,
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )
        for _ in range(USERS)
    ]
    try:

        async def login(i: int) -> None:
            async with sessions[i].post("/login.call", data={"user": f"user{i}"}) as r:
                assert r.status == 200

        await asyncio.gather(*(login(i) for i in range(USERS)))

        async def check(i: int, round_: int) -> tuple[int, str | None, dict]:
            http = sessions[i]
            if (i + round_) % 2:
                req = http.get("/whoami.call", params={"n": str(i), "r": str(round_)})
            else:
                req = http.post("/whoami.call", json={"n": str(i), "r": str(round_)})
            async with req as r:
                assert r.status == 200
                data = await r.json()
            return i, data["user"], data["params"]

        for round_ in range(3):
            results = await asyncio.gather(*(check(i, round_) for i in range(USERS)))
            for i, user, params in results:
                assert user == f"user{i}", (i, user)
                assert params == {"n": str(i), "r": str(round_)}, (i, params)

        # Members-only content for everyone logged in, private only for nobody here.
        async def fetch(i: int, path: str) -> int:
            async with sessions[i].get(path) as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*(fetch(i, "/private/secret.txt") for i in range(USERS)))
        assert set(statuses) == {403}
        statuses = await asyncio.gather(*(fetch(i, "/members/m.txt") for i in range(USERS)))
        assert set(statuses) == {200}
    finally:
        for s in sessions:
            await s.close()
        await connector.close()


async def test_concurrent_anonymous_and_logged_in_do_not_mix(server):
    base = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as boss:
        async with boss.post("/login.call", data={"user": "boss"}) as r:
            assert r.status == 200
        async with aiohttp.ClientSession(base, cookie_jar=aiohttp.DummyCookieJar()) as anon:

            async def as_boss() -> int:
                async with boss.get("/private/secret.txt") as r:
                    return r.status

            async def as_anon() -> int:
                async with anon.get("/private/secret.txt") as r:
                    return r.status

            results = await asyncio.gather(*[f() for _ in range(100) for f in (as_boss, as_anon)])
    assert results[0::2] == [200] * 100
    assert results[1::2] == [401] * 100
