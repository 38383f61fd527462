"""ahcore.revocations: ended session ids stay ended, across workers, failing closed."""

from __future__ import annotations

import logging
import os
import stat
import time

import pytest

from ahcore.revocations import FILENAME, RedisRevocations, SqliteRevocations, sqlite_path


@pytest.fixture
def path(tmp_path):
    return tmp_path / "conf" / FILENAME


async def test_nothing_is_revoked_before_the_first_logout_and_no_file_is_made(path) -> None:
    store = SqliteRevocations(path)
    assert await store.is_revoked("sid-1") is False
    assert not path.exists()  # a lookup writes nothing
    await store.close()


async def test_a_revoked_id_stays_revoked_until_its_ticket_would_expire(path) -> None:
    store = SqliteRevocations(path)
    await store.revoke("sid-1", time.time() + 3600)
    assert await store.is_revoked("sid-1") is True
    assert await store.is_revoked("sid-2") is False
    await store.revoke("old", time.time() - 1)  # already expired: no longer refused
    assert await store.is_revoked("old") is False
    await store.close()


async def test_the_file_is_private(path) -> None:
    store = SqliteRevocations(path)
    await store.revoke("sid", time.time() + 60)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    await store.close()


async def test_another_workers_revocation_is_seen_although_the_id_was_known_live(path) -> None:
    worker_a, worker_b = SqliteRevocations(path), SqliteRevocations(path)
    await worker_b.revoke("other", time.time() + 60)  # the file exists
    assert await worker_a.is_revoked("sid") is False  # remembered as live
    assert await worker_a.is_revoked("sid") is False
    await worker_b.revoke("sid", time.time() + 60)
    assert await worker_a.is_revoked("sid") is True  # the change counter moved
    for store in (worker_a, worker_b):
        await store.close()


async def test_expired_records_are_deleted_by_the_next_write(path) -> None:
    import sqlite3

    store = SqliteRevocations(path)
    await store.revoke("gone", time.time() - 10)
    await store.revoke("kept", time.time() + 60)
    with sqlite3.connect(path) as con:
        assert [r[0] for r in con.execute("select sid from revoked")] == ["kept"]
    await store.close()


async def test_an_unreadable_store_refuses_every_ticket(path, caplog) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a sqlite database" * 10)
    store = SqliteRevocations(path)
    with caplog.at_level(logging.ERROR, logger="ahcore.session"):
        assert await store.is_revoked("sid") is True  # fail closed
    assert "unreadable" in caplog.text
    await store.close()


async def test_a_store_created_but_not_yet_written_is_empty(path) -> None:
    path.parent.mkdir(parents=True)
    path.touch()
    store = SqliteRevocations(path)
    assert await store.is_revoked("sid") is False
    await store.close()


def test_sqlite_path_prefers_the_sites_conf(tmp_path, monkeypatch) -> None:
    (tmp_path / "conf").mkdir()
    assert sqlite_path(tmp_path) == tmp_path / "conf" / FILENAME
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    elsewhere = sqlite_path(tmp_path)
    assert elsewhere.parent.name == "revocations" and elsewhere.suffix == ".sqlite3"
    assert sqlite_path(tmp_path) == elsewhere  # stable for one site


class FakeRedis:
    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, int]] = {}

    async def set(self, key, value, ex):
        self.data[key] = (value, ex)

    async def exists(self, key):
        return int(key in self.data)


async def test_redis_keys_carry_the_remaining_lifetime() -> None:
    redis = FakeRedis()
    store = RedisRevocations(redis, "ahcore:revoked:")
    await store.revoke("sid", time.time() + 100)
    value, ttl = redis.data["ahcore:revoked:sid"]
    assert 99 <= ttl <= 101
    await store.revoke("past", time.time() - 100)
    assert redis.data["ahcore:revoked:past"][1] == 1  # never a zero or negative expiry
    assert await store.is_revoked("sid") is True
    assert await store.is_revoked("never") is False
    await store.close()
