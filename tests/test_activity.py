"""starpod_cron.activity: runs, statistics, deliveries and events as someone may see them, over
every backend (a real store, a real scheduler recording manual runs)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from starpod_cron import CronStore, DeliveryStatus, JobSpec, RunStatus, Schedule
from starpod_cron.access import LOCAL_ADMIN, Principal
from starpod_cron.activity import Activity
from starpod_cron.bootstrap import open_store
from starpod_cron.clock import ManualClock
from starpod_cron.config import AgentConfig
from starpod_cron.destinations import DestinationConfig, Destinations
from starpod_cron.models import JobContext, JobResult
from starpod_cron.operations import JobOperations
from starpod_cron.scheduler import CronScheduler

ALICE, BOB = Principal("alice"), Principal("bob")


FAILING: set[str] = set()
"""Ids of the jobs whose runs fail now."""


async def _run(ctx: JobContext) -> JobResult:
    if ctx.job_id in FAILING:
        raise RuntimeError("it failed on purpose")
    return JobResult(session_id="s", summary=ctx.prompt)


async def test_users_see_only_the_runs_and_stats_of_their_own_jobs(
    store: CronStore, clock: ManualClock
) -> None:
    scheduler = CronScheduler(store, _run)
    every = Schedule.interval(3_600_000)
    ids = await store.add_jobs(
        [
            JobSpec("a-ok", "ok", every, user_id="alice"),
            JobSpec("a-bad", "fail", every, user_id="alice", max_retries=0),
            JobSpec("b-ok", "bob's secret", every, user_id="bob"),
        ]
    )
    FAILING.add(ids[1])
    for job_id in [ids[0], ids[1], ids[0], ids[0], ids[1], ids[2]]:
        clock.advance(1)
        await scheduler.run_now(job_id)
        if job_id == ids[1]:
            FAILING.clear()  # a-bad fails once, then its later run succeeds
    activity = Activity(JobOperations(store, scheduler.run_now))

    runs, jobs = await activity.recent_runs(ALICE, 10)
    assert {r.job_id for r in runs} == {ids[0], ids[1]} and len(runs) == 5
    assert [r.started_at for r in runs] == sorted((r.started_at for r in runs), reverse=True)
    assert set(jobs) == {ids[0], ids[1]}
    # the status filter applies before the limit: alice's one failed run is found with limit 1
    # although every job of hers has a newer success
    failed, _ = await activity.recent_runs(ALICE, 1, RunStatus.FAILED)
    assert [(r.job_id, r.status) for r in failed] == [(ids[1], RunStatus.FAILED)]
    assert [r.job_id for r in (await activity.recent_runs(BOB, 10))[0]] == [ids[2]]
    assert len((await activity.recent_runs(LOCAL_ADMIN, 10))[0]) == 6
    assert len((await activity.recent_runs(Principal(None), 10))[0]) == 0  # nobody's

    stats = await activity.job_stats(ALICE)
    assert set(stats) == {ids[0], ids[1]}
    assert (stats[ids[0]].runs, stats[ids[1]].runs, stats[ids[1]].errors) == (3, 2, 1)
    assert set(await activity.job_stats(BOB)) == {ids[2]}


async def test_users_see_and_retry_only_their_own_jobs_deliveries(
    url: str, clock: ManualClock
) -> None:
    """A dead delivery of alice's job: she and an admin see and retry it; bob neither sees
    it nor can retry it (the same answer as for a delivery that does not exist)."""
    hooks = {"ops": DestinationConfig("webhook", url="https://a.example", secret_env="S")}
    cfg = replace(AgentConfig(), destinations=Destinations(hooks))
    async with open_store(cfg, url, clock=clock) as store:
        activity = Activity(JobOperations(store))
        found, counts = await activity.deliveries(LOCAL_ADMIN, DeliveryStatus.DEAD, 10)
        assert (found, counts) == ([], {})
        assert await activity.retry_delivery(LOCAL_ADMIN, 1) is False  # no such delivery
        for owner in ("alice", "bob"):
            spec = JobSpec(owner, "hi", Schedule.interval(3_600_000), user_id=owner)
            (job_id,) = await store.add_jobs([replace(spec, deliver_to=("ops",))])
            await CronScheduler(store, _run).run_now(job_id)
        for claimed in await store.claim_deliveries("w", 10, 30, ["dest:ops"]):
            await store.finish_delivery(claimed.id, "w", delivered=False, error="400 rejected")
        everything, _ = await activity.deliveries(LOCAL_ADMIN, DeliveryStatus.DEAD, 10)
        assert sorted(d.job_name for d in everything) == ["alice", "bob"]
        (mine,), counts = await activity.deliveries(ALICE, DeliveryStatus.DEAD, 10)
        assert mine.job_name == "alice" and counts == {DeliveryStatus.DEAD: 1}
        theirs = next(d for d in everything if d.job_name == "bob")
        assert await activity.retry_delivery(ALICE, theirs.id) is False
        assert (await store.get_delivery(theirs.id)).status is DeliveryStatus.DEAD  # type: ignore[union-attr]
        assert await activity.retry_delivery(ALICE, mine.id) is True
        assert await activity.retry_delivery(ALICE, mine.id) is False  # no longer dead
        assert await activity.retry_delivery(LOCAL_ADMIN, theirs.id) is True


async def test_events_are_those_the_principal_may_see(url: str, clock: ManualClock) -> None:
    """A manual run's WebSocket events (run.started, its notification: the gateway's routing,
    as bootstrap opens the store) go to its owner's audience: alice replays hers, bob
    nothing, an admin all."""
    async with open_store(AgentConfig(), url, clock=clock) as store:
        scheduler = CronScheduler(store, _run)
        spec = JobSpec("a", "hi", Schedule.interval(3_600_000), user_id="alice")
        (job_id,) = await store.add_jobs([spec])
        await scheduler.run_now(job_id)
        await _replays(Activity(JobOperations(store)))


async def _replays(activity: Activity) -> None:
    mine = await activity.events(ALICE, 0, 100, share_agent_events=False)
    assert mine and {d.destination for d in mine} == {"ws:user:alice"}
    assert await activity.events(BOB, 0, 100, share_agent_events=False) == []
    assert len(await activity.events(LOCAL_ADMIN, 0, 100, share_agent_events=False)) == len(mine)
    assert await activity.events(ALICE, mine[-1].id, 100, share_agent_events=False) == []


async def test_store_health_lists_refusing_destinations_or_says_unavailable(
    store: CronStore,
) -> None:
    from starpod_cron import StarpodCronError

    activity = Activity(JobOperations(store))
    assert await activity.store_health(5) == []
    await store.close()
    with pytest.raises(StarpodCronError):  # closed (StoreUnavailable when unreachable)
        await activity.store_health(5)
