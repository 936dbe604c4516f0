"""Notification policies and silent answers (starpod_cron/store/quiet.py) end to end, on every
backend: a real scheduler on a ManualClock, the store's delivery router (WebSocket events and
a Telegram chat as outbox rows) and a library notifier, run after run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from starpod_cron import (
    CronJob,
    CronRun,
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    JobSpec,
    ManualClock,
    NotifyPolicy,
    RunStatus,
    Schedule,
    StoreSettings,
)
from starpod_cron.routing import DeliveryRouter
from tests.conftest import START, until

CHAT = 7
"""The Telegram chat agent-level jobs notify (``notify_chat_ids``)."""


class Script:
    """An executor answering each job's runs from a function of (job name, run number):
    a string is the result, an exception is raised."""

    def __init__(self) -> None:
        self.answers: dict[str, Callable[[int], str | BaseException]] = {}
        self.calls: dict[str, int] = {}

    async def __call__(self, ctx: JobContext) -> JobResult:
        n = self.calls[ctx.job_name] = self.calls.get(ctx.job_name, 0) + 1
        answer = self.answers[ctx.job_name](n)
        if isinstance(answer, BaseException):
            raise answer
        return JobResult(f"s-{ctx.run_id}", answer)


class Heard:
    """A library notifier (``CronScheduler.with_notifier``): what it was told, per job."""

    def __init__(self) -> None:
        self.texts: dict[str, list[str]] = {}

    async def __call__(self, job_name: str, session_id: str, text: str, success: bool) -> None:
        self.texts.setdefault(job_name, []).append(text)


@pytest.fixture
async def store(url: str, clock: ManualClock) -> AsyncIterator[CronStore]:
    router = DeliveryRouter(notify_chat_ids=(CHAT,))
    s = await CronStore.open(url, clock=clock, settings=StoreSettings(), delivery_planner=router)
    yield s
    await s.close()


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
async def scheduler(store: CronStore, script: Script, heard: Heard) -> AsyncIterator[CronScheduler]:
    s = CronScheduler(store, script, tick_secs=30, shutdown_timeout_secs=0.2).with_notifier(heard)
    s.start()
    yield s
    await s.stop()


async def add(store: CronStore, name: str, notify: NotifyPolicy, **fields: Any) -> CronJob:
    schedule = fields.pop("schedule", Schedule.interval(every_ms=1000))
    spec = JobSpec(name, "watch", schedule, notify=notify, max_retries=0, **fields)
    (job_id,) = await store.add_jobs([spec])
    job = await store.get_job(job_id)
    assert job is not None
    return job


async def finished(store: CronStore, job: CronJob, count: int) -> list[CronRun]:
    """Wait until ``count`` runs of ``job`` ended; its ended runs, oldest first."""

    async def ended() -> list[CronRun]:
        runs = await store.list_runs(job.id, 100)
        return [r for r in reversed(runs) if r.status.is_final]

    for _ in range(2000):
        runs = await ended()
        if len(runs) >= count:
            return runs
        await asyncio.sleep(0.005)
    pytest.fail(f"{job.name}: {len(await ended())} of {count} runs ended")


async def run_fires(store: CronStore, clock: ManualClock, job: CronJob, count: int) -> None:
    """Move the clock one interval fire at a time until ``count`` runs of ``job`` ended."""
    already = len(await finished(store, job, 0))
    for i in range(1, count + 1):
        clock.advance(1)
        await finished(store, job, already + i)


class Sent:
    """What the store queued for ``job``'s runs, by destination and kind."""

    def __init__(self, rows: list[Any], job: CronJob) -> None:
        mine = [d for d in rows if d.job_id == job.id]
        self.notifications = [d.payload for d in mine if d.payload.get("type") == "notification"]
        self.reports = [d.payload for d in mine if d.payload.get("type") == "run.finished"]
        self.telegram = [d.payload["text"] for d in mine if d.destination == f"tg:{CHAT}"]


async def sent(store: CronStore, job: CronJob) -> Sent:
    return Sent(await store.list_deliveries(0, None, 10_000), job)


async def test_an_on_change_watcher_speaks_once_in_ten_runs_and_again_when_it_changes(
    store: CronStore,
    scheduler: CronScheduler,
    script: Script,
    heard: Heard,
    clock: ManualClock,
) -> None:
    # the same report every time, give or take whitespace; run 11 sees something new
    script.answers["watch"] = lambda n: (
        (" disk 41% ,  load low\n" if n % 2 else "disk 41% , load low")
        if n <= 10
        else "disk 97% , load high"
    )
    job = await add(store, "watch", NotifyPolicy.ON_CHANGE)
    await run_fires(store, clock, job, 10)
    out = await sent(store, job)
    assert len(out.notifications) == 1 and len(out.telegram) == 1
    assert out.telegram[0] == "[watch] done\n\n disk 41% ,  load low"
    assert len(out.reports) == 10  # every run is still a run.finished event
    runs = await finished(store, job, 10)
    assert [r.suppressed for r in runs] == [None] + ["unchanged (notify=on_change)"] * 9
    assert all(r.status is RunStatus.SUCCESS and not r.silent for r in runs)
    after_ten = await store.get_job(job.id)
    assert after_ten is not None and after_ten.suppressed_runs == 9
    await run_fires(store, clock, job, 1)
    out = await sent(store, job)
    assert [n["result_preview"] for n in out.notifications] == [
        " disk 41% ,  load low\n",
        "disk 97% , load high",
    ]
    assert out.telegram[-1] == "[watch] done\n\ndisk 97% , load high"
    await until(lambda: len(heard.texts.get("watch", [])) == 2, what="the notifier, twice")
    assert heard.texts["watch"][1] == "disk 97% , load high"


async def test_a_failure_under_on_change_is_delivered_and_does_not_reset_the_comparison(
    store: CronStore, scheduler: CronScheduler, script: Script, clock: ManualClock
) -> None:
    answers: list[str | BaseException] = ["same", RuntimeError("feed down"), "same", "new"]
    script.answers["feed"] = lambda n: answers[n - 1]
    job = await add(store, "feed", NotifyPolicy.ON_CHANGE)
    await run_fires(store, clock, job, 4)
    out = await sent(store, job)
    assert out.telegram == [
        "[feed] done\n\nsame",
        "[feed] failed\n\nRuntimeError: feed down",
        "[feed] done\n\nnew",  # "same" after the failure: unchanged since it was last told
    ]


async def test_a_silent_answer_is_delivered_nowhere_and_counted(
    store: CronStore,
    scheduler: CronScheduler,
    script: Script,
    heard: Heard,
    clock: ManualClock,
) -> None:
    # the heartbeat has nothing to say except on its 3rd run
    script.answers["beat"] = lambda n: "  [SILENT]\n" if n != 3 else "the backup is 2 days old"
    job = await add(store, "beat", NotifyPolicy.ALWAYS)
    await run_fires(store, clock, job, 5)
    runs = await finished(store, job, 5)
    assert [r.silent for r in runs] == [True, True, False, True, True]
    assert {r.suppressed for r in runs if r.silent} == {"silent answer"}
    assert all(r.status is RunStatus.SUCCESS for r in runs)
    out = await sent(store, job)
    assert [n["result_preview"] for n in out.notifications] == ["the backup is 2 days old"]
    assert out.telegram == ["[beat] done\n\nthe backup is 2 days old"]
    silent_reports = [r for r in out.reports if r["silent"]]
    assert len(silent_reports) == 4
    assert all(r["suppressed"] and r["reason"] == "silent answer" for r in silent_reports)
    await until(lambda: heard.texts.get("beat") == ["the backup is 2 days old"])
    await asyncio.sleep(0.05)  # notifier calls run as tasks: none more comes
    assert heard.texts["beat"] == ["the backup is 2 days old"]
    counted = await store.get_job(job.id)
    assert counted is not None
    assert (counted.silent_runs, counted.suppressed_runs) == (4, 0)


async def test_a_one_shot_is_delivered_even_when_it_answers_the_silent_token(
    store: CronStore,
    scheduler: CronScheduler,
    script: Script,
    heard: Heard,
    clock: ManualClock,
) -> None:
    script.answers["remind"] = lambda n: "[SILENT]"
    at = Schedule.one_shot(START + timedelta(seconds=1))
    job = await add(store, "remind", NotifyPolicy.ALWAYS, schedule=at)
    clock.advance(1)
    (run,) = await finished(store, job, 1)
    assert (run.silent, run.suppressed) == (False, None)
    out = await sent(store, job)
    assert out.telegram == ["[remind] done\n\n[SILENT]"]
    assert len(out.notifications) == 1
    await until(lambda: heard.texts.get("remind") == ["[SILENT]"], what="the notifier")


async def test_on_failure_delivers_failures_and_the_recovery_only(
    store: CronStore,
    scheduler: CronScheduler,
    script: Script,
    heard: Heard,
    clock: ManualClock,
) -> None:
    outcomes: list[str | BaseException] = [
        "fine",
        RuntimeError("db unreachable"),
        RuntimeError("db unreachable"),
        "fine again",
        "fine",
    ]
    script.answers["db"] = lambda n: outcomes[n - 1]
    job = await add(store, "db", NotifyPolicy.ON_FAILURE)
    await run_fires(store, clock, job, 5)
    runs = await finished(store, job, 5)
    succeeded = "notify=on_failure: succeeded"
    assert [r.suppressed for r in runs] == [succeeded, None, None, None, succeeded]
    out = await sent(store, job)
    assert out.telegram == [
        "[db] failed\n\nRuntimeError: db unreachable",
        "[db] failed\n\nRuntimeError: db unreachable",
        "[db] recovered\n\nfine again",
    ]
    assert [(n["success"], n["recovered"]) for n in out.notifications] == [
        (False, False),
        (False, False),
        (True, True),
    ]
    assert [r["recovered"] for r in out.reports] == [False, False, False, True, False]
    await until(lambda: len(heard.texts.get("db", [])) == 3, what="three notifier calls")
    assert heard.texts["db"][2] == "fine again"
    counted = await store.get_job(job.id)
    assert counted is not None and counted.suppressed_runs == 2


async def test_never_keeps_history_only(
    store: CronStore, scheduler: CronScheduler, script: Script, clock: ManualClock
) -> None:
    script.answers["log"] = lambda n: RuntimeError("boom") if n == 2 else f"entry {n}"
    job = await add(store, "log", NotifyPolicy.NEVER)
    await run_fires(store, clock, job, 3)
    runs = await finished(store, job, 3)
    assert [r.status for r in runs] == [RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.SUCCESS]
    assert {r.suppressed for r in runs} == {"notify=never"}
    out = await sent(store, job)
    assert (out.notifications, out.telegram, len(out.reports)) == ([], [], 3)
    counted = await store.get_job(job.id)
    assert counted is not None and counted.suppressed_runs == 3


async def test_two_stores_on_one_database_compare_with_the_same_hash(
    url: str, clock: ManualClock
) -> None:
    """Runs of one on_change job finished by two processes in turn (two store objects on the
    same database): each compares with the hash the other stored, in its own transaction."""
    router = DeliveryRouter()
    async with (
        CronStore.open(url, clock=clock, delivery_planner=router) as a,
        CronStore.open(url, clock=clock, delivery_planner=router) as b,
    ):
        spec = JobSpec("w", "p", Schedule.interval(every_ms=60_000), notify=NotifyPolicy.ON_CHANGE)
        (job_id,) = await a.add_jobs([spec])
        for i, text in enumerate(["same", "same ", "same", "new", "new", "same"]):
            node = (a, b)[i % 2]
            run_id = await node.record_run_start(job_id)
            await node.record_run_complete(run_id, RunStatus.SUCCESS, text)
        rows = await b.list_deliveries(0, None)
        told = [d.payload["result_preview"] for d in rows if d.payload["type"] == "notification"]
        assert told == ["same", "new", "same"]
        job = await a.get_job(job_id)
        assert job is not None and job.suppressed_runs == 3
