"""OpenTelemetry traces (starpod_cron/tracing.py) through a real scheduler, store and the
OpenAI-compatible stand-in, read with the SDK's in-memory exporter: one span per run from
claim to recorded completion, a GenAI child span per model asked."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from starpod_cron import CronScheduler, CronStore, JobSpec, RunStatus, Schedule
from starpod_cron.executors import OpenAIExecutor
from starpod_cron.settings import SchedulerSettings
from tests.openai_standin import FakeOpenAI, Reply, running_openai

HOURLY = Schedule.interval(3_600_000)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with running_openai() as server:
        yield server


@pytest.fixture
async def scheduler(tmp_path: Path, fake: FakeOpenAI) -> AsyncIterator[CronScheduler]:
    store = await CronStore.open(str(tmp_path / "traces.db"))
    executor = OpenAIExecutor(store, base_url=fake.base_url, model="m1", request_timeout_secs=10)
    s = CronScheduler(store, executor, SchedulerSettings(tick_secs=3600))
    yield s
    await s.stop()
    await executor.aclose()
    await store.close()


def _named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_one_span_per_run_with_a_genai_child_per_model_asked(
    exporter: InMemorySpanExporter, scheduler: CronScheduler, fake: FakeOpenAI
) -> None:
    store = scheduler.store
    spec = JobSpec(
        "digest", "summarize", HOURLY, fallback_models=["m2"], temperature=0.5, max_retries=0
    )
    (job,) = await store.add_jobs([spec])
    fake.answer(
        Reply(status=404, content="The model `m1` does not exist"),
        Reply(content="done", usage={"prompt_tokens": 12, "completion_tokens": 3}),
    )
    run = await scheduler.run_now(job)
    assert run.status is RunStatus.SUCCESS
    spans = exporter.get_finished_spans()
    (root,) = _named(spans, "starpod_cron.run")
    attrs = root.attributes or {}
    assert attrs["starpod_cron.job.name"] == "digest"
    assert attrs["starpod_cron.run.id"] == run.id
    assert attrs["starpod_cron.run.attempt"] == 1
    occurrence = datetime.fromisoformat(str(attrs["starpod_cron.run.occurrence"]))
    assert abs((occurrence - run.scheduled_for).total_seconds()) < 1  # a manual run: "now"
    assert attrs["starpod_cron.run.status"] == "success"
    calls = [s for s in spans if s.name.startswith("chat ")]
    assert [c.name for c in calls] == ["chat m1", "chat m2"]  # the fallback too
    for call in calls:
        assert call.parent is not None and call.parent.span_id == root.context.span_id
        assert call.context.trace_id == root.context.trace_id
        assert call.kind is SpanKind.CLIENT
        assert (call.attributes or {})["gen_ai.operation.name"] == "chat"
        assert (call.attributes or {})["gen_ai.request.temperature"] == 0.5
    missing, answered = calls
    assert missing.status.status_code is StatusCode.ERROR
    assert (missing.attributes or {})["error.type"] == "ModelNotFound"
    assert (answered.attributes or {})["gen_ai.request.model"] == "m2"
    assert (answered.attributes or {})["gen_ai.usage.input_tokens"] == 12
    assert (answered.attributes or {})["gen_ai.usage.output_tokens"] == 3
    # the run's span covers its model calls: from the claim to the recorded completion
    assert root.start_time is not None and root.end_time is not None
    assert all(root.start_time <= c.start_time and c.end_time <= root.end_time for c in calls)  # type: ignore[operator]


async def test_each_run_of_a_burst_has_its_own_span_and_failures_are_errors(
    exporter: InMemorySpanExporter, scheduler: CronScheduler, fake: FakeOpenAI
) -> None:
    store = scheduler.store
    jobs = await store.add_jobs([JobSpec(f"j{i}", "p", HOURLY, max_retries=0) for i in range(5)])
    fake.answer(Reply(status=400, content="bad request"))  # the first run asked fails
    runs = await asyncio.gather(*(scheduler.run_now(j) for j in jobs))
    spans = exporter.get_finished_spans()
    roots = _named(spans, "starpod_cron.run")
    assert sorted((r.attributes or {})["starpod_cron.run.id"] for r in roots) == sorted(
        r.id for r in runs
    )
    by_id = {(r.attributes or {})["starpod_cron.run.id"]: r for r in roots}
    for run in runs:
        root = by_id[run.id]
        failed = run.status is RunStatus.FAILED
        assert (root.status.status_code is StatusCode.ERROR) == failed
        children = [s for s in spans if s.parent and s.parent.span_id == root.context.span_id]
        assert len(children) == 1
    assert sum(r.status is RunStatus.FAILED for r in runs) == 1


def test_without_a_configured_sdk_nothing_is_traced_or_imported() -> None:
    import subprocess

    code = (
        "import sys; from starpod_cron import tracing; "
        "from datetime import datetime, UTC; "
        "from starpod_cron.store.types import Claim; "
        "tracing._look(); "
        "print(tracing._tracer is None, 'opentelemetry.trace' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", "False"], done.stderr
