"""Store contract: named leases, node heartbeats and broadcast events (several gateways on one
store), on every backend."""

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
    InvalidInput,
    ManualClock,
    NodeInfo,
    NodeStatus,
    RunStatus,
    Schedule,
    StoreSettings,
)
from starpod_cron.timeutil import from_ms
from tests.contract.conftest import Opener, Reopen


async def test_one_holder_at_a_time_and_renewal_keeps_the_tenure(
    store: CronStore, clock: ManualClock
) -> None:
    first = await store.acquire_lease("telegram:1", "node-a", 6)
    assert first is not None and first.holder == "node-a" and first.state is None
    assert await store.acquire_lease("telegram:1", "node-b", 6) is None
    clock.advance(4)
    renewed = await store.acquire_lease("telegram:1", "node-a", 6)
    assert renewed is not None and renewed.since == first.since
    assert renewed.expires_at == first.expires_at + timedelta(seconds=4)
    clock.advance(5)  # 5 s after the renewal: still held
    assert await store.acquire_lease("telegram:1", "node-b", 6) is None
    # other names are independent
    assert await store.acquire_lease("telegram:2", "node-b", 6) is not None


async def test_an_expired_lease_passes_on_with_its_state_and_fences_the_old_holder(
    store: CronStore, clock: ManualClock
) -> None:
    assert await store.acquire_lease("bot", "node-a", 6) is not None
    assert await store.save_lease_state("bot", "node-a", "101")
    clock.advance(6)
    taken = await store.acquire_lease("bot", "node-b", 6)
    assert taken is not None and taken.holder == "node-b" and taken.state == "101"
    assert taken.since == from_ms(clock.now_ms())
    # the old holder (back from a pause) can write nothing any more
    assert not await store.save_lease_state("bot", "node-a", "99")
    assert await store.acquire_lease("bot", "node-a", 6) is None
    await store.release_lease("bot", "node-a")  # not its lease: nothing happens
    assert await store.acquire_lease("bot", "node-c", 6) is None
    (lease,) = await store.list_leases()
    assert (lease.holder, lease.state) == ("node-b", "101")


async def test_a_released_lease_is_free_at_once_and_keeps_its_state(
    store: CronStore, clock: ManualClock
) -> None:
    assert await store.acquire_lease("bot", "node-a", 60) is not None
    assert await store.save_lease_state("bot", "node-a", "7")
    await store.release_lease("bot", "node-a")
    assert not await store.save_lease_state("bot", "node-a", "8")  # released: fenced too
    taken = await store.acquire_lease("bot", "node-b", 60)
    assert taken is not None and taken.state == "7"


@pytest.mark.slow
async def test_a_holder_that_died_on_this_machine_loses_the_lease_at_once(
    store: CronStore,
) -> None:
    code = "from starpod_cron.owner import new_owner; print(new_owner())"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    dead = out.decode().strip()
    assert await store.acquire_lease("bot", dead, 3600) is not None
    taken = await store.acquire_lease("bot", "node-b", 60)
    assert taken is not None and taken.holder == "node-b"


async def test_racing_first_takers_get_one_lease(open_store: Opener, clock: ManualClock) -> None:
    stores = [await open_store(StoreSettings(), clock) for _ in range(6)]
    try:
        results = await asyncio.gather(
            *(s.acquire_lease("bot", f"node-{i}", 30) for i, s in enumerate(stores))
        )
        assert sum(r is not None for r in results) == 1
        (lease,) = await stores[0].list_leases()
        winner = next(r for r in results if r is not None)
        assert lease.holder == winner.holder
    finally:
        for s in stores:
            await s.close()


@pytest.mark.parametrize("name, holder, secs", [("", "a", 5), ("x", "", 5), ("x", "a", 0)])
async def test_bad_lease_arguments_are_refused(
    store: CronStore, name: str, holder: str, secs: float
) -> None:
    with pytest.raises(InvalidInput):
        await store.acquire_lease(name, holder, secs)
    assert await store.list_leases() == []


def node(node_id: str, clock: ManualClock, roles: Sequence[str] = ()) -> NodeInfo:
    now = from_ms(clock.now_ms())
    return NodeInfo(node_id, "host-1", 4242, "0.1.0", now, now, 5.0, roles=tuple(roles))


async def test_nodes_are_up_then_gone_after_three_missed_heartbeats_or_stopped(
    store: CronStore, clock: ManualClock
) -> None:
    await store.heartbeat(node("a", clock, ["scheduler"]))
    await store.heartbeat(node("b", clock))
    clock.advance(10)
    await store.heartbeat(node("a", clock, ["scheduler", "telegram-leader"]))
    clock.advance(10)  # b silent for 20 s: 4 heartbeats of 5 s
    now = from_ms(clock.now_ms())
    status = {n.id: n.status(now) for n in await store.list_nodes()}
    assert status == {"a": NodeStatus.UP, "b": NodeStatus.GONE}
    (a,) = [n for n in await store.list_nodes() if n.id == "a"]
    assert a.roles == ("scheduler", "telegram-leader")
    assert a.last_seen == now - timedelta(seconds=10) and a.pid == 4242
    await store.heartbeat(node("a", clock), stopped=True)
    (a,) = [n for n in await store.list_nodes() if n.id == "a"]
    assert a.status(from_ms(clock.now_ms())) is NodeStatus.STOPPED
    clock.advance(86_400 + 1)  # a day after it stopped, a is no longer listed; b, gone, is
    assert [n.id for n in await store.list_nodes()] == ["b"]
    clock.advance(7 * 86_400)  # a week later both are forgotten once anyone beats
    await store.heartbeat(node("c", clock))
    assert [n.id for n in await store.list_nodes()] == ["c"]


def broadcasting(job: CronJob, run: CronRun) -> Sequence[DeliverySpec]:
    return [
        DeliverySpec("ws:agent", {"run": run.id}, broadcast=True),
        DeliverySpec("tg:42", {"text": run.id}),
    ]


async def test_broadcast_events_are_published_never_claimed_by_an_outbox(
    store: CronStore, clock: ManualClock, reopen: Reopen
) -> None:
    assert await store.last_delivery_id() == 0
    store = await reopen(delivery_planner=broadcasting)
    await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    clock.advance(60)
    (claim,) = await store.claim_due("me", 10, 30)
    await store.record_run_complete(claim.run_id, RunStatus.SUCCESS, "ok", error=None)
    events = await store.list_deliveries(0, None)
    assert [(d.destination, d.status) for d in events] == [
        ("ws:agent", DeliveryStatus.PUBLISHED),
        ("tg:42", DeliveryStatus.PENDING),
    ]
    assert await store.last_delivery_id() == events[-1].id
    claimed = await store.claim_deliveries("outbox", 100, 30)  # any prefix
    assert [d.destination for d in claimed] == ["tg:42"]
    assert await store.next_delivery_at() is not None  # the claimed one's lease
    (published,) = await store.list_deliveries(0, None, prefix="ws:")
    assert published.status is DeliveryStatus.PUBLISHED


async def test_a_scheduler_is_up_only_while_it_beats_and_has_not_stopped(
    store: CronStore, clock: ManualClock
) -> None:
    assert await store.schedulers_up() == 0
    await store.heartbeat(node("web", clock, ["websocket"]))  # not a scheduler
    assert await store.schedulers_up() == 0
    await store.heartbeat(node("a", clock, ["scheduler"]))
    await store.heartbeat(node("b", clock, ["scheduler", "websocket"]))
    assert await store.schedulers_up() == 2
    clock.advance(15)  # exactly 3 heartbeats of 5 s: still up
    assert await store.schedulers_up() == 2
    await store.heartbeat(node("b", clock, ["scheduler"]), stopped=True)
    assert await store.schedulers_up() == 1  # b stopped cleanly
    clock.advance(0.001)  # a silent for more than 3 heartbeats: gone
    assert await store.schedulers_up() == 0
