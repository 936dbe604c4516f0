"""Cost, spend and budgets inside the store's transactions (pure: rows in, decisions out).

- **Cost** (:func:`run_cost`): a finished run's picodollars from its completion's usages (or,
  with none but a model and token counts, one usage of that model); no model and no tokens
  (a command) costs 0; an unpriced model or unreported tokens: unknown (None).
- **Spend** (:class:`SpendBook`): the completing transaction adds each run's tokens and known
  cost to the ``spend`` rows of its job, its owner and everyone, for the day and the month
  (periods from midnight / the 1st in the job's zone, the owner's ``/tz`` zone else
  ``[cron] timezone``, ``[cron] timezone``), per model; upserted, so exact across nodes. All
  time is the sum of the months (the ``usage_rows`` query adds them up).
- **Budgets** (:class:`BudgetCheck`): the claim records a scheduled run ``skipped`` instead of
  starting it while the committed spend of one of its budgets for the period is not under
  the budget ("a run starts only while spent < budget"); the first skip of a budget's period
  carries the owner's ``notice`` (:data:`TELL` marks it told, once across nodes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ..budget import Period, Scope, amount, period_start
from ..models import ModelUsage, RunStatus, RunTrigger
from ..pricing import PricingConfig, picodollars
from ..settings import StoreSettings
from . import limits
from .records import JobRecord, RunRecord
from .types import Completion

SPEND_COLUMNS: Final = (
    "scope",
    "key",
    "model",
    "day_ms",
    "month_ms",
    "runs",
    "prompt_tokens",
    "completion_tokens",
    "cost_pusd",
    "unpriced",
)
"""The values of one row of :meth:`SpendBook.rows`, in order: a scope's key and model with the
starts of its day and month, and what it adds. ``add_spend`` spreads each over the ``spend``
rows of the day and the month, so the client sends one row per scope, not two."""
BUDGET_SKIP: Final = "budget"
"""``suppressed`` of a budget skip: no result to deliver; its notice (the first) is."""
GLOBAL_KEY: Final = ""

SpendKey = tuple[str, str, str, int]
"""(scope, key, period, period start ms) of a budget's spend."""


def usages_of(done: Completion) -> tuple[ModelUsage, ...]:
    """What ``done`` used: its usages, or one usage of its model when it reported only token
    counts; nothing for a run with no model (a command)."""
    if done.usages:
        return done.usages
    if done.model is not None:
        return (ModelUsage(done.model, done.prompt_tokens, done.completion_tokens),)
    return ()


def run_cost(done: Completion, pricing: PricingConfig) -> int | None:
    """Picodollars of the run ``done`` ended (None: unknown). Tokens without a model are an
    unknown cost (never 0)."""
    usages = usages_of(done)
    if not usages and (done.prompt_tokens or done.completion_tokens):
        return None
    return pricing.cost(usages)


def owner_zone(owner: str | None, zones: Mapping[str, str], settings: StoreSettings) -> str:
    return (zones.get(owner) if owner else None) or settings.default_timezone


_NOTHING_USED: Final = ModelUsage("", None, None)
"""What a run that reported no usage and no tokens counts under (model "", a run, no cost)."""


@dataclass
class SpendBook:
    """The spend rows one completing transaction adds, summed per row key.

    Runs are summed per (scope, key, zone, instant, model) as they are added; :meth:`rows`
    gives each sum the starts of its day and month in that zone (worked out once per zone and
    instant, not per run), and ``add_spend`` spreads it over the periods (day, month) in SQL:
    the client sends one row per scope, not two."""

    settings: StoreSettings
    owner_zones: Mapping[str, str]
    _sums: dict[tuple[str, str, str, int, str], list[int]] = field(default_factory=dict)

    def add(self, job: JobRecord | None, run: RunRecord, done: Completion, now: int) -> None:
        """Count ``run`` (ended by ``done`` at ``now``) and set its ``cost_pusd``."""
        usages = usages_of(done)
        if done.status == RunStatus.INTERRUPTED and not usages:
            return  # handed back or cut off: no call we know of (its cost stays unknown)
        pricing = self.settings.spend.pricing
        if not usages and not (done.prompt_tokens or done.completion_tokens):
            run.cost_pusd = 0  # a command, the echo executor: a run, nothing spent
            parts: list[tuple[ModelUsage, int | None]] = [(_NOTHING_USED, 0)]
        else:
            run.cost_pusd = run_cost(done, pricing)
            # per model asked; a run with no model but tokens (a python executor reporting
            # them) counts its tokens and an unknown cost under model "" (as the run says)
            parts = [(u, pricing.cost((u,))) for u in usages] or [
                (ModelUsage("", done.prompt_tokens, done.completion_tokens), run.cost_pusd)
            ]
        sums = self._sums
        for scope, key, zone_name in self._scopes(job, run):
            for n, (usage, cost) in enumerate(parts):
                row = sums.get((scope, key, zone_name, now, usage.model))
                if row is None:
                    row = sums[(scope, key, zone_name, now, usage.model)] = [0] * 5
                row[0] += 1 if n == 0 else 0
                row[1] += usage.prompt_tokens or 0
                row[2] += usage.completion_tokens or 0
                row[3] += cost or 0
                row[4] += 1 if cost is None else 0

    def _scopes(self, job: JobRecord | None, run: RunRecord) -> list[tuple[str, str, str]]:
        default = self.settings.default_timezone
        scopes = [("job", run.job_id, default if job is None else job.timezone)]
        if job is not None and job.user_id is not None:
            zone_name = owner_zone(job.user_id, self.owner_zones, self.settings)
            scopes.append(("owner", job.user_id, zone_name))
        scopes.append(("global", GLOBAL_KEY, default))
        return scopes

    def rows(self) -> list[tuple[object, ...]]:
        """One row per scope, key, model and instant (:data:`SPEND_COLUMNS`), in key order:
        ``add_spend`` writes its periods in (scope, key, model, period, start) order, so every
        writer locks the ``spend`` rows in the same order."""
        starts: dict[tuple[int, str], tuple[int, int]] = {}
        rows: list[tuple[object, ...]] = []
        for (scope, key, zone_name, now, model), sums in self._sums.items():
            periods = starts.get((now, zone_name))
            if periods is None:
                periods = starts[(now, zone_name)] = (
                    period_start(now, zone_name, "day"),
                    period_start(now, zone_name, "month"),
                )
            rows.append((scope, key, model, *periods, *sums))
        rows.sort()
        return rows


@dataclass(frozen=True, slots=True)
class Limit:
    """One budget of a run: what it limits, for which period, and how it reads."""

    budget: str
    """The budget's name in ``budget_notices`` (e.g. ``job:usd:day``)."""
    setting: str
    scope: Scope
    key: str
    who: str
    period: Period
    start_ms: int
    tokens: bool
    limit: int
    """Tokens, or picodollars."""

    @property
    def spend_key(self) -> SpendKey:
        return (self.scope, self.key, self.period, self.start_ms)


def limits_of(
    job: JobRecord, at: int, settings: StoreSettings, owner_zones: Mapping[str, str]
) -> list[Limit]:
    """The budgets a run of ``job`` starting at ``at`` must be under."""
    found: list[Limit] = []

    def add(setting: str, scope: Scope, key: str, who: str, period: Period, tz: str) -> None:
        value = getattr(job, setting) if scope == "job" else None
        if scope == "owner":
            value = settings.spend.owner_budget(key)
        elif scope == "global":
            value = settings.budget_usd_per_day
        if value is None:
            return
        tokens = "tokens" in setting
        limit = int(value) if tokens else picodollars(value)
        unit = "tokens" if tokens else "usd"
        start = period_start(at, tz, period)
        found.append(
            Limit(
                f"{scope}:{unit}:{period}", setting, scope, key, who, period, start, tokens, limit
            )
        )

    job_who = f"job '{job.name}'"
    add("budget_usd_per_day", "job", job.id, job_who, "day", job.timezone)
    add("budget_usd_per_month", "job", job.id, job_who, "month", job.timezone)
    add("budget_tokens_per_day", "job", job.id, job_who, "day", job.timezone)
    if job.user_id is not None:
        tz = owner_zone(job.user_id, owner_zones, settings)
        add("user_budget_usd_per_month", "owner", job.user_id, f"user '{job.user_id}'", "month", tz)
    add("budget_usd_per_day", "global", GLOBAL_KEY, "all jobs", "day", settings.default_timezone)
    return found


def budgeted(jobs: Iterable[JobRecord], settings: StoreSettings) -> bool:
    """Whether any of ``jobs`` has a budget to check (else the claim reads no spend)."""
    if settings.budget_usd_per_day is not None:
        return True
    owners = settings.spend.owners_limited
    return any(
        j.budget_usd_per_day is not None
        or j.budget_usd_per_month is not None
        or j.budget_tokens_per_day is not None
        or (owners and j.user_id is not None)
        for j in jobs
    )


_WHEN = {"day": "today", "month": "this month"}
_UNTIL = {"day": "midnight", "month": "the 1st"}


@dataclass(frozen=True, slots=True)
class Told:
    """A budget skip whose run tells the owner, if it is the first of its budget's period."""

    job: JobRecord
    run: RunRecord
    limit: Limit
    notice: str


@dataclass
class BudgetCheck:
    """The budgets of the jobs one claim may start, against the spend committed so far."""

    settings: StoreSettings
    owner_zones: Mapping[str, str]
    spent: Mapping[SpendKey, tuple[int, int]]
    """(tokens, picodollars) per budget period read in the claim transaction."""
    told: list[Told] = field(default_factory=list)

    def settle_claim(
        self, job: JobRecord, started: RunRecord | None, last_run_at: int | None
    ) -> RunRecord | None:
        """``started`` recorded ``skipped`` when one of its budgets is spent (else None)."""
        if started is None or started.trigger == RunTrigger.MANUAL:
            return None
        for limit in limits_of(job, started.started_at, self.settings, self.owner_zones):
            tokens, cost = self.spent.get(limit.spend_key, (0, 0))
            spent = tokens if limit.tokens else cost
            if spent < limit.limit:
                continue
            when = _WHEN[limit.period]
            words = f"{amount(spent, limit.tokens)} of {amount(limit.limit, limit.tokens)} {when}"
            reason = f"budget: {words} for {limit.who}"
            limits.skip_started(job, started, reason, last_run_at, BUDGET_SKIP)
            started.cost_pusd = 0
            notice = (
                f"{limit.who} has spent its budget ({limit.setting}): {words}; its runs are "
                f"skipped until {_UNTIL[limit.period]}"
            )
            self.told.append(Told(job, started, limit, notice))
            return started
        return None


def spend_params(
    jobs: Sequence[JobRecord], settings: StoreSettings, owner_zones: Mapping[str, str], at: int
) -> dict[str, object]:
    """The parameters of ``spend_for_budgets`` for a claim of ``jobs`` at ``at``: their ids,
    owners and the earliest period start any of their budgets needs."""
    starts = [
        period_start(at, tz, "month")
        for tz in {
            settings.default_timezone,
            *(j.timezone for j in jobs),
            *(owner_zone(j.user_id, owner_zones, settings) for j in jobs),
        }
    ]
    return {
        "since": min(starts),
        "jobs": sorted({j.id for j in jobs}),
        "owners": sorted({j.user_id for j in jobs if j.user_id is not None}),
    }
