"""Memory between runs (``context = "last"``) with a real scheduler and a ManualClock on every
backend: each run is given the job's previous successful result and its time; a silent answer
keeps the last real result; the command executor's watcher sees it in its environment."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    JobSpec,
    JobUpdate,
    ManualClock,
    RunStatus,
    Schedule,
)
from starpod_cron.executors import CommandExecutor
from starpod_cron.executors.memory import ENV_LIMIT_BYTES, env_text
from starpod_cron.models import ContextMode
from tests.conftest import START, until

WATCHER = textwrap.dedent("""
    import os, pathlib, sys
    seen = pathlib.Path(sys.argv[1]).read_text().strip()
    previous = os.environ.get("STARPOD_PREVIOUS_RESULT")
    whole = os.environ.get("STARPOD_PREVIOUS_RESULT_FILE")
    log = pathlib.Path(sys.argv[2])
    with log.open("a") as out:
        mode = oct(os.stat(whole).st_mode & 0o777) if whole else "-"
        folder = oct(os.stat(os.path.dirname(whole)).st_mode & 0o777) if whole else "-"
        text = pathlib.Path(whole).read_text() if whole else "-"
        at = os.environ.get("STARPOD_PREVIOUS_AT", "-")
        out.write(f"{previous!r}|{whole or '-'}|{mode}|{folder}|{text!r}|{at}\\n")
    last = (previous or "").strip().removeprefix("changed: ")
    print(f"changed: {seen}" if seen != last else "[SILENT]")
""")


async def add_watcher(store: CronStore, name: str = "watch") -> str:
    spec = JobSpec(
        name=name,
        prompt="look",
        schedule=Schedule.interval(every_ms=60_000),
        context=ContextMode.LAST,
        max_retries=0,
    )
    (job_id,) = await store.add_jobs([spec])
    return job_id


async def finished(store: CronStore, job_id: str, count: int) -> list[str]:
    """The results of the job's first ``count`` finished runs, oldest first."""
    runs: list[str] = []

    async def check() -> bool:
        nonlocal runs
        done = [r for r in await store.list_runs(job_id, 100) if r.status.is_final]
        runs = [r.result_summary or "" for r in reversed(done)]
        return len(done) >= count

    for _ in range(2000):
        if await check():
            return runs
        await asyncio.sleep(0.005)
    pytest.fail(f"{count} runs did not finish: {runs}")


@pytest.fixture
async def watcher(store: CronStore, tmp_path: Path) -> AsyncIterator[CommandExecutor]:
    script = tmp_path / "watch.py"
    script.write_text(WATCHER)
    argv = [sys.executable, str(script), str(tmp_path / "input"), str(tmp_path / "log")]
    executor = CommandExecutor(store, argv, cgroup=False)
    yield executor
    await executor.aclose()


async def test_a_watcher_speaks_only_when_its_input_changes(
    store: CronStore, watcher: CommandExecutor, clock: ManualClock, tmp_path: Path
) -> None:
    job_id = await add_watcher(store)
    scheduler = CronScheduler(store, watcher, tick_secs=30)
    scheduler.start()
    feed = tmp_path / "input"
    try:
        results: list[str] = []
        for minute, seen in enumerate(["A", "A", "A", "B", "B", "A"], start=1):
            feed.write_text(seen)
            clock.set(START + timedelta(minutes=minute))
            results = await finished(store, job_id, minute)
        assert [r.strip() for r in results] == [
            "changed: A",
            "[SILENT]",
            "[SILENT]",  # compared with "changed: A", not with the silent answer before
            "changed: B",
            "[SILENT]",
            "changed: A",
        ]
    finally:
        await scheduler.stop()
    lines = (tmp_path / "log").read_text().splitlines()
    first, second, third = (line.split("|") for line in lines[:3])
    assert first == ["None", "-", "-", "-", "'-'", "-"]  # nothing before the first run
    assert second[0] == repr("changed: A\n") and second[4] == repr("changed: A\n")
    assert (second[2], second[3]) == ("0o600", "0o700")  # private to the run
    assert second[5] == (START + timedelta(minutes=1)).isoformat()  # when run 1 ended
    assert third[0] == repr("changed: A\n") and third[5] == second[5]  # silent: kept
    assert not os.path.exists(second[1])  # removed after the run
    fourth = lines[3].split("|")
    assert fourth[0] == repr("changed: A\n")
    assert lines[4].split("|")[0] == repr("changed: B\n")


async def test_the_environment_holds_32_kib_and_the_file_the_whole_result(
    store: CronStore, clock: ManualClock, tmp_path: Path
) -> None:
    big = "é" * 20_000 + "end"  # 40,003 bytes in UTF-8: cut on a character boundary
    calls: list[JobContext] = []

    async def produce(ctx: JobContext) -> JobResult:
        calls.append(ctx)
        return JobResult("s", big)

    job_id = await add_watcher(store, "big")
    scheduler = CronScheduler(store, produce, tick_secs=30)
    scheduler.start()
    try:
        clock.set(START + timedelta(minutes=1))
        await finished(store, job_id, 1)
    finally:
        await scheduler.stop()
    script = tmp_path / "sizes.py"
    script.write_text(
        "import os\n"
        "env = os.environ['STARPOD_PREVIOUS_RESULT']\n"
        "whole = open(os.environ['STARPOD_PREVIOUS_RESULT_FILE'], encoding='utf-8').read()\n"
        "print(len(env.encode()), len(env), len(whole), whole[-3:])\n"
    )
    command = CommandExecutor(store, [sys.executable, str(script)], cgroup=False)
    runner = CronScheduler(store, command)
    try:
        run = await runner.run_now(job_id)  # a manual run is given the memory too
    finally:
        await runner.stop()
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result_summary is not None
    env_bytes, env_chars, whole_chars, tail = run.result_summary.split()
    assert int(env_bytes) == ENV_LIMIT_BYTES and int(env_chars) == ENV_LIMIT_BYTES // 2
    assert (int(whole_chars), tail) == (len(big), "end")
    assert env_text("ab", 1) == "a" and env_text("éa", 1) == ""


async def test_python_executors_get_the_previous_result_and_none_without_context(
    store: CronStore, clock: ManualClock
) -> None:
    calls: list[JobContext] = []

    async def remember(ctx: JobContext) -> JobResult:
        calls.append(ctx)
        if ctx.job_name == "forgetful" or ctx.scheduled_for.minute != 2:
            return JobResult("s", f"result of {ctx.job_name} at {ctx.scheduled_for:%H:%M}")
        raise RuntimeError("a failure is not remembered")

    keeper = await add_watcher(store, "keeper")
    (forgetful,) = await store.add_jobs(
        [JobSpec(name="forgetful", prompt="p", schedule=Schedule.interval(every_ms=60_000))]
    )
    scheduler = CronScheduler(store, remember, tick_secs=30)
    scheduler.start()
    try:
        for minute in (1, 2, 3):
            clock.set(START + timedelta(minutes=minute))
            await finished(store, keeper, minute)
            await finished(store, forgetful, minute)
    finally:
        await scheduler.stop()
    await until(lambda: len(calls) == 6)
    kept = [c for c in calls if c.job_name == "keeper"]
    assert kept[0].previous_result is None and kept[0].previous_at is None
    first_result = "result of keeper at 12:01"
    assert [c.previous_result for c in kept[1:]] == [first_result, first_result]
    assert all(c.previous_result is None for c in calls if c.job_name == "forgetful")
    assert forgetful != keeper

    await store.update_job(keeper, JobUpdate(context=ContextMode.NONE))  # memory switched off
    runner = CronScheduler(store, remember)
    try:
        await runner.run_now(keeper)
        assert calls[-1].previous_result is None and calls[-1].previous_at is None
        await store.update_job(keeper, JobUpdate(context=ContextMode.LAST))  # and on again
        await runner.run_now(keeper)
    finally:
        await runner.stop()
    assert calls[-1].previous_result == "result of keeper at 12:03"
    assert calls[-1].previous_at == START + timedelta(minutes=3)
