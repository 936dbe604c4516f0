"""The preview (issue 25): what a job's runs would do, without saving and without calling the
model; its price matches the cost of the run that follows (the OpenAI-compatible stand-in
reporting usage); DST notes; the cron_preview tool and ``jobs edit --dry-run`` over the same
definition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from starpod_cron import CronScheduler, CronStore, Schedule
from starpod_cron.access import LOCAL_ADMIN
from starpod_cron.config import ExecutorConfig
from starpod_cron.executors import build_executor
from starpod_cron.jobfields import JobFields
from starpod_cron.operations import JobOperations
from starpod_cron.preview import PreviewSettings, dst_note
from starpod_cron.pricing import ModelPrice, PricingConfig, format_usd
from starpod_cron.runprompt import ModelDefaults
from starpod_cron.tools import call_tool
from tests.openai_standin import Reply, running_openai

ROME = "Europe/Rome"


@pytest.mark.parametrize(
    ("expr", "fire", "note"),
    [
        ("30 2 * * *", datetime(2027, 3, 28, 1, 0, tzinfo=UTC),
         "2027-03-28 02:30 does not exist: fires at 03:00"),
        ("30 2 * * *", datetime(2027, 3, 29, 0, 30, tzinfo=UTC), None),
        ("30 2 * * *", datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
         "2027-10-31 02:30 happens twice (the clocks go back): this is the first, 02:30+0200"),
        ("30 * * * *", datetime(2027, 10, 31, 1, 30, tzinfo=UTC),
         "2027-10-31 02:30 happens twice (the clocks go back): this is the second, 02:30+0100"),
        ("0 3 * * *", datetime(2027, 3, 28, 1, 0, tzinfo=UTC), None),  # 03:00 exists
    ],
)  # fmt: skip
def test_dst_notes(expr: str, fire: datetime, note: str | None) -> None:
    assert dst_note(Schedule.cron(expr), ROME, fire) == note


PRICES = PricingConfig(models={"gpt-4o-mini": ModelPrice(0.15, 0.60)})


async def test_the_previews_price_matches_the_run_that_follows(store: CronStore) -> None:
    async with running_openai() as fake:
        fake.count_usage = True
        fake.answer(Reply(content="x" * 2000))  # about default_output_tokens (500)
        defaults = ModelDefaults("gpt-4o-mini", "You are a scheduled agent run.")
        ops = JobOperations(store, preview=PreviewSettings(defaults, pricing=PRICES))
        fields = JobFields(name="digest", prompt="Summarize the night's alerts " * 20, every="1h")
        before = await ops.preview(LOCAL_ADMIN, fields)
        assert await store.list_jobs() == []  # nothing saved
        assert fake.requests == []  # the model not called
        assert before.estimated and before.model == "gpt-4o-mini"
        assert before.runs_per_month == 720
        assert before.messages[-1] == {"role": "user", "content": fields.prompt}

        job = await ops.add(LOCAL_ADMIN, fields)
        config = ExecutorConfig(
            kind="openai", base_url=fake.base_url, model="gpt-4o-mini", api_key_env="",
            system_prompt="You are a scheduled agent run.",
        )  # fmt: skip
        executor = build_executor(config, store)
        try:
            run = await CronScheduler(store, executor).run_now(job.id)
        finally:
            await executor.aclose()
        (sent,) = fake.requests
        assert [m["role"] for m in sent["messages"]] == [m["role"] for m in before.messages]
        cost = PRICES.cost(run.usages)
        assert cost is not None and before.cost_per_run is not None
        assert abs(before.cost_per_run - cost) <= cost / 10, (before.cost_per_run, cost)

        after = await ops.preview(LOCAL_ADMIN, JobFields(), name="digest")  # from its history
        assert not after.estimated and after.cost_per_run == cost
        assert after.cost_per_month == cost * 720
        text = "\n".join(after.lines())
        assert f"{format_usd(cost)}" in text and "estimate" not in text


async def test_cron_preview_shows_a_change_without_making_it(store: CronStore) -> None:
    ops = JobOperations(store, preview=PreviewSettings(ModelDefaults("m"), pricing=PRICES))
    job = await ops.add(
        LOCAL_ADMIN, JobFields(name="d", prompt="p", cron="30 2 * * *", timezone=ROME)
    )
    answer = await call_tool(
        ops,
        "cron_preview",
        {"job": "d", "model": "mystery", "fallback_models": ["gpt-4o-mini"], "tools": []},
    )
    assert (answer["model"], answer["fallback_models"]) == ("mystery", ["gpt-4o-mini"])
    assert answer["cost_per_run"] == answer["cost_per_month"] == "cost unknown"
    assert answer["tools"] == [] and answer["destinations"] == ["ws:agent"]
    assert answer["tokens_per_run"]["estimate"] is True
    assert len(answer["next_runs"]) == 5 and answer["timezone"] == ROME
    assert "Model: mystery" in answer["message"]
    saved = await store.get_job(job.id)
    assert saved is not None and saved.model is None  # unchanged
    new = await call_tool(
        ops, "cron_preview", {"prompt": "q", "every": "1h", "model": "gpt-4o-mini"}
    )
    assert new["cost_per_run"].startswith("$") and new["runs_per_month"] == 720
    assert len(await store.list_jobs()) == 1
