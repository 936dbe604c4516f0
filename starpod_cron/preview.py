"""The preview of a job (``jobs add/edit --dry-run``, the ``cron_preview`` tool, the
dashboard's live preview; one definition, :meth:`JobOperations.preview
<starpod_cron.operations.JobOperations.preview>` feeds it): what its runs would do, without
saving anything and without calling the model. The model and its fallbacks, the system prompt
and the messages a run sends (context included), the tools allowed, the destinations, the
next 5 fires in the job's zone with DST notes, and the expected tokens and dollars per run
and per month: from the job's own history when it has runs with usage, else input ≈ UTF-8
bytes / 4 plus ``[pricing] default_output_tokens``, marked as an estimate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cronsim import CronSim

from .destinations import Destinations
from .execfields import RUN_TOOL_NAMES
from .models import CronJob, CronRun, JobContext, ModelOptions, RunStatus, RunTrigger
from .pricing import PricingConfig, estimate_input_tokens, format_usd
from .routing import DeliveryRouter
from .runprompt import ModelDefaults, allowed_tools, run_messages
from .schedules import Cron, OneShot, Schedule
from .settings import StoreSettings
from .timeutil import zone
from .views import job_fires

if TYPE_CHECKING:
    from .config import AgentConfig

FIRES = 5
HISTORY = 20
"""The most recent runs with usage the expected tokens and cost are averaged over."""
MONTH = timedelta(days=30)
MONTH_SAMPLE = 10_000
"""Fires counted one by one for "per month"; beyond, the rate of these is extrapolated."""


@dataclass(frozen=True, slots=True)
class PreviewSettings:
    """What a preview needs of ``agent.toml``: ``[executor]``'s model call (None: the
    executor asks no model), ``allow_scheduling_from_runs``, ``[pricing]`` and the Telegram
    chats agent-level jobs notify."""

    defaults: ModelDefaults | None = None
    all_tools_by_default: bool = False
    pricing: PricingConfig = field(default_factory=PricingConfig)
    notify_chat_ids: tuple[int, ...] = ()
    destinations: Destinations = field(default_factory=Destinations)

    @classmethod
    def of(cls, config: AgentConfig) -> PreviewSettings:
        ex = config.executor
        defaults = None
        if ex.kind == "openai":
            defaults = ModelDefaults(ex.model, ex.system_prompt, ex.temperature, ex.max_tokens)
        return cls(
            defaults,
            ex.allow_scheduling_from_runs,
            config.pricing,
            tuple(config.telegram.notify_chat_ids),
            config.destinations,
        )


@dataclass(frozen=True, slots=True)
class Fire:
    at: datetime
    note: str | None = None
    """A DST note: ``2027-03-28 02:30 does not exist: fires at 03:00``."""


@dataclass(frozen=True, slots=True)
class Preview:
    job: CronJob
    model: str | None
    fallback_models: tuple[str, ...]
    escalate_to: str | None
    messages: list[dict[str, Any]]
    tools: list[str]
    destinations: list[str]
    fires: list[Fire]
    input_tokens: int
    output_tokens: int
    estimated: bool
    """True: no run with usage yet; the tokens are the bytes / 4 rule's."""
    cost_per_run: int | None
    """Picodollars (None: the model has no price)."""
    runs_per_month: int
    cost_per_month: int | None

    def json(self) -> dict[str, Any]:
        tz = zone(self.job.timezone)
        return {
            "dry_run": True,
            "job_name": self.job.name,
            "model": self.model,
            "fallback_models": list(self.fallback_models),
            "escalate_to": self.escalate_to,
            "system_prompt": self.messages[0]["content"] if self.model else None,
            "messages": self.messages,
            "tools": self.tools,
            "destinations": self.destinations,
            "timezone": self.job.timezone,
            "next_runs": [f.at.astimezone(tz).isoformat() for f in self.fires],
            "dst_notes": [f.note for f in self.fires if f.note],
            "tokens_per_run": {
                "input": self.input_tokens,
                "output": self.output_tokens,
                "estimate": self.estimated,
            },
            "cost_per_run": format_usd(self.cost_per_run),
            "runs_per_month": self.runs_per_month,
            "cost_per_month": format_usd(self.cost_per_month),
        }

    def lines(self) -> list[str]:
        tz = zone(self.job.timezone)
        model = self.model or "none (the executor asks no model)"
        out = [f"Model: {model}"]
        if self.fallback_models:
            out.append(f"Fallback models: {', '.join(self.fallback_models)}")
        if self.escalate_to:
            out.append(f"Escalates to: {self.escalate_to}")
        out.append(f"Tools allowed: {', '.join(self.tools) or 'none'}")
        out.append(f"Destinations: {', '.join(self.destinations) or 'none'}")
        out.append(f"Messages a run sends ({len(self.messages)}):")
        for message in self.messages:
            text = str(message["content"]).replace("\n", "\n      ")
            out.append(f"  [{message['role']}] {text}")
        out.append(f"Next fires ({self.job.timezone}):")
        for fire in self.fires:
            note = f"  ({fire.note})" if fire.note else ""
            out.append(f"  {fire.at.astimezone(tz).strftime('%Y-%m-%d %H:%M %Z')}{note}")
        how = "estimate" if self.estimated else f"average of its last {HISTORY} runs at most"
        if self.model is None:
            how = "no model asked"
        out.append(
            f"Per run: {self.input_tokens} input + {self.output_tokens} output tokens ({how}), "
            f"{format_usd(self.cost_per_run)}"
        )
        out.append(f"Per month: {self.runs_per_month} runs, {format_usd(self.cost_per_month)}")
        return out


def preview_job(
    job: CronJob,
    settings: PreviewSettings,
    store_settings: StoreSettings,
    *,
    now: datetime,
    history: Sequence[CronRun] = (),
    previous: tuple[str | None, datetime | None] = (None, None),
) -> Preview:
    """The preview of ``job`` (saved or not) at ``now``; ``history``: its recent runs,
    ``previous``: the result a ``context = "last"`` run is handed (and when it ended, ms)."""
    options = ModelOptions.given(
        job.model,
        job.system_prompt,
        job.temperature,
        job.max_tokens,
        job.fallback_models,
        job.escalate_to,
        job.tools,
    )
    fires = [Fire(at, dst_note(job.schedule, job.timezone, at)) for at in job_fires(job, FIRES)]
    allowed = allowed_tools(options, settings.all_tools_by_default)
    tools = sorted(RUN_TOOL_NAMES if allowed is None else allowed)
    ctx = JobContext(
        prompt=job.prompt,
        session_mode=job.session_mode,
        job_name=job.name,
        job_id=job.id,
        user_id=job.user_id,
        run_id="(preview)",
        attempt=1,
        scheduled_for=fires[0].at if fires else now,
        one_shot=isinstance(job.schedule, OneShot),
        previous_result=previous[0],
        previous_at=previous[1],
        options=options,
    )
    defaults = settings.defaults
    if defaults is None:
        model, messages = None, [{"role": "user", "content": job.prompt}]
    else:
        model = defaults.model_of(options)
        messages = run_messages(
            ctx,
            defaults,
            silent_token=store_settings.silent_token,
            escalate_token=store_settings.escalate_token,
            tools=bool(tools),
        )
    tokens_in, tokens_out, per_run, estimated = _expected(model, messages, history, settings)
    monthly = runs_per_month(job, now)
    return Preview(
        job,
        model,
        options.fallback_models if model else (),
        options.escalate_to if model else None,
        messages,
        tools if model else [],
        destinations(job, settings),
        fires,
        tokens_in,
        tokens_out,
        estimated,
        per_run,
        monthly,
        None if per_run is None else per_run * monthly,
    )


def _expected(
    model: str | None,
    messages: list[dict[str, Any]],
    history: Sequence[CronRun],
    settings: PreviewSettings,
) -> tuple[int, int, int | None, bool]:
    """Input and output tokens and picodollars per run, and whether they are an estimate."""
    if model is None:
        return 0, 0, 0, False
    used = [
        r
        for r in history
        if r.status is RunStatus.SUCCESS
        and r.prompt_tokens is not None
        and r.completion_tokens is not None
    ][:HISTORY]
    pricing = settings.pricing
    if used:
        tokens_in = round(sum(r.prompt_tokens or 0 for r in used) / len(used))
        tokens_out = round(sum(r.completion_tokens or 0 for r in used) / len(used))
        costs = [pricing.cost(r.usages) if r.usages else None for r in used]
        if all(c is not None for c in costs):
            return tokens_in, tokens_out, round(sum(c or 0 for c in costs) / len(costs)), False
        return tokens_in, tokens_out, pricing.estimate(model, tokens_in, tokens_out), False
    tokens_in = estimate_input_tokens("".join(str(m["content"]) for m in messages))
    tokens_out = pricing.default_output_tokens
    return tokens_in, tokens_out, pricing.estimate(model, tokens_in, tokens_out), True


def destinations(job: CronJob, settings: PreviewSettings) -> list[str]:
    """Where a run's result goes: what the delivery planner
    (:class:`~starpod_cron.routing.DeliveryRouter`) gives a delivered success: the automatic
    audience and the job's ``deliver_to`` destinations."""
    router = DeliveryRouter(
        notify_chat_ids=settings.notify_chat_ids,
        finished_events=False,
        destinations=settings.destinations,
    )
    at = job.created_at
    sample = CronRun(
        "(preview)", job.id, job.name, at, at, at, RunStatus.SUCCESS, 1,
        RunTrigger.SCHEDULE, "", None, None, 0,
    )  # fmt: skip
    return list(dict.fromkeys(spec.destination for spec in router(job, sample)))


def runs_per_month(job: CronJob, now: datetime) -> int:
    """The fires of ``job`` in the 30 days from ``now`` (extrapolated past
    :data:`MONTH_SAMPLE` fires)."""
    end, cursor, count = now + MONTH, now, 0
    schedule = job.schedule
    while count < MONTH_SAMPLE:
        nxt = schedule.next_run(cursor, job.timezone)
        if nxt is None or nxt > end:
            return count
        count, cursor = count + 1, nxt
    return round(count * MONTH / (cursor - now))


def dst_note(schedule: Schedule, tz: str, at: datetime) -> str | None:
    """What the zone's clock change does to the fire at ``at``: a wall time that does not
    exist (``2027-03-28 02:30 does not exist: fires at 03:00``) or one that happens twice.
    None for any other fire, and for intervals (which follow real time)."""
    if not isinstance(schedule, Cron):
        return None
    z = zone(tz)
    local = at.astimezone(z)
    wall = local.replace(tzinfo=None)
    before = (at - timedelta(seconds=1)).astimezone(z)
    gap = (local.utcoffset() or timedelta()) - (before.utcoffset() or timedelta())
    if gap > timedelta():
        minute_expr = schedule._fields()[0]
        start = wall - gap - timedelta(minutes=1)
        meant = next(iter(CronSim(minute_expr, start)))
        if meant < wall:
            return f"{meant:%Y-%m-%d %H:%M} does not exist: fires at {local:%H:%M}"
        return None
    first, second = wall.replace(tzinfo=z, fold=0), wall.replace(tzinfo=z, fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    which = "the first" if local.fold == 0 else "the second"
    return (
        f"{wall:%Y-%m-%d %H:%M} happens twice (the clocks go back): this is {which}, "
        f"{local:%H:%M%z}"
    )
