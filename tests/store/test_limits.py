"""Jobs that pause, start, end and stop by themselves (store/limits.py), with a real scheduler
over every backend and a ManualClock: pause_after_failures, start_at/end_at across a DST
change, max_runs (also claimed ahead and with overlap allow) and stale_after after an outage.
The store has the gateway's delivery router, so the messages a user would get are the
deliveries these tests count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from starpod_cron import (
    Completion,
    CronScheduler,
    CronStore,
    InvalidSchedule,
    JobSpec,
    JobUpdate,
    ManualClock,
    MisfirePolicy,
    Overlap,
    RunStatus,
    Schedule,
    StoreSettings,
)
from starpod_cron.models import CronJob, CronRun
from starpod_cron.routing import DeliveryRouter
from starpod_cron.store.limits import words_ms
from starpod_cron.views import job_fires
from tests.conftest import START, eventually, until
from tests.test_scheduler import Recorder

CHAT = -1007
AUDIENCE = ("ws:agent", f"tg:{CHAT}")


@pytest.fixture
async def routed(url: str, clock: ManualClock) -> AsyncIterator[CronStore]:
    """A store whose runs are routed as the gateway routes them: WebSocket admins and a
    Telegram chat (``notify_chat_ids``) for agent-level jobs."""
    store = await CronStore.open(
        url,
        clock=clock,
        settings=StoreSettings(retry_backoff_secs=(5,)),
        delivery_planner=DeliveryRouter(notify_chat_ids=(CHAT,), finished_events=False),
    )
    yield store
    await store.close()


def scheduler_for(store: CronStore, recorder: Recorder, **kwargs: Any) -> CronScheduler:
    options: dict[str, Any] = dict(tick_secs=30, shutdown_timeout_secs=0.2, cancel_grace_secs=0.5)
    return CronScheduler(store, recorder, **(options | kwargs))


async def final_runs(store: CronStore, job_id: str, count: int) -> list[CronRun]:
    """The job's finished runs, oldest first, once there are ``count``."""

    async def enough() -> list[CronRun]:
        runs = [r for r in await store.list_runs(job_id, 100) if r.status.is_final]
        return runs[::-1] if len(runs) >= count else []

    return await eventually(enough, what=f"{count} finished runs")


async def step(
    clock: ManualClock, scheduler: CronScheduler, seconds: float, store: CronStore, job_id: str
) -> list[CronRun]:
    """Move time on by ``seconds`` and wait for what the scheduler does with it: a pass, and
    every run due by now finished (a run claimed ahead of its time waits for it). The job's
    finished runs, oldest first."""
    clock.advance(seconds)
    await scheduler.checkpoint()

    async def settled() -> bool:
        runs = await store.list_runs(job_id, 100)
        return all(r.status.is_final or r.started_at > clock.now() for r in runs)

    await eventually(settled, what="the runs due to finish")
    return [r for r in await store.list_runs(job_id, 100) if r.status.is_final][::-1]


async def notices(store: CronStore) -> dict[str, list[str]]:
    """The notices sent, by destination (the WebSocket event's ``notice``, the Telegram text)."""
    sent: dict[str, list[str]] = {}
    for d in await store.list_deliveries(0, None):
        payload = d.payload
        text = payload.get("notice") if "type" in payload else payload.get("text", "")
        if payload.get("notice") or " notice\n" in str(payload.get("text", "")):
            sent.setdefault(d.destination, []).append(str(text))
    return sent


async def job(store: CronStore, job_id: str) -> CronJob:
    found = await store.get_job(job_id)
    assert found is not None
    return found


async def test_three_failures_in_a_row_pause_the_job_with_one_message_and_resume_resets(
    routed: CronStore, clock: ManualClock
) -> None:
    recorder = Recorder()
    recorder.fail = lambda ctx: RuntimeError("the model is down")
    spec = JobSpec(
        name="watch",
        prompt="p",
        schedule=Schedule.interval(every_ms=10_000),
        max_retries=1,
        pause_after_failures=3,
    )
    (job_id,) = await routed.add_jobs([spec])
    scheduler = scheduler_for(routed, recorder)
    scheduler.start()
    try:
        clock.advance(5)
        for count in range(1, 7):  # fires every 10 s, each retried once 5 s later
            clock.advance(5)
            runs = await final_runs(routed, job_id, count)
        for _ in range(4):
            runs = await step(clock, scheduler, 5, routed, job_id)
        paused = await job(routed, job_id)
        assert not paused.enabled and paused.next_run_at is None
        assert paused.paused_reason == "paused after 3 failed runs in a row"
        assert paused.consecutive_failures == 3
        assert len(recorder.calls) == 6  # 3 occurrences x 2 attempts, then nothing more
        assert [r.attempt for r in runs] == [1, 2, 1, 2, 1, 2]  # a retried failure counts once
        told = await notices(routed)
        assert sorted(told) == sorted(AUDIENCE)
        assert all(len(texts) == 1 for texts in told.values())  # once per destination
        (ws,) = told["ws:agent"]
        assert ws.startswith("'watch' paused after 3 failed runs in a row; last error: ")
        assert "the model is down" in ws and ws.endswith("`starpod-cron jobs enable watch`")
        assert [r.notice is not None for r in runs] == [False] * 5 + [True]

        resumed = await routed.enable_job(job_id)
        assert resumed.enabled and resumed.paused_reason is None
        assert resumed.consecutive_failures == 0
        recorder.fail = lambda ctx: None
        clock.advance(10)
        await final_runs(routed, job_id, 7)
        assert (await job(routed, job_id)).consecutive_failures == 0
        assert sum(len(t) for t in (await notices(routed)).values()) == 2  # no new notice
    finally:
        await scheduler.stop()


async def test_a_success_resets_the_failures_in_a_row(
    routed: CronStore, clock: ManualClock
) -> None:
    recorder = Recorder()
    outcomes = iter([True, True, False, True, True, False, True])  # True: fails
    recorder.fail = lambda ctx: RuntimeError("down") if next(outcomes) else None
    spec = JobSpec(
        name="flaky",
        prompt="p",
        schedule=Schedule.interval(every_ms=10_000),
        max_retries=0,
        pause_after_failures=3,
    )
    (job_id,) = await routed.add_jobs([spec])
    scheduler = scheduler_for(routed, recorder)
    scheduler.start()
    try:
        for count in range(1, 8):
            clock.advance(10)
            await final_runs(routed, job_id, count)
        flaky = await job(routed, job_id)
        assert flaky.enabled and flaky.consecutive_failures == 1
        assert await notices(routed) == {}
    finally:
        await scheduler.stop()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"claim_ahead_secs": 5, "lease_secs": 30},
    ],
    ids=["claimed-on-time", "claimed-ahead"],
)
async def test_max_runs_two_runs_twice(
    routed: CronStore, clock: ManualClock, options: dict[str, Any]
) -> None:
    recorder = Recorder()
    spec = JobSpec(name="twice", prompt="p", schedule=Schedule.interval(every_ms=10_000))
    (job_id,) = await routed.add_jobs([spec])
    await routed.update_job(job_id, JobUpdate(max_runs=2))
    scheduler = scheduler_for(routed, recorder, **options)
    scheduler.start()
    try:
        for _ in range(12):
            runs = await step(clock, scheduler, 5, routed, job_id)
        assert len(recorder.calls) == 2
        assert len(await routed.list_runs(job_id, 100)) == 2  # history: exactly max_runs
        assert [r.status for r in runs] == [RunStatus.SUCCESS] * 2
        done = await job(routed, job_id)
        assert not done.enabled and done.paused_reason == "max_runs reached (2 runs)"
        assert done.finished_runs == 2 and job_fires(done, 5) == []
        told = await notices(routed)
        assert sorted(told) == sorted(AUDIENCE) and len(told["ws:agent"]) == 1
        assert "has made its 2 runs (max_runs)" in told["ws:agent"][0]
    finally:
        await scheduler.stop()


async def test_max_runs_holds_with_overlap_allow(routed: CronStore, clock: ManualClock) -> None:
    """Fires that come while runs are in flight start no occurrence past max_runs, even with
    overlap allow and room for more at once."""
    recorder = Recorder()
    recorder.block = True
    spec = JobSpec(
        name="parallel",
        prompt="p",
        schedule=Schedule.interval(every_ms=10_000),
        overlap=Overlap.ALLOW,
        max_instances=5,
        max_runs=2,
    )
    (job_id,) = await routed.add_jobs([spec])
    scheduler = scheduler_for(routed, recorder, claim_ahead_secs=5)
    scheduler.start()
    try:
        for _ in range(12):
            clock.advance(5)
            await scheduler.checkpoint()
        await until(lambda: recorder.running == 2, what="two runs at once")
        await scheduler.checkpoint()
        assert len(recorder.calls) == 2  # the third and later fires were passed over
        held = await job(routed, job_id)
        assert held.enabled and held.running_count == 2
        assert job_fires(held, 5) == []  # nothing left to run: both are in flight
        recorder.release.set()
        await final_runs(routed, job_id, 2)
        for _ in range(3):
            await step(clock, scheduler, 10, routed, job_id)
        assert len(recorder.calls) == 2 and len(await routed.list_runs(job_id, 100)) == 2
        done = await job(routed, job_id)
        assert not done.enabled and done.finished_runs == 2
    finally:
        await scheduler.stop()


ROME = "Europe/Rome"  # summer time starts on Sunday 2027-03-28, 02:00 -> 03:00


async def test_start_at_and_end_at_bound_the_fires_across_a_dst_change(
    routed: CronStore, clock: ManualClock
) -> None:
    recorder = Recorder()
    spec = JobSpec(
        name="brief",
        prompt="p",
        schedule=Schedule.cron("0 9 * * *"),
        timezone=ROME,
        start_at=datetime.fromisoformat("2027-03-26T09:00:00+01:00"),
        end_at=datetime.fromisoformat("2027-03-29T09:00:00+02:00"),
    )
    (job_id,) = await routed.add_jobs([spec])
    expected = [
        datetime(2027, 3, 26, 8, 0, tzinfo=UTC),  # 09:00 +01:00
        datetime(2027, 3, 27, 8, 0, tzinfo=UTC),
        datetime(2027, 3, 28, 7, 0, tzinfo=UTC),  # 09:00 +02:00, the day the clocks went on
        datetime(2027, 3, 29, 7, 0, tzinfo=UTC),  # the end itself is still a fire
    ]
    assert job_fires(await job(routed, job_id), 10) == expected  # `jobs show`: no more
    scheduler = scheduler_for(routed, recorder)
    scheduler.start()
    try:
        for day in range(7):
            clock.set(datetime(2027, 3, 25, 7, 0, tzinfo=UTC) + timedelta(days=day))
            await scheduler.checkpoint()
            clock.advance(3600)
            await step(clock, scheduler, 0, routed, job_id)
        runs = await final_runs(routed, job_id, 4)
        assert [r.scheduled_for for r in runs] == expected
        assert [c.scheduled_for for c in recorder.calls] == expected
        ended = await job(routed, job_id)
        assert not ended.enabled and ended.paused_reason == "ended"
        told = await notices(routed)
        assert len(told["ws:agent"]) == 1 and "'brief' has ended" in told["ws:agent"][0]
    finally:
        await scheduler.stop()


async def test_start_at_keeps_an_interval_on_its_grid(routed: CronStore) -> None:
    spec = JobSpec(
        name="grid",
        prompt="p",
        schedule=Schedule.interval(every_ms=3_600_000),  # anchored at creation, 12:00
        start_at=START + timedelta(hours=3, minutes=30),
    )
    (job_id,) = await routed.add_jobs([spec])
    fires = job_fires(await job(routed, job_id), 2)
    assert fires == [START + timedelta(hours=4), START + timedelta(hours=5)]


async def test_a_three_hour_outage_gives_one_stale_skip_and_one_message(
    routed: CronStore, clock: ManualClock
) -> None:
    recorder = Recorder()
    spec = JobSpec(
        name="morning brief",
        prompt="p",
        schedule=Schedule.cron("0 9 * * *"),
        timezone=ROME,  # 09:00 is 08:00 UTC
        stale_after_secs=3600,
        misfire_policy=MisfirePolicy.RUN_ONCE,
    )
    clock.set(datetime(2026, 11, 22, 7, 0, tzinfo=UTC))
    (job_id,) = await routed.add_jobs([spec])
    clock.set(datetime(2026, 11, 22, 10, 0, tzinfo=UTC))  # down from 07:00 to 10:00 UTC
    scheduler = scheduler_for(routed, recorder)
    scheduler.start()
    try:
        (skipped,) = await final_runs(routed, job_id, 1)
        await scheduler.checkpoint()
        assert recorder.calls == []
        assert skipped.status is RunStatus.SKIPPED
        assert skipped.error == "2 h late, stale after 1 h" and skipped.suppressed == "stale"
        told = await notices(routed)
        assert sorted(told) == sorted(AUDIENCE)
        assert told["ws:agent"] == [
            "your 09:00 'morning brief' was skipped: 2 h late, stale after 1 h"
        ]
        assert len(told[f"tg:{CHAT}"]) == 1

        # the next day's outage: skipped again, but no second message in the same stretch
        await scheduler.stop()
        clock.set(datetime(2026, 11, 23, 9, 30, tzinfo=UTC))
        scheduler = scheduler_for(routed, recorder)
        scheduler.start()
        runs = await final_runs(routed, job_id, 2)
        assert [r.status for r in runs] == [RunStatus.SKIPPED] * 2
        assert runs[1].error == "1 h 30 min late, stale after 1 h" and runs[1].notice is None
        assert sum(len(t) for t in (await notices(routed)).values()) == 2
        # on time the day after: it runs, and the stretch is over
        clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
        runs = await final_runs(routed, job_id, 3)
        assert runs[2].status is RunStatus.SUCCESS and len(recorder.calls) == 1
        assert (await job(routed, job_id)).enabled
    finally:
        await scheduler.stop()


async def claim_and_finish(store: CronStore, status: RunStatus = RunStatus.SUCCESS) -> list[str]:
    """Claim what is due now and finish it with ``status``, as a scheduler would; the runs."""
    claims = await store.claim_due("test", 100, 60)
    done = [Completion(c.run_id, status, "ok", error="boom") for c in claims]
    assert await store.complete_runs(done, owner="test") == [True] * len(done)
    return [c.run_id for c in claims]


async def test_an_outage_past_end_at_runs_only_a_fire_within_it_then_ends(
    routed: CronStore, clock: ManualClock
) -> None:
    spec = JobSpec(
        name="hourly",
        prompt="p",
        schedule=Schedule.cron("0 * * * *"),
        end_at=START + timedelta(hours=3),
    )
    (job_id,) = await routed.add_jobs([spec])
    clock.set(START + timedelta(hours=6, minutes=10))  # down from 12:00 to 18:10
    (run_id,) = await claim_and_finish(routed)
    run = await routed.get_run(run_id)
    assert run is not None and run.scheduled_for == START + timedelta(hours=3)  # not 18:00
    ended = await job(routed, job_id)
    assert not ended.enabled and ended.paused_reason == "ended" and run.notice is not None
    assert await claim_and_finish(routed) == []


async def test_enabling_a_job_that_made_its_runs_or_ended_keeps_it_disabled_with_why(
    routed: CronStore, clock: ManualClock
) -> None:
    once = JobSpec(name="once", prompt="p", schedule=Schedule.interval(every_ms=60_000), max_runs=1)
    short = JobSpec(
        name="short",
        prompt="p",
        schedule=Schedule.interval(every_ms=60_000),
        end_at=START + timedelta(minutes=1, seconds=30),
    )
    once_id, short_id = await routed.add_jobs([once, short])
    clock.advance(60)
    assert len(await claim_and_finish(routed)) == 2
    for job_id, why in ((once_id, "max_runs reached (1 runs)"), (short_id, "ended")):
        again = await routed.enable_job(job_id)
        assert not again.enabled and again.paused_reason == why and again.next_run_at is None
    more = await routed.update_job(once_id, JobUpdate(max_runs=2, enabled=True))
    assert more.enabled and more.paused_reason is None and more.next_run_at is not None
    later = START + timedelta(hours=1)
    longer = await routed.update_job(short_id, JobUpdate(end_at=later, enabled=True))
    assert longer.enabled and job_fires(longer, 100)[-1] == later
    with pytest.raises(InvalidSchedule, match="must be after start_at"):
        await routed.update_job(short_id, JobUpdate(start_at=later + timedelta(seconds=1)))


async def test_a_stale_one_shot_is_skipped_and_disabled(
    routed: CronStore, clock: ManualClock
) -> None:
    at = START + timedelta(minutes=5)
    spec = JobSpec(name="remind", prompt="p", schedule=Schedule.one_shot(at), stale_after_secs=60)
    (job_id,) = await routed.add_jobs([spec])
    clock.set(at + timedelta(minutes=3))
    assert await claim_and_finish(routed) == []
    (run,) = await routed.list_runs(job_id, 10)
    assert run.status is RunStatus.SKIPPED and run.error == "3 min late, stale after 1 min"
    gone = await job(routed, job_id)
    assert not gone.enabled and gone.next_run_at is None
    assert "one-shot skipped" in (gone.last_error or "")


@pytest.mark.parametrize(
    ("ms", "words"),
    [
        (0, "0 s"),
        (999, "0 s"),
        (45_000, "45 s"),
        (3_600_000, "1 h"),
        (9_600_000, "2 h 40 min"),
        (3_605_000, "1 h"),  # the two largest units next to each other
        (90_061_000, "1 d 1 h"),
    ],
)
def test_durations_in_words(ms: int, words: str) -> None:
    assert words_ms(ms) == words


async def test_the_tools_take_times_as_people_write_them_in_the_jobs_zone(
    routed: CronStore,
) -> None:
    from starpod_cron.tools import call_tool, openai_tools

    args = {
        "name": "brief",
        "prompt": "p",
        "cron": "0 9 * * *",
        "timezone": ROME,
        "start_at": "2026-12-01 09:00",
        "end_at": "2026-12-03 09:00",
    }
    answer = await call_tool(routed, "cron_add", args, user="alice")
    assert answer["job"]["start_at"] == "2026-12-01T08:00:00+00:00"  # 09:00 in Rome
    assert answer["job"]["max_runs"] is None and answer["job"]["paused_reason"] is None
    (add,) = [t for t in openai_tools() if t["function"]["name"] == "cron_add"]
    described = add["function"]["parameters"]["properties"]["end_at"]["description"]
    assert "'tomorrow 9:00', read in the job's timezone" in described


async def test_a_backed_up_queue_skips_its_stale_fires_with_one_message(
    routed: CronStore, clock: ManualClock
) -> None:
    recorder = Recorder()
    recorder.block = True
    spec = JobSpec(
        name="queued",
        prompt="p",
        schedule=Schedule.interval(every_ms=10_000),
        overlap=Overlap.QUEUE,
        stale_after_secs=15,
    )
    (job_id,) = await routed.add_jobs([spec])
    scheduler = scheduler_for(routed, recorder)
    scheduler.start()
    try:
        clock.advance(10)
        await until(lambda: recorder.running == 1, what="the first run")
        clock.advance(50)  # fires at +20 .. +60 wait behind it
        await scheduler.checkpoint()
        recorder.release.set()
        runs = await final_runs(routed, job_id, 6)
        by_fire = {int((r.scheduled_for - START).total_seconds()): r for r in runs}
        assert sorted(by_fire) == [10, 20, 30, 40, 50, 60]
        assert [by_fire[t].status for t in (20, 30, 40)] == [RunStatus.SKIPPED] * 3
        assert by_fire[20].error == "40 s late, stale after 15 s"
        assert [by_fire[t].status for t in (10, 50, 60)] == [RunStatus.SUCCESS] * 3
        assert [r.notice is not None for r in runs].count(True) == 1
        assert len((await notices(routed))["ws:agent"]) == 1
    finally:
        await scheduler.stop()
