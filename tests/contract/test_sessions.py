"""Store contract: the persistent conversations behind session_mode = main."""

from __future__ import annotations

import asyncio

from starpod_cron import CronStore, ManualClock


async def test_one_session_per_key_even_under_concurrency(store: CronStore) -> None:
    ids = await asyncio.gather(*[store.main_session_id("user:u1") for _ in range(20)])
    assert len(set(ids)) == 1
    assert await store.main_session_id("agent") != ids[0]
    assert await store.main_session_id("user:u1") == ids[0]


async def test_messages_are_kept_in_order_and_trimmed(store: CronStore, clock: ManualClock) -> None:
    session = await store.main_session_id("agent")
    await store.append_session_messages(session, [("user", "one"), ("assistant", "1")], run_id="r1")
    clock.advance(5)
    await store.append_session_messages(
        session, [("user", "two 'quoted' ✓"), ("assistant", "2")], run_id="r2", keep=3
    )
    messages = await store.session_messages(session, 10)
    assert [(m.role, m.content, m.run_id) for m in messages] == [
        ("assistant", "1", "r1"),
        ("user", "two 'quoted' ✓", "r2"),
        ("assistant", "2", "r2"),
    ]
    assert messages[-1].created_at == clock.now()
    assert [m.content for m in await store.session_messages(session, 2)] == ["two 'quoted' ✓", "2"]
    assert await store.session_messages("unknown", 5) == []
