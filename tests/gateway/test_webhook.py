"""Named webhook destinations end to end, against real receivers on 127.0.0.1 that verify
every signature with the ``standardwebhooks`` package: one run to several destinations is one
message each; a receiver answering 500 twice gets the same ``webhook-id`` three times and the
run is delivered once; a receiver down for five minutes (ManualClock) gets everything, in
order, when it comes back, nothing dead; a non-admin pointing a job at a destination not
allowed for them is refused with a clear error and nothing is written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.channels.webhook import WebhookChannel
from gateway.outbox import Outbox
from starpod_cron import (
    CronStore,
    Delivery,
    DeliveryStatus,
    JobSpec,
    ManualClock,
    RunStatus,
    Schedule,
)
from starpod_cron.config import AgentConfig
from starpod_cron.destinations import DestinationConfig, Destinations
from starpod_cron.routing import DeliveryRouter
from starpod_cron.tasks import TaskSet
from tests.backends import BACKENDS, store_url
from tests.conftest import START, eventually
from tests.gateway.conftest import config, running_gateway
from tests.gateway.hookreceiver import HookReceiver, running_receiver

NAMES = ("alpha", "beta", "gamma")
ALICE = {"Authorization": "Bearer alice-token-0123456789"}
BOB = {"Authorization": "Bearer bob-token-0123456789"}


def hook(receiver: HookReceiver, name: str, users: tuple[str, ...] = ()) -> DestinationConfig:
    return DestinationConfig(
        "webhook", url=f"{receiver.url}/{name}", secret_env=f"HOOK_{name.upper()}", users=users
    )


@pytest.fixture
async def receivers(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, HookReceiver]]:
    async with AsyncExitStack() as stack:
        found = {n: await stack.enter_async_context(running_receiver()) for n in NAMES}
        for name, receiver in found.items():
            monkeypatch.setenv(f"HOOK_{name.upper()}", receiver.secret)
        yield found


def hooked(
    tmp_path: Path, receivers: dict[str, HookReceiver], **users: tuple[str, ...]
) -> AgentConfig:
    named = {n: hook(r, n, users=users.get(n, ())) for n, r in receivers.items()}
    return replace(config(tmp_path), destinations=Destinations(named))


async def deliveries(store: CronStore) -> list[Delivery]:
    return await store.list_deliveries(0, None, prefix="dest:")


async def settled(store: CronStore, count: int) -> list[Delivery]:
    async def done() -> list[Delivery]:
        found = await deliveries(store)
        final = {DeliveryStatus.DELIVERED, DeliveryStatus.DEAD}
        return found if len(found) == count and all(d.status in final for d in found) else []

    return await eventually(done, timeout=20, what=f"{count} deliveries settled")


async def _delivered(store: CronStore, delivery_id: int) -> Delivery | None:
    found = await store.get_delivery(delivery_id)
    return found if found is not None and found.status is DeliveryStatus.DELIVERED else None


def soon(name: str, *to: str) -> JobSpec:
    start = datetime.now(UTC) + timedelta(seconds=0.3)
    return JobSpec(name, f"report {name}", Schedule.one_shot(start), deliver_to=to)


async def test_one_run_to_several_destinations_is_one_message_each(
    tmp_path: Path, receivers: dict[str, HookReceiver]
) -> None:
    async with running_gateway(hooked(tmp_path, receivers), str(tmp_path / "gw.db")) as gateway:
        store = gateway.store
        assert store is not None
        await store.add_jobs([soon("fanout", *NAMES)])
        delivered = await settled(store, len(NAMES))
        await asyncio.sleep(1)  # a duplicate would arrive by now
    assert {d.status for d in delivered} == {DeliveryStatus.DELIVERED}
    ids = set()
    for name, receiver in receivers.items():
        (got,) = receiver.accepted
        assert receiver.unverified == 0 and got.path == f"/{name}"
        assert got.body["type"] == "run.finished"
        data = got.body["data"]
        assert (data["job_name"], data["status"], data["success"]) == ("fanout", "success", True)
        assert data["result"] == "done: report fanout" and data["error"] is None
        ids.add(got.webhook_id)
    assert len(ids) == len(NAMES)  # each destination's delivery has its own id


async def test_500_twice_then_200_is_the_same_webhook_id_three_times_and_one_delivery(
    tmp_path: Path, receivers: dict[str, HookReceiver]
) -> None:
    receivers["alpha"].answers = [500, 500]
    async with running_gateway(hooked(tmp_path, receivers), str(tmp_path / "gw.db")) as gateway:
        store = gateway.store
        assert store is not None
        await store.add_jobs([soon("flaky", "alpha")])
        (delivery,) = await settled(store, 1)
        await asyncio.sleep(1)
    alpha = receivers["alpha"]
    assert [r.webhook_id for r in alpha.requests] == [alpha.requests[0].webhook_id] * 3
    assert len(alpha.accepted) == 1 and alpha.unverified == 0
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.attempts == 3
    assert all(r.body == alpha.requests[0].body for r in alpha.requests)  # the same message


async def test_retry_after_costs_no_attempt_and_a_rejected_message_alone_is_dead(
    tmp_path: Path, receivers: dict[str, HookReceiver]
) -> None:
    """``delivery_max_attempts`` is 8 in the test config: three 429s with Retry-After are
    waited out at no cost; a 400 kills that message only, its answer kept, and the next
    message to the same receiver goes out. Its owner sees and retries it over the HTTP API
    (another user neither sees nor retries it), and it is sent."""
    wait = (429, {"Retry-After": "0.3"})
    receivers["alpha"].answers = [wait, wait, wait]
    receivers["beta"].answers = [400]
    async with running_gateway(hooked(tmp_path, receivers), str(tmp_path / "gw.db")) as gateway:
        store = gateway.store
        assert store is not None
        await store.add_jobs([replace(soon("slow", "alpha", "beta"), user_id="alice")])
        await settled(store, 2)
        await store.add_jobs([soon("next", "beta")])
        found = {(d.job_name, d.destination): d for d in await settled(store, 3)}
        dead_id = found[("slow", "dest:beta")].id
        base = f"http://127.0.0.1:{gateway.http_port}"
        async with httpx.AsyncClient(base_url=base) as client:
            listed = await client.get("/api/deliveries", headers=ALICE)
            assert [d["id"] for d in listed.json()["deliveries"]] == [dead_id]
            assert (await client.get("/api/deliveries", headers=BOB)).json()["deliveries"] == []
            path = f"/api/deliveries/{dead_id}/retry"
            assert (await client.post(path, headers=BOB)).status_code == 404
            assert (await client.post(path, headers=ALICE)).status_code == 200
        again = await eventually(
            lambda: _delivered(store, dead_id), timeout=10, what="the retried delivery sent"
        )
        assert again.attempts == 1 and len(receivers["beta"].accepted) == 2
    waited = found[("slow", "dest:alpha")]
    assert waited.status is DeliveryStatus.DELIVERED and waited.attempts == 1
    assert len(receivers["alpha"].requests) == 4 and len(receivers["alpha"].accepted) == 1
    dead = found[("slow", "dest:beta")]
    assert dead.status is DeliveryStatus.DEAD and dead.attempts == 1
    assert dead.last_error is not None and "answered 400: answer 400" in dead.last_error
    assert receivers["beta"].url not in dead.last_error  # never the URL
    assert found[("next", "dest:beta")].status is DeliveryStatus.DELIVERED


async def test_a_non_admin_pointing_a_job_at_a_destination_not_theirs_is_refused(
    tmp_path: Path, receivers: dict[str, HookReceiver]
) -> None:
    cfg = hooked(tmp_path, receivers, alpha=("alice",))
    async with running_gateway(cfg, str(tmp_path / "gw.db")) as gateway:
        store = gateway.store
        assert store is not None and gateway.http_port is not None
        base = f"http://127.0.0.1:{gateway.http_port}"
        async with httpx.AsyncClient(base_url=base, headers=ALICE) as client:
            job = {"name": "mine", "prompt": "p", "every": "1h"}
            refused = await client.post("/api/jobs", json=job | {"deliver_to": ["beta"]})
            assert refused.status_code == 403, refused.text
            message = refused.json()["error"]["message"]
            assert "may not deliver to 'beta'" in message and "users" in message
            chat = await client.post("/api/jobs", json=job | {"deliver_to": ["telegram:99"]})
            assert chat.status_code == 403, chat.text
            assert await store.list_jobs() == []  # nothing written
            unknown = await client.post("/api/jobs", json=job | {"deliver_to": ["nope"]})
            assert unknown.status_code == 400 and "no destination named" in unknown.text
            allowed = await client.post("/api/jobs", json=job | {"deliver_to": ["alpha"]})
            assert allowed.status_code in (200, 201), allowed.text
            assert allowed.json()["job"]["deliver_to"] == ["alpha"]
            changed = await client.patch("/api/jobs/mine", json={"alerts_to": ["gamma"]})
            assert changed.status_code == 403, changed.text
            (kept,) = await store.list_jobs()
            assert (kept.deliver_to, kept.alerts_to) == (["alpha"], None)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_receiver_down_for_five_minutes_gets_everything_after_nothing_dead(
    backend: str, tmp_path: Path
) -> None:
    clock = ManualClock(START)
    async with AsyncExitStack() as stack:
        receiver = HookReceiver()
        await receiver.start()
        await receiver.stop()  # down from the start: connections refused
        stack.push_async_callback(receiver.stop)
        named = {"ops": DestinationConfig("webhook", url=receiver.url, secret_env="X")}
        router = DeliveryRouter(destinations=Destinations(named), finished_events=False)
        url = await stack.enter_async_context(store_url(backend, str(tmp_path)))
        store = await CronStore.open(url, clock=clock, delivery_planner=router)
        stack.push_async_callback(store.close)
        await store.add_jobs([JobSpec("j", "p", Schedule.interval(60_000), deliver_to=("ops",))])
        for n in range(5):  # five results wait for the receiver
            clock.advance(60)
            (claim,) = await store.claim_due("me", 10, 30)
            await store.record_run_complete(claim.run_id, RunStatus.SUCCESS, f"result {n}")
        client = await stack.enter_async_context(httpx.AsyncClient())
        channel = WebhookChannel("ops", receiver.url, receiver.secret, client)
        outbox = Outbox(
            store, "node-1", {"dest:ops": channel}, max_attempts=3, backoff_secs=(1, 5, 30)
        )
        tasks = TaskSet("test")
        stack.push_async_callback(tasks.stop, 5)
        tasks.keep(outbox.run, "outbox")

        async def refusing() -> bool:
            return bool(await store.refusing_destinations())

        await eventually(refusing, what="the destination recorded as refusing")
        for _ in range(30):  # five minutes, ten seconds at a time: probes every 30 s
            clock.advance(10)
            await asyncio.sleep(0.05)
        waiting = await deliveries(store)
        assert [d.status for d in waiting] == [DeliveryStatus.PENDING] * 5
        assert all(d.attempts <= 1 for d in waiting), [d.attempts for d in waiting]
        await receiver.start()  # back, on the same port
        for _ in range(10):
            clock.advance(10)
            await asyncio.sleep(0.05)
        delivered = await settled(store, 5)
        assert {d.status for d in delivered} == {DeliveryStatus.DELIVERED}
        texts = [r.body["data"]["result"] for r in receiver.accepted]
        assert texts == [f"result {n}" for n in range(5)]  # in run order, each once
        assert len(set(receiver.ids())) == 5 and receiver.unverified == 0
        assert await store.refusing_destinations() == []
