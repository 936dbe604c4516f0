"""Store contract: the delivery outbox written with run completions, and user preferences."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import timedelta

import pytest

from starpod_cron import (
    CronJob,
    CronRun,
    CronStore,
    DeliverySpec,
    DeliveryStatus,
    InvalidTimezone,
    ManualClock,
    RunStatus,
    Schedule,
)
from starpod_cron.owner import new_owner
from tests.contract.conftest import Reopen


def planner(job: CronJob, run: CronRun) -> Sequence[DeliverySpec]:
    payload = {"job": job.name, "status": run.status.value, "text": run.result_summary}
    chat = (job.origin or {}).get("chat_id")
    return [DeliverySpec("ws:agent", payload)] + (
        [DeliverySpec(f"tg:{chat}", payload)] if chat else []
    )


async def finish_one(store: CronStore, clock: ManualClock, status: RunStatus) -> str:
    clock.advance(60)
    (claim,) = await store.claim_due("me", 10, 30)
    await store.record_run_complete(claim.run_id, status, "result text", error=None)
    return claim.run_id


async def test_deliveries_are_written_with_the_completion(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    store = await reopen(delivery_planner=planner)
    await store.add_job_full(
        "j", "p", Schedule.interval(every_ms=60_000), origin={"chat_id": 42, "thread_id": 7}
    )
    job = await store.get_job_by_name("j")
    assert job is not None and job.origin == {"chat_id": 42, "thread_id": 7}
    run_id = await finish_one(store, clock, RunStatus.SUCCESS)
    events = await store.list_deliveries(0, ["ws:agent", "tg:42"])
    assert [(d.destination, d.run_id, d.status) for d in events] == [
        ("ws:agent", run_id, DeliveryStatus.PENDING),
        ("tg:42", run_id, DeliveryStatus.PENDING),
    ]
    assert events[0].payload == {"job": "j", "status": "success", "text": "result text"}
    assert await store.list_deliveries(events[0].id, ["ws:agent"]) == []
    assert [d.destination for d in await store.list_deliveries(0, ["tg:42"])] == ["tg:42"]


async def test_no_planner_no_deliveries_and_interruptions_are_not_announced(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    await finish_one(store, clock, RunStatus.SUCCESS)
    store = await reopen(delivery_planner=planner)
    await finish_one(store, clock, RunStatus.INTERRUPTED)
    assert await store.list_deliveries(0, ["ws:agent"]) == []
    clock.advance(30)
    (claim,) = await store.claim_due("me", 10, 30)  # the interrupted run's retry
    await store.record_run_complete(claim.run_id, RunStatus.FAILED, error="boom")
    (event,) = await store.list_deliveries(0, ["ws:agent"])
    assert event.payload["status"] == "failed"


async def test_a_broken_planner_never_loses_the_run(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    def broken(job: CronJob, run: CronRun) -> Sequence[DeliverySpec]:
        raise RuntimeError("planner bug")

    store = await reopen(delivery_planner=broken)
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    await finish_one(store, clock, RunStatus.SUCCESS)
    assert [r.status for r in await store.list_runs(job_id)] == [RunStatus.SUCCESS]


async def test_claim_and_finish_deliveries(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    store = await reopen(delivery_planner=planner)
    await store.add_job_full("j", "p", Schedule.interval(every_ms=60_000), origin={"chat_id": 1})
    await finish_one(store, clock, RunStatus.SUCCESS)
    claimed = await store.claim_deliveries("w1", 10, 30)
    assert [d.destination for d in claimed] == ["ws:agent", "tg:1"]
    assert all(d.attempts == 1 and d.status is DeliveryStatus.SENDING for d in claimed)
    assert await store.claim_deliveries("w2", 10, 30) == []  # leased
    ws, tg = claimed
    assert await store.finish_delivery(ws.id, "w1", delivered=True)
    assert not await store.finish_delivery(ws.id, "w1", delivered=True)  # only once
    retry = clock.now() + timedelta(seconds=5)
    assert await store.finish_delivery(tg.id, "w1", delivered=False, error="429", retry_at=retry)
    assert await store.next_delivery_at() == retry
    assert await store.claim_deliveries("w1", 10, 30) == []
    clock.advance(5)
    (again,) = await store.claim_deliveries("w1", 10, 30)
    assert again.id == tg.id and again.attempts == 2 and again.last_error == "429"
    assert await store.finish_delivery(tg.id, "w1", delivered=False, error="chat not found")
    (dead,) = await store.list_deliveries(ws.id, ["tg:1"])
    assert dead.status is DeliveryStatus.DEAD and dead.last_error == "chat not found"
    assert await store.next_delivery_at() is None


async def test_an_expired_delivery_lease_is_claimed_again(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    store = await reopen(delivery_planner=planner)
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    await finish_one(store, clock, RunStatus.SUCCESS)
    (first,) = await store.claim_deliveries("dead-gateway", 10, 30)
    clock.advance(31)
    (second,) = await store.claim_deliveries("new-gateway", 10, 30)
    assert second.id == first.id and second.attempts == 2
    assert not await store.finish_delivery(first.id, "dead-gateway", delivered=True)
    assert await store.finish_delivery(first.id, "new-gateway", delivered=True)


async def test_user_timezone(store: CronStore) -> None:
    assert await store.get_user_timezone("u1") is None
    await store.set_user_timezone("u1", "Europe/Rome")
    await store.set_user_timezone("u1", "Asia/Tokyo")
    assert await store.get_user_timezone("u1") == "Asia/Tokyo"
    with pytest.raises(InvalidTimezone):
        await store.set_user_timezone("u1", "Mars/Base")
    assert await store.get_user_timezone("u1") == "Asia/Tokyo"


async def test_a_delivery_handed_back_untried_keeps_its_attempt_count(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    store = await reopen(delivery_planner=planner)
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    await finish_one(store, clock, RunStatus.SUCCESS)
    (claimed,) = await store.claim_deliveries("w", 10, 30)
    assert claimed.attempts == 1
    retry = clock.now() + timedelta(seconds=1)
    assert await store.finish_delivery(
        claimed.id, "w", delivered=False, retry_at=retry, attempted=False
    )
    clock.advance(1)
    (again,) = await store.claim_deliveries("w", 10, 30)
    assert again.attempts == 1  # the hand-back did not count


async def test_finish_deliveries_records_a_batch_with_one_answer_each(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    from starpod_cron import DeliveryOutcome

    store = await reopen(delivery_planner=planner)
    await store.add_job_full("j", "p", Schedule.interval(every_ms=60_000), origin={"chat_id": 9})
    await finish_one(store, clock, RunStatus.SUCCESS)
    ws, tg = await store.claim_deliveries("w", 10, 30)
    retry = clock.now() + timedelta(seconds=3)
    answers = await store.finish_deliveries(
        "w",
        [
            DeliveryOutcome(ws.id, delivered=True),
            DeliveryOutcome(tg.id, delivered=False, error="502", retry_at=retry),
            DeliveryOutcome(10_000, delivered=True),  # not leased to "w": refused
        ],
    )
    assert answers == [True, True, False]
    states = {d.destination: d.status for d in await store.list_deliveries(0, None)}
    assert states == {"ws:agent": DeliveryStatus.DELIVERED, "tg:9": DeliveryStatus.PENDING}
    assert await store.next_delivery_at() == retry


async def test_dead_deliveries_are_counted_listed_and_retried_once(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    store = await reopen(delivery_planner=planner)
    await store.add_job_full("j", "p", Schedule.interval(every_ms=60_000), origin={"chat_id": 42})
    await finish_one(store, clock, RunStatus.SUCCESS)
    (claimed,) = await store.claim_deliveries("outbox", 10, 30, ["tg:"])
    assert await store.finish_delivery(claimed.id, "outbox", delivered=False, error="blocked")
    assert await store.count_deliveries() == {DeliveryStatus.PENDING: 1, DeliveryStatus.DEAD: 1}
    (dead,) = await store.deliveries_with_status(DeliveryStatus.DEAD)
    assert (dead.id, dead.last_error) == (claimed.id, "blocked")
    assert await store.retry_delivery(dead.id)
    assert not await store.retry_delivery(dead.id)  # pending now: nothing to retry
    assert not await store.retry_delivery(10**30)  # no such delivery (and no overflow)
    (again,) = await store.claim_deliveries("outbox", 10, 30, ["tg:"])
    assert again.id == dead.id and again.attempts == 1


@pytest.mark.slow
async def test_a_sender_that_died_on_this_machine_leaves_its_deliveries_at_once(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    store = await reopen(delivery_planner=planner)
    await store.add_job_full("j", "p", Schedule.interval(every_ms=60_000), origin={"chat_id": 42})
    await finish_one(store, clock, RunStatus.SUCCESS)
    code = "from starpod_cron.owner import new_owner; print(new_owner())"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    dead = out.decode().strip()  # a gateway process that has exited (killed mid-send)
    (taken,) = await store.claim_deliveries(dead, 10, 3600, ["tg:"])
    (again,) = await store.claim_deliveries(new_owner(), 10, 60, ["tg:"])  # not in an hour: now
    assert again.id == taken.id and again.attempts == 2
    assert (
        await store.claim_deliveries(new_owner(), 10, 60, ["tg:"]) == []
    )  # a live holder keeps it


async def test_maintenance_deletes_exactly_what_its_dry_run_counted(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    store = await reopen(delivery_planner=planner)
    await store.add_job_full("j", "p", Schedule.interval(every_ms=60_000), origin={"chat_id": 7})
    await finish_one(store, clock, RunStatus.SUCCESS)  # ws:agent + tg:7, both pending
    (sent,) = await store.claim_deliveries("outbox", 10, 30, ["tg:"])
    assert await store.finish_delivery(sent.id, "outbox", delivered=True)
    session = await store.main_session_id("user:a")
    await store.append_session_messages(session, [("user", "old"), ("assistant", "old too")])
    clock.advance(86_400)
    await store.append_session_messages(session, [("user", "new")])
    await store.optimize()
    cutoff = clock.now() - timedelta(hours=1)
    assert await store.prune_deliveries(cutoff, dry_run=True) == 1  # the delivered one
    assert await store.prune_deliveries(cutoff) == 1
    assert [d.status for d in await store.list_deliveries(0, None)] == [DeliveryStatus.PENDING]
    assert await store.prune_messages(cutoff, dry_run=True) == 2
    assert await store.prune_messages(cutoff) == 2
    assert [m.content for m in await store.session_messages(session, 10)] == ["new"]
    assert await store.prune_messages(cutoff) == 0
