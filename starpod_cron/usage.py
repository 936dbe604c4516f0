"""What runs cost and used, as every front end shows it (``jobs show``, ``status``,
``/api/usage``, the dashboard's usage table, ``/metrics``): the store's spend rows
(:meth:`~starpod_cron.store.CronStore.usage`) summed per job, per owner and in total, for
today, this month (each in its scope's zone: the job's, the owner's ``/tz`` else ``[cron]
timezone``, ``[cron] timezone``) and all time, with the budgets that apply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from .budget import ALL_TIME, UsageRow, period_start, short_usd
from .models import CronJob, CronRun, RunStatus
from .pricing import PICO, format_usd
from .store import CronStore
from .timeutil import to_ms

RECENT: Final = timedelta(days=32)
"""Day and month rows are read from this far back (this month's, in any zone)."""
PERIODS: Final = ("today", "month", "total")


@dataclass(frozen=True, slots=True)
class Spent:
    """Runs, tokens and cost summed over spend rows (``unpriced_runs``: runs whose cost is
    unknown, not in ``cost_pusd``)."""

    runs: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_pusd: int = 0
    unpriced_runs: int = 0

    @classmethod
    def of(cls, rows: Iterable[UsageRow]) -> Spent:
        found = list(rows)
        return cls(
            sum(r.runs for r in found),
            sum(r.prompt_tokens for r in found),
            sum(r.completion_tokens for r in found),
            sum(r.cost_pusd for r in found),
            sum(r.unpriced_runs for r in found),
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens": self.tokens,
            "cost_usd": self.cost_pusd / PICO,
            "unpriced_runs": self.unpriced_runs,
        }

    def words(self) -> str:
        """``$0.0040, 3,000 tokens, 2 runs`` (and ``1 of unknown cost``)."""
        text = f"{short_usd(self.cost_pusd)}, {self.tokens:,} tokens, {self.runs} runs"
        return text + (f" ({self.unpriced_runs} of unknown cost)" if self.unpriced_runs else "")


class Ledger:
    """The spend rows of one scope (job, owner or global), by key, read once."""

    def __init__(self, rows: Sequence[UsageRow]) -> None:
        self.rows = rows

    def spent(self, key: str, zone: str, now: datetime) -> dict[str, Spent]:
        """``key``'s spend today, this month (periods in ``zone``) and in total."""
        at = to_ms(now)
        day, month = period_start(at, zone, "day"), period_start(at, zone, "month")
        mine = [r for r in self.rows if r.key == key]
        return {
            "today": Spent.of(r for r in mine if r.period == "day" and _start(r) == day),
            "month": Spent.of(r for r in mine if r.period == "month" and _start(r) == month),
            "total": Spent.of(r for r in mine if r.period == ALL_TIME),
        }

    def models(self, keys: Iterable[str] | None = None) -> dict[str, Spent]:
        """All-time spend per model (``-`` for runs that asked none) of ``keys`` (None: all)."""
        wanted = None if keys is None else set(keys)
        found: dict[str, list[UsageRow]] = {}
        for r in self.rows:
            if r.period == ALL_TIME and (wanted is None or r.key in wanted):
                found.setdefault(r.model or "-", []).append(r)
        return {model: Spent.of(rows) for model, rows in sorted(found.items())}


def _start(row: UsageRow) -> int | None:
    return None if row.start is None else to_ms(row.start)


async def ledger(store: CronStore, scope: str, now: datetime, key: str | None = None) -> Ledger:
    """The rows of ``scope`` (and ``key``) for today, this month and all time."""
    recent = await store.usage(scope=scope, key=key, since=now - RECENT, limit=10**6)
    total = await store.usage(scope=scope, key=key, period=ALL_TIME, limit=10**6)
    return Ledger([r for r in recent if r.period != ALL_TIME] + total)


def spent_json(spent: dict[str, Spent]) -> dict[str, Any]:
    return {period: spent[period].json() for period in PERIODS}


def spent_words(spent: dict[str, Spent]) -> str:
    return "; ".join(
        f"{label} {spent[p].words()}"
        for label, p in (("today", "today"), ("this month", "month"), ("in total", "total"))
    )


def budget_words(job: CronJob) -> str:
    """``$0.50/day, 200,000 tokens/day`` or ``none``."""
    parts = []
    if job.budget_usd_per_day is not None:
        parts.append(f"${job.budget_usd_per_day:g}/day")
    if job.budget_usd_per_month is not None:
        parts.append(f"${job.budget_usd_per_month:g}/month")
    if job.budget_tokens_per_day is not None:
        parts.append(f"{job.budget_tokens_per_day:,} tokens/day")
    return ", ".join(parts) or "none"


async def usage_report(
    store: CronStore,
    jobs: Sequence[CronJob],
    now: datetime,
    *,
    owners: Sequence[str] | None,
    everyone: bool,
) -> dict[str, Any]:
    """Spend of ``jobs`` (each today and this month in its zone, and in total), of
    ``owners`` (None: every owner with spend) and, with ``everyone``, of all runs; with the
    all-time spend per model of what is shown."""
    settings = store.settings
    job_rows = await ledger(store, "job", now)
    owner_rows = await ledger(store, "owner", now)
    names = sorted({r.key for r in owner_rows.rows}) if owners is None else sorted(owners)
    zones = {o: await store.get_user_timezone(o) or settings.default_timezone for o in names}
    report: dict[str, Any] = {
        "jobs": [
            {
                "job_id": j.id,
                "job_name": j.name,
                "owner": j.user_id,
                **spent_json(job_rows.spent(j.id, j.timezone, now)),
            }
            for j in jobs
        ],
        "owners": [{"owner": o, **spent_json(owner_rows.spent(o, zones[o], now))} for o in names],
        "models": {
            m: s.json()
            for m, s in job_rows.models(None if everyone else [j.id for j in jobs]).items()
        },
        "total": None,
    }
    if everyone:
        everything = await ledger(store, "global", now)
        report["total"] = spent_json(everything.spent("", settings.default_timezone, now))
    return report


def run_cost_words(run: CronRun) -> str:
    """A run's cost in a table: ``$0.0020``, ``unknown`` (an unpriced model), ``-`` (running,
    or a run that never called anything: skipped, interrupted)."""
    if run.cost_usd is None:
        known = run.status in (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.TIMEOUT)
        return "unknown" if known else "-"
    return format_usd(round(run.cost_usd * PICO))
