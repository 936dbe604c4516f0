"""TaskSet on a real event loop: a restartable task that raises is logged with its traceback and
restarted with a doubling backoff (reset after a healthy run); a critical task that fails or is
cancelled from outside stops the service; stop() ends everything and restarts nothing."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from starpod_cron.tasks import Backoff, TaskSet
from tests.conftest import until


async def test_a_task_that_raises_is_restarted_with_a_doubling_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "starpod_cron.tasks")
    starts: list[float] = []

    async def flaky() -> None:
        starts.append(time.monotonic())
        raise ConnectionResetError("boom")

    tasks = TaskSet("t")
    tasks.keep(flaky, "flaky", backoff=Backoff(first=0.1, most=0.4, healthy=10))
    try:
        await until(lambda: len(starts) >= 6, timeout=10)
    finally:
        await tasks.stop()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # 0.1, 0.2, 0.4, then capped at 0.4
    for gap, expected in zip(gaps, [0.1, 0.2, 0.4, 0.4, 0.4], strict=True):
        assert expected <= gap < expected + 0.15, gaps
    assert tasks.restarts["flaky"] == 5
    failures = [r for r in caplog.records if "t:flaky failed; restarting it in" in r.message]
    assert len(failures) >= 5
    assert failures[0].exc_info is not None  # with its traceback
    assert "ConnectionResetError: boom" in caplog.text


async def test_the_backoff_is_reset_after_a_healthy_run() -> None:
    starts: list[float] = []

    async def sometimes_healthy() -> None:
        starts.append(time.monotonic())
        if len(starts) == 3:
            await asyncio.sleep(0.4)  # longer than `healthy`: the next wait is `first` again
        raise RuntimeError("again")

    tasks = TaskSet("t")
    tasks.keep(sometimes_healthy, "job", backoff=Backoff(first=0.1, most=1, healthy=0.3))
    try:
        await until(lambda: len(starts) >= 5, timeout=10)
    finally:
        await tasks.stop()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert 0.1 <= gaps[0] < 0.2 and 0.2 <= gaps[1] < 0.35, gaps  # 0.1, then 0.2
    assert 0.5 <= gaps[2] < 0.75, gaps  # the healthy run (0.4) + 0.1: reset, not + 0.4
    assert 0.2 <= gaps[3] < 0.35, gaps


async def test_a_task_that_returns_is_restarted_and_stop_restarts_nothing() -> None:
    runs = 0

    async def returns() -> None:
        nonlocal runs
        runs += 1

    tasks = TaskSet("t")
    kept = tasks.keep(returns, "r", backoff=Backoff(first=0.02, most=0.02))
    await until(lambda: runs >= 3, timeout=10)
    await tasks.stop()
    assert kept.done() and len(tasks) == 0
    after = runs
    await asyncio.sleep(0.1)
    assert runs == after


@pytest.mark.parametrize("how", ["raises", "returns", "cancelled"])
async def test_a_critical_task_that_stops_calls_on_failure(how: str) -> None:
    failed: list[str] = []
    tasks = TaskSet("t", on_failure=lambda task: failed.append(task.get_name()))

    async def server() -> None:
        await asyncio.sleep(0.05)
        if how == "raises":
            raise OSError("socket gone")

    task = tasks.spawn(server() if how != "cancelled" else asyncio.sleep(10), "srv", critical=True)
    if how == "cancelled":
        await asyncio.sleep(0.01)
        task.cancel()  # by someone other than stop(), as an inner server task dying does
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert failed == ["t:srv"]
    await tasks.stop()


async def test_stop_is_not_a_failure_of_a_critical_task() -> None:
    failed: list[str] = []
    tasks = TaskSet("t", on_failure=lambda task: failed.append(task.get_name()))
    tasks.spawn(asyncio.sleep(10), "srv", critical=True)
    await asyncio.sleep(0.01)
    await tasks.stop()
    assert failed == []


async def test_a_handed_over_task_gives_its_outcome_to_its_owner_not_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "starpod_cron.tasks")
    ended: list[asyncio.Task[int]] = []

    async def fails() -> int:
        raise ValueError("the owner reads this")

    async def works() -> int:
        return 7

    tasks = TaskSet("runs")
    for name, coro in (("a", fails()), ("b", works())):
        task = tasks.spawn(coro, name, on_done=ended.append)
        assert task.get_name() == f"runs:{name}"
    await until(lambda: len(ended) == 2)
    assert len(tasks) == 0  # done tasks are not held
    by_name = {t.get_name(): t for t in ended}
    assert isinstance(by_name["runs:a"].exception(), ValueError)
    assert by_name["runs:b"].result() == 7
    assert not [r for r in caplog.records if "failed" in r.message]
    with pytest.raises(ValueError, match="critical"):
        tasks.spawn(works(), "c", critical=True, on_done=ended.append)
    await tasks.stop()


async def test_stop_called_from_a_task_of_the_set_ends_the_others_not_itself() -> None:
    tasks = TaskSet("t")
    other = tasks.spawn(asyncio.Event().wait(), "other")

    async def stopper() -> str:
        await tasks.stop(grace=1)
        return "finished its own work"

    me = tasks.spawn(stopper(), "stopper")
    assert await me == "finished its own work"
    assert other.cancelled()


async def test_close_refuses_new_tasks_and_leaves_the_running_ones_alone() -> None:
    tasks = TaskSet("t")
    release = asyncio.Event()
    stubborn = tasks.spawn(release.wait(), "stubborn")
    assert tasks.close() == 1
    await asyncio.sleep(0.01)
    assert not stubborn.done() and len(tasks) == 1  # still held, so never garbage-collected
    with pytest.raises(RuntimeError, match="after stop"):
        tasks.spawn(release.wait(), "late")
    release.set()
    await stubborn
    assert len(tasks) == 0
