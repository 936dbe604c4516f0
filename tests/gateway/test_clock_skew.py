"""A node whose clock is off: ``serve`` claims nothing while its clock is further than
``[cron] max_clock_skew_secs`` from the database's, says so once in its log and answers 503
on ``/readyz``; a node within the limit runs the job, on time by the database's clock. Both
backends (with SQLite the database's clock is the machine's, so only a process given a clock
of its own, as here, can be off)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from starpod_cron import CronStore, JobSpec, RunStatus, Schedule, SchedulerSettings
from tests.backends import needs_postgres, store_url
from tests.clocks import SkewedClock
from tests.conftest import eventually
from tests.gateway.conftest import config, running_gateway

pytestmark = pytest.mark.xdist_group("pg-nodes")

LINE = "off the database's, more than [cron] max_clock_skew_secs = 5"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=needs_postgres)])
async def test_a_node_30_s_off_refuses_to_claim_and_is_not_ready(
    tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = replace(config(tmp_path), scheduler=SchedulerSettings(tick_secs=0.3, lease_secs=5))
    async with store_url(backend, str(tmp_path)) as url, CronStore.open(url) as store:
        due = datetime.now(UTC) + timedelta(seconds=0.5)
        [job_id] = await store.add_jobs([JobSpec("report", "p", Schedule.one_shot(due))])
        caplog.set_level(logging.WARNING, "starpod_cron.scheduler")
        async with running_gateway(cfg, url, clock=SkewedClock(-30)) as skewed:
            assert skewed.http_port is not None
            base = f"http://127.0.0.1:{skewed.http_port}"
            async with httpx.AsyncClient(base_url=base) as client:

                async def refused() -> httpx.Response | None:
                    answer = await client.get("/readyz")
                    return answer if "clock" in answer.json()["checks"] else None

                answer = await eventually(refused, timeout=10, what="a clock check")
                assert answer.status_code == 503, answer.text
                clock = answer.json()["checks"]["clock"]
                assert clock["ok"] is False and clock["max_skew_secs"] == 5
                assert -31 < clock["skew_secs"] < -29
                assert skewed.scheduler is not None
                passes = skewed.scheduler._loop.passes
                await eventually(
                    lambda: _passes(skewed, passes + 5), timeout=10, what="5 more passes"
                )
                assert await store.list_runs(job_id) == []  # due, never claimed here
        assert sum(LINE in r.getMessage() for r in caplog.records) == 1  # one line

        async with running_gateway(cfg, url, clock=SkewedClock(1)) as good:
            assert good.http_port is not None
            base = f"http://127.0.0.1:{good.http_port}"
            async with httpx.AsyncClient(base_url=base) as client:

                async def ran() -> bool:
                    runs = await store.list_runs(job_id)
                    return bool(runs) and runs[0].status is RunStatus.SUCCESS

                await eventually(ran, timeout=15, what="the run by a node 1 s off")
                answer = await client.get("/readyz")
                assert answer.status_code == 200, answer.text
                assert answer.json()["checks"]["clock"]["ok"] is True


async def _passes(gateway: object, at_least: int) -> bool:
    await asyncio.sleep(0)
    return gateway.scheduler._loop.passes >= at_least  # type: ignore[attr-defined]
