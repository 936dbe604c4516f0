"""Store contract: dashboard log-in sessions (random ids stored hashed, shared by every node)."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest

from starpod_cron import CronStore, InvalidInput, ManualClock, StoreSettings
from tests.backends import query
from tests.contract.conftest import Opener

ALICE = "a" * 64  # token fingerprints (SHA-256, hex)
BOB = "b" * 64
WEEK = 7 * 86_400


async def test_a_session_id_is_128_random_bits_and_only_its_hash_is_stored(
    store: CronStore, url: str, clock: ManualClock
) -> None:
    ids = [await store.create_login_session("alice", ALICE, WEEK) for _ in range(50)]
    assert len(set(ids)) == 50
    for session_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", session_id)  # 16 bytes, URL-safe base64
    rows = await query(url, "SELECT id_hash, user_id, token_fingerprint FROM login_sessions")
    assert len(rows) == 50
    stored = {str(r[0]) for r in rows}
    assert stored == {hashlib.sha256(i.encode()).hexdigest() for i in ids}
    dump = repr(rows)
    assert not any(i in dump for i in ids)  # the ids themselves are nowhere in the table

    found = await store.get_login_session(ids[0])
    assert found is not None
    assert (found.user_id, found.token_fingerprint) == ("alice", ALICE)
    assert found.created_at == found.last_used_at == clock.now()
    assert (found.expires_at - found.created_at).total_seconds() == WEEK
    for unknown in ("", "x", ids[0][:-1] + "?", "\ud800" * 22, stored.pop(), "A" * 22):
        assert await store.get_login_session(unknown) is None


async def test_another_store_object_sees_the_session_and_its_log_out(
    store: CronStore, open_store: Opener, settings: StoreSettings, clock: ManualClock
) -> None:
    other = await open_store(settings, clock)  # another node on the same database
    try:
        session_id = await store.create_login_session("alice", ALICE, WEEK)
        found = await other.get_login_session(session_id)
        assert found is not None and found.user_id == "alice"
        assert await other.delete_login_session(session_id) is True
        assert await store.get_login_session(session_id) is None
        assert await store.delete_login_session(session_id) is False
    finally:
        await other.close()


async def test_a_session_ends_at_its_expiry_however_often_it_is_used(
    store: CronStore, clock: ManualClock
) -> None:
    session_id = await store.create_login_session("alice", ALICE, 3600)
    clock.advance(30)
    found = await store.get_login_session(session_id)
    assert found is not None and found.last_used_at == found.created_at  # touched once a minute
    clock.advance(60)
    found = await store.get_login_session(session_id)
    assert found is not None and found.last_used_at == clock.now()
    clock.advance(3600 - 91)
    assert await store.get_login_session(session_id) is not None  # 1 s left
    clock.advance(1)
    assert await store.get_login_session(session_id) is None


async def test_expired_sessions_are_pruned_and_removed_tokens_end_theirs(
    store: CronStore, url: str, clock: ManualClock
) -> None:
    short = await store.create_login_session("alice", ALICE, 10)
    alice = await store.create_login_session("alice", ALICE, WEEK)
    bob = [await store.create_login_session("bob", BOB, WEEK) for _ in range(3)]
    clock.advance(11)
    assert await store.prune_login_sessions() == 1
    assert await store.get_login_session(short) is None
    assert await store.end_login_sessions([ALICE]) == 3  # Bob's token was removed
    assert all([await store.get_login_session(b) is None for b in bob])
    assert await store.get_login_session(alice) is not None
    assert await store.end_login_sessions([ALICE, BOB]) == 0
    assert await store.end_login_sessions([]) == 1  # no tokens at all: nobody stays logged in
    assert await query(url, "SELECT count(*) FROM login_sessions") == [(0,)]

    # a new session's transaction also deletes the expired ones
    await store.create_login_session("alice", ALICE, 5)
    clock.advance(6)
    await store.create_login_session("bob", BOB, WEEK)
    assert await query(url, "SELECT user_id FROM login_sessions") == [("bob",)]


async def test_bad_sessions_are_refused_and_nothing_is_written(store: CronStore, url: str) -> None:
    for user, fingerprint, ttl in [
        ("", ALICE, WEEK),
        ("  ", ALICE, WEEK),
        ("alice", "not-a-fingerprint", WEEK),
        ("alice", ALICE.upper(), WEEK),
        ("alice", ALICE, 0),
        ("alice", ALICE, 400 * 86_400),
    ]:
        with pytest.raises(InvalidInput):
            await store.create_login_session(user, fingerprint, ttl)
    assert await query(url, "SELECT count(*) FROM login_sessions") == [(0,)]


async def test_concurrent_logins_and_lookups(store: CronStore) -> None:
    ids = await asyncio.gather(*[store.create_login_session("u", ALICE, WEEK) for _ in range(20)])
    found = await asyncio.gather(*[store.get_login_session(i) for i in ids])
    assert all(f is not None and f.user_id == "u" for f in found)
