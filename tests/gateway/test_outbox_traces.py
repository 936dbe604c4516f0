"""One span per delivery the outbox sends (starpod_cron/tracing.py), over a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.outbox import DeliveryError, Progress
from starpod_cron import CronStore, Delivery, DeliveryStatus
from tests.gateway.outboxkit import Planner, finish_runs, payload, running_outbox, settled

DEST = "dest:ops:someone@example.com"


class Picky:
    """Takes every message but the one whose result says "refuse" (dead at once)."""

    name = "dest:ops"

    async def deliver(self, delivery: Delivery, progress: Progress) -> None:
        if delivery.payload["data"]["result"] == "refuse":
            raise DeliveryError("refused", permanent=True)

    async def check(self) -> None:
        return None


@pytest.fixture
async def planned(url: str) -> AsyncIterator[tuple[CronStore, Planner]]:
    planner = Planner(DEST)
    store = await CronStore.open(url, delivery_planner=planner)
    try:
        yield store, planner
    finally:
        await store.close()


async def test_each_delivery_sent_has_one_span(
    planned: tuple[CronStore, Planner], exporter: InMemorySpanExporter
) -> None:
    store, planner = planned
    bodies = [payload(result="fine"), payload(result="refuse"), payload(result="fine too")]
    run_ids = await finish_runs(store, planner, bodies)
    async with running_outbox(store, {"dest:ops": Picky()}):
        done = await settled(store, "dest:ops", 3)
    spans = [s for s in exporter.get_finished_spans() if s.name == "starpod_cron.delivery"]
    assert len(spans) == 3
    by_id = {(s.attributes or {})["starpod_cron.delivery.id"]: s for s in spans}
    for delivery in done:
        attrs = by_id[delivery.id].attributes or {}
        assert attrs["starpod_cron.run.id"] in run_ids
        assert attrs["starpod_cron.delivery.channel"] == "dest:ops"  # never the address
        delivered = delivery.status is DeliveryStatus.DELIVERED
        assert attrs["starpod_cron.delivery.delivered"] is delivered
    assert sum(d.status is DeliveryStatus.DEAD for d in done) == 1
