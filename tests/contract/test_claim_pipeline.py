"""Store contract: a claim's answer says when the next job is due, and ``complete_runs`` may
claim in its own transaction (``claim=ClaimRequest(...)``): what a job released by a
completion may claim, exactly once, whoever else claims at the same time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from starpod_cron import Completion, CronStore, ManualClock, RunStatus, Schedule, StoreSettings
from starpod_cron.store import ClaimRequest
from starpod_cron.timeutil import to_ms
from tests.conftest import START
from tests.contract.conftest import Opener

LEASE = 30.0


def done(run_id: str) -> Completion:
    return Completion(run_id, RunStatus.SUCCESS, summary="ok")


async def test_a_claim_says_when_the_next_job_is_due(store: CronStore, clock: ManualClock) -> None:
    assert (await store.claim_due("me", 10, LEASE)).next_due_ms is None  # no job at all
    for name, secs in (("a", 1), ("b", 5), ("c", 9)):
        await store.add_job(name, "p", Schedule.one_shot(START + timedelta(seconds=secs)))
    clock.advance(1)
    claims = await store.claim_due("me", 10, LEASE)
    assert [c.job_name for c in claims] == ["a"]
    assert claims.next_due_ms == to_ms(START + timedelta(seconds=5))
    assert claims.next_due_ms == to_ms(await store.next_due_at())
    clock.advance(10)
    full = await store.claim_due("me", 1, LEASE)  # a full batch: "c" is still due now
    assert [c.job_name for c in full] == ["b"]
    assert full.next_due_ms == to_ms(START + timedelta(seconds=9))


async def test_a_completion_claims_the_job_it_released_in_the_same_transaction(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job("tick", "p", Schedule.interval(every_ms=1000))
    clock.advance(1)
    (first,) = await store.claim_due("me", 10, LEASE)
    clock.advance(1)  # due again, but running: nobody may claim it
    assert await store.claim_due("me", 10, LEASE) == []
    request = ClaimRequest("me", 10, LEASE)
    assert await store.complete_runs([done(first.run_id)], owner="me", claim=request) == [True]
    (second,) = request.claimed
    assert second.job_id == job_id and second.scheduled_for == START + timedelta(seconds=2)
    assert request.claimed.next_due_ms is None  # its only job is running again
    run = await store.get_run(second.run_id)
    assert run is not None and run.status is RunStatus.RUNNING
    assert (await store.get_run(first.run_id)).status is RunStatus.SUCCESS  # type: ignore[union-attr]
    job = await store.get_job(job_id)
    assert job is not None and job.running_run_id == second.run_id


async def test_a_claim_made_with_a_refused_completion_still_claims(
    store: CronStore, clock: ManualClock
) -> None:
    await store.add_job("a", "p", Schedule.one_shot(START + timedelta(seconds=1)))
    await store.add_job("b", "p", Schedule.one_shot(START + timedelta(seconds=1)))
    clock.advance(1)
    (claim,) = await store.claim_due("me", 1, LEASE)
    request = ClaimRequest("me", 5, LEASE)
    # a fenced-off holder's completion is refused; the claim in its transaction is not
    assert await store.complete_runs([done(claim.run_id)], owner="x", claim=request) == [False]
    assert [c.job_name for c in request.claimed] == ["b"]
    request = ClaimRequest("me", 5, LEASE)
    assert await store.complete_runs([], owner="me", claim=request) == []
    assert list(request.claimed) == [] and request.claimed.next_due_ms is None


async def test_claims_with_completions_and_plain_claims_never_share_an_occurrence(
    store: CronStore, open_store: Opener, settings: StoreSettings, clock: ManualClock
) -> None:
    other = await open_store(settings, clock)
    try:
        for i in range(120):
            await store.add_job(f"j{i:03}", "p", Schedule.interval(every_ms=1000))
        clock.advance(1)
        held = [c.run_id for c in await store.claim_due("mine", 120, LEASE)]
        assert len(held) == 120
        clock.advance(1)  # every job due again once its run is recorded
        requests = [ClaimRequest("mine", 9, LEASE) for _ in range(12)]
        results = await asyncio.gather(
            *[
                store.complete_runs([done(r) for r in held[i::12]], owner="mine", claim=request)
                for i, request in enumerate(requests)
            ],
            *[other.claim_due(f"o{i}", 7, LEASE) for i in range(12)],
        )
        answers = [a for r in results[:12] for a in r]  # type: ignore[union-attr]
        assert answers == [True] * 120
        claimed = [c.job_id for r in requests for c in r.claimed]
        claimed += [c.job_id for r in results[12:] for c in r]  # type: ignore[union-attr]
        late = await store.claim_due("late", 200, LEASE)
        claimed += [c.job_id for c in late]
        assert len(claimed) == 120 and len(set(claimed)) == 120  # each due job once, no more
    finally:
        await other.close()


async def test_a_run_held_in_memory_is_still_judged_by_its_row(
    store: CronStore, open_store: Opener, settings: StoreSettings, clock: ManualClock
) -> None:
    """The claiming store object keeps its runs in memory and reads back only status and
    lease at completion: a run recovered elsewhere meanwhile is refused, a renewed one is
    recorded, and another store object completing it reads the whole row."""
    other = await open_store(settings, clock)
    try:
        for name in ("lost", "renewed", "elsewhere"):
            await store.add_job(name, "p", Schedule.one_shot(START + timedelta(seconds=1)))
        clock.advance(1)
        claims = {c.job_name: c for c in await store.claim_due("me", 10, LEASE)}
        clock.advance(LEASE / 2)
        assert await store.renew_leases("me", LEASE, [claims["renewed"].run_id]) == {
            claims["renewed"].run_id
        }
        clock.advance(LEASE / 2 + 1)  # "lost" and "elsewhere" expired; "renewed" did not
        report = await other.recover()
        assert set(report.interrupted_run_ids) == {
            claims["lost"].run_id,
            claims["elsewhere"].run_id,
        }
        answers = await store.complete_runs(
            [done(claims["lost"].run_id), done(claims["renewed"].run_id)], owner="me"
        )
        assert answers == [False, True]
        lost = await store.get_run(claims["lost"].run_id)
        assert lost is not None and lost.status is RunStatus.INTERRUPTED
        renewed = await store.get_run(claims["renewed"].run_id)
        assert renewed is not None and renewed.status is RunStatus.SUCCESS
        assert renewed.scheduled_for == START + timedelta(seconds=1)
        assert renewed.started_at == START + timedelta(seconds=1)
        assert renewed.result_summary == "ok" and renewed.job_name == "renewed"
        assert await other.complete_runs([done(claims["elsewhere"].run_id)], owner=None) == [False]
    finally:
        await other.close()
