"""What runs used and cost, as Prometheus counters read from the store at each scrape (so
every node shows the same totals, exact across nodes): ``starpod_cron_tokens_total`` (labels
job, owner, model, kind: ``prompt`` or ``completion``) and ``starpod_cron_cost_usd_total``
(job, owner, model; runs of unknown cost are not in it). Labels are bounded: a job's name, its
owner's id, a model's name (``-`` for runs that asked none); jobs removed leave the series."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, Metric

from starpod_cron import CronJob
from starpod_cron.budget import ALL_TIME, UsageRow


class SpendCounts:
    """Set :attr:`jobs` and :attr:`rows` (all-time spend per job and model) before each
    scrape; :meth:`collect` turns them into the two counters."""

    def __init__(self) -> None:
        self.jobs: Sequence[CronJob] = ()
        self.rows: Sequence[UsageRow] = ()

    def collect(self) -> Iterator[Metric]:
        tokens = CounterMetricFamily(
            "starpod_cron_tokens",
            "Tokens runs used, per job, owner, model and kind (prompt, completion)",
            labels=["job", "owner", "model", "kind"],
        )
        cost = CounterMetricFamily(
            "starpod_cron_cost_usd",
            "US dollars runs cost (priced models only), per job, owner and model",
            labels=["job", "owner", "model"],
        )
        jobs = {j.id: j for j in self.jobs}
        for row in self.rows:
            job = jobs.get(row.key)
            if row.period != ALL_TIME or job is None:
                continue
            labels = [job.name, job.user_id or "", row.model or "-"]
            tokens.add_metric([*labels, "prompt"], row.prompt_tokens)
            tokens.add_metric([*labels, "completion"], row.completion_tokens)
            cost.add_metric(labels, row.cost_usd)
        yield from (tokens, cost)
