"""Group commit (starpod_cron/completions.py): items submitted during a write go in the next
transaction together; a failed write is retried, and given up only on close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from starpod_cron.completions import GiveUp, GroupCommit


async def test_group_commit_batches_items_submitted_during_a_write() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def write(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            await gate.wait()
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(write, what="numbers")
    first = asyncio.create_task(group.write(1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.write(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 10 and [await t for t in rest] == [20, 30, 40]
    assert batches == [[1], [2, 3, 4]]  # three items, one transaction
    assert await group.close()


async def test_group_commit_retries_failed_writes_and_gives_up_only_on_close() -> None:
    attempts = 0

    async def flaky(items: Sequence[int]) -> list[int]:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise OSError("database or disk is full")
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(flaky, what="numbers", retry_delays=(0.01,))
    assert await group.write(7) == 7 and attempts == 3  # retried, not lost

    async def broken(items: Sequence[int]) -> list[int]:
        raise OSError("still full")

    stuck: GroupCommit[int, int] = GroupCommit(broken, what="numbers", retry_delays=(0.01,))
    pending = asyncio.create_task(stuck.write(8))
    await asyncio.sleep(0.05)
    assert not pending.done()  # waiting, not failed
    assert await stuck.close(within=0.1) is False
    with pytest.raises(GiveUp, match="still full"):
        await pending
