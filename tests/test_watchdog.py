"""The watchdog (starpod_cron/watchdog.py) on a ManualClock: deadlines fire in order, discarded
items never."""

from __future__ import annotations

import asyncio

from starpod_cron import ManualClock
from starpod_cron.watchdog import Watchdog
from tests.conftest import START

S = 1000


async def test_watchdog_fires_in_deadline_order_and_never_for_discarded_items() -> None:
    clock = ManualClock(START)
    fired: list[str] = []
    watchdog: Watchdog[str] = Watchdog(clock, fired.append)
    for name, secs in (("c", 30), ("a", 10), ("b", 20), ("gone", 15)):
        watchdog.watch(name, clock.now_ms() + secs * S)
    watchdog.discard("gone")
    assert len(watchdog) == 3
    clock.advance(25)
    for _ in range(5):
        await asyncio.sleep(0)
    assert fired == ["a", "b"]
    clock.advance(10)
    for _ in range(5):
        await asyncio.sleep(0)
    assert fired == ["a", "b", "c"] and len(watchdog) == 0
    await watchdog.close()
