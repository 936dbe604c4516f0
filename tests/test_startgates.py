"""Fire-time gates (starpod_cron/startgates.py) on a ManualClock: one gate and one timer per
instant whichever claims bring its runs; a burst has the collector's full pass taken before
its gate opens, a small group never, and never more than 1% of the time."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from starpod_cron import ManualClock
from starpod_cron.startgates import BIG_GROUP, COLLECT_LEAD_MS, StartGates
from starpod_cron.tasks import TaskSet
from tests.conftest import START


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Ticks:
    """A monotonic clock each reading of which is 50 ms after the last (a pass of 50 ms)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.05
        return self.now


@pytest.fixture
def full_passes() -> Iterator[list[int]]:
    """The generation-2 collections started while the test runs."""
    seen: list[int] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            seen.append(2)

    gc.callbacks.append(callback)
    yield seen
    gc.callbacks.remove(callback)


async def test_runs_claimed_for_one_instant_share_one_gate_opened_at_that_instant() -> None:
    clock = ManualClock(START)
    tasks = TaskSet("test")
    opened: list[int] = []
    gates = StartGates(clock, tasks, lambda: opened.append(clock.now_ms()))
    at = clock.now_ms() + 1000
    first = gates.gate(at)
    assert gates.gate(at) is first and len(tasks) == 1  # a second claim: same gate, one timer
    other = gates.gate(at + 1)
    assert other is not first and len(tasks) == 2
    clock.set(at - 1)
    await settle()
    assert not first.is_set() and opened == []
    clock.set(at)
    await settle()
    assert first.is_set() and not other.is_set() and opened == [at]
    late = gates.gate(at)  # claimed for it once open (an early wake-up): opens at once
    await settle()
    assert late is not first and late.is_set() and opened == [at, at]
    await tasks.stop(grace=1)


async def test_a_burst_has_the_full_pass_taken_before_its_gate_opens(
    full_passes: list[int],
) -> None:
    clock = ManualClock(START)
    tasks = TaskSet("test")
    gates = StartGates(clock, tasks, lambda: None, monotonic=Ticks())
    small, big = clock.now_ms() + 1000, clock.now_ms() + 2000
    for _ in range(BIG_GROUP - 1):
        gates.gate(small)
    for _ in range(BIG_GROUP):
        big_gate = gates.gate(big)
    await settle()  # the timers wait
    clock.set(small)
    await settle()
    assert gates.collections == 0  # 999 runs: left to the collector's own timing
    clock.set(big - COLLECT_LEAD_MS)
    passes = len(full_passes)
    await settle()
    assert gates.collections == 1 and len(full_passes) > passes and not big_gate.is_set()
    clock.set(big)
    await settle()
    assert big_gate.is_set() and gates.collections == 1
    await tasks.stop(grace=1)


async def test_passes_take_at_most_a_hundredth_of_the_time_and_none_while_disabled() -> None:
    clock = ManualClock(START)
    tasks = TaskSet("test")
    ticks = Ticks()
    gates = StartGates(clock, tasks, lambda: None, monotonic=ticks)
    instants = [clock.now_ms() + k * 1000 for k in (1, 2, 3, 4)]
    for at in instants:
        for _ in range(BIG_GROUP):
            gates.gate(at)
    await settle()
    clock.set(instants[0])
    await settle()
    assert gates.collections == 1  # a pass of 50 ms: none for the next 5 s
    clock.set(instants[1])
    await settle()
    assert gates.collections == 1
    ticks.now += 5
    gc.disable()
    try:
        clock.set(instants[2])
        await settle()
        assert gates.collections == 1  # the program turned the collector off: left off
    finally:
        gc.enable()
    clock.set(instants[3])
    await settle()
    assert gates.collections == 2
    await tasks.stop(grace=1)
