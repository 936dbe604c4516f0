"""Deliveries to a named destination (``dest:<name>``) through a real Outbox over a real store:
jobs whose runs finish with the payload a test chose (the shape the destination planner
writes), and an outbox running the channels under test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from gateway.outbox import Channel, Outbox
from starpod_cron import (
    Completion,
    CronJob,
    CronRun,
    CronStore,
    Delivery,
    DeliverySpec,
    DeliveryStatus,
    JobSpec,
    RunStatus,
    Schedule,
)
from tests.conftest import eventually

OWNER = "node-a"
_ids = count(1)


def payload(
    job_name: str = "report",
    *,
    result: str = "all good",
    success: bool = True,
    status: str | None = None,
    error: str | None = None,
    kind: str = "run.finished",
    notice: str | None = None,
    cost_usd: float | None = None,
    run_id: str = "run-1",
) -> dict[str, Any]:
    """A delivery payload as the destination planner writes it."""
    return {
        "type": kind,
        "timestamp": "2026-12-03T09:00:05+00:00",
        "data": {
            "job_id": f"job-{job_name}",
            "job_name": job_name,
            "run_id": run_id,
            "status": status or ("success" if success else "failed"),
            "success": success,
            "scheduled_for": "2026-12-03T09:00:00+00:00",
            "completed_at": "2026-12-03T09:00:05+00:00",
            "result": result,
            "error": error,
            "cost_usd": cost_usd,
            "notice": notice,
        },
    }


def delivery(
    destination: str, body: Mapping[str, Any], *, delivery_id: int = 1, progress: int = 0
) -> Delivery:
    """A delivery built directly (for a channel's deliver() without a store)."""
    return Delivery(
        id=delivery_id,
        run_id=f"run-{delivery_id}",
        job_id="job-1",
        job_name="report",
        destination=destination,
        payload=dict(body),
        status=DeliveryStatus.SENDING,
        attempts=1,
        last_error=None,
        created_at=datetime.now(UTC),
        delivered_at=None,
        progress=progress,
    )


class Planner:
    """Sends each finished run of job ``name`` to ``destination`` with ``payloads[name]``."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.payloads: dict[str, dict[str, Any]] = {}

    def __call__(self, job: CronJob, run: CronRun) -> Sequence[DeliverySpec]:
        body = self.payloads.get(job.name)
        return [] if body is None else [DeliverySpec(self.destination, body)]


async def finish_runs(
    store: CronStore, planner: Planner, bodies: Sequence[Mapping[str, Any]]
) -> list[str]:
    """One job per body, each run finished in this order (so its delivery is planned in this
    order); returns the run ids."""
    tag = next(_ids)
    names = [f"j{tag}-{i:04d}" for i in range(len(bodies))]
    for name, body in zip(names, bodies, strict=True):
        planner.payloads[name] = dict(body)
    at = datetime.now(UTC) + timedelta(seconds=30)
    await store.add_jobs([JobSpec(n, "p", Schedule.one_shot(at)) for n in names])
    claims = await store.claim_due(OWNER, len(names), 600, ahead_secs=60)
    by_name = {claim.job_name: claim.run_id for claim in claims}
    assert sorted(by_name) == names
    for start in range(0, len(names), 100):  # in order, a hundred a transaction
        done = [Completion(by_name[n], RunStatus.SUCCESS, "ok") for n in names[start : start + 100]]
        assert all(await store.complete_runs(done, owner=OWNER))
    return [by_name[n] for n in names]


@asynccontextmanager
async def running_outbox(
    store: CronStore, channels: dict[str, Channel], *, owner: str = OWNER, **options: Any
) -> AsyncIterator[Outbox]:
    """An outbox (of gateway node ``owner``) running until the block ends."""
    options.setdefault("backoff_secs", (0.2, 0.5))
    options.setdefault("idle_secs", 0.5)
    outbox = Outbox(store, owner, channels, **options)
    task = asyncio.create_task(outbox.run(), name="test:outbox")
    try:
        yield outbox
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def settled(store: CronStore, prefix: str, count: int, timeout: float = 20) -> list[Delivery]:
    """The ``count`` deliveries to ``prefix`` once none is pending or sending any more."""

    async def done() -> list[Delivery] | None:
        rows = await store.list_deliveries(0, None, count + 10, prefix=prefix)
        waiting = {DeliveryStatus.PENDING, DeliveryStatus.SENDING}
        if len(rows) >= count and not any(d.status in waiting for d in rows):
            return rows
        return None

    return await eventually(done, timeout=timeout, what=f"{count} deliveries to {prefix} settled")
