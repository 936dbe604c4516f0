"""Job operations on behalf of someone, with the rules every front end shares: ownership (a
user touches only their own jobs; ids and names never resolve across owners; answers never
reveal another user's job) and per-user limits. The WebSocket server, the Telegram bot, the
HTTP API and the agent tools are thin adapters over this class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import jobfields
from .access import Principal
from .bounds import YEAR, check_fields, whole, within
from .declared import check_editable, check_switchable
from .destinations import Destinations
from .durations import at_time, describe_ms, duration_ms
from .errors import AmbiguousJobName, InvalidInput, JobNotFound, LimitExceeded, RunNotFound
from .inputrules import check_text
from .jobfields import JobFields
from .models import UNSET, CronJob, CronRun, JobSpec, JobUpdate
from .preview import HISTORY, Preview, PreviewSettings, preview_job
from .schedules import Cron, Interval, Schedule
from .store import CronStore, planning
from .timeutil import check_zone, from_ms, to_ms

MAX_NAME_QUERY = 200
NO_SCHEDULER = (
    "no scheduler is running on this store (no heartbeat from `starpod-cron serve` or a "
    "CronScheduler): the job fires only once one runs"
)
Runner = Callable[[str], Awaitable[CronRun]]
"""Runs a job now by id and returns the recorded run (``CronScheduler.run_now``)."""
Backfiller = Callable[[str, datetime, datetime, int], Awaitable[list[CronRun]]]
"""Runs a job's past occurrences without a run (job id, from, to, limit) and returns the runs
(``CronScheduler.backfill``)."""
MAX_BACKFILL = 1_000_000


@dataclass(frozen=True, slots=True)
class UserLimits:
    """Limits for non-admin users (``[gateway]`` in ``agent.toml``); admins have none."""

    max_jobs_per_user: int = field(default=50, metadata=whole(0, 1_000_000, note="0: no limit"))
    """0: no limit. Counted in the store's add transaction (concurrent adds cannot pass it)."""
    min_interval_secs: float = field(default=60, metadata=within(0, YEAR, note="a year"))
    max_prompt_chars: int = field(default=4000, metadata=whole(1, 64 * 1024))

    def __post_init__(self) -> None:
        check_fields(self)


def shortest_gap_secs(schedule: Schedule, tz: str, now: datetime) -> float | None:
    """The shortest time between two fires of ``schedule`` (None for a one-shot): exact for
    intervals and the seconds of a cron expression, sampled over its next 500 fires beyond."""
    if isinstance(schedule, Interval):
        return schedule.every_ms / 1000
    if not isinstance(schedule, Cron):
        return None
    gaps: list[float] = []
    cursor = now
    previous = schedule.next_run(cursor, tz)
    for _ in range(500):
        if previous is None:
            break
        following = schedule.next_run(previous, tz)
        if following is None:
            break
        gaps.append((following - previous).total_seconds())
        previous = following
    return min(gaps) if gaps else None


class JobOperations:
    def __init__(
        self,
        store: CronStore,
        runner: Runner | None = None,
        limits: UserLimits | None = None,
        backfiller: Backfiller | None = None,
        preview: PreviewSettings | None = None,
        *,
        destinations: Destinations | None = None,
    ) -> None:
        """``preview``: what previews need of ``agent.toml`` (the executor's model call,
        ``[pricing]``); without it a preview knows no model and no prices."""
        self.store = store
        self.runner = runner
        self.limits = limits or UserLimits()
        self.backfiller = backfiller
        self.preview_settings = preview or PreviewSettings()
        self.destinations = destinations or Destinations()
        """``[destinations.NAME]``: what ``deliver_to`` / ``alerts_to`` may name, for whom."""

    def now(self) -> datetime:
        return from_ms(self.store.clock.now_ms())

    async def default_zone(self, who: Principal) -> str:
        if who.user_id:
            chosen = await self.store.get_user_timezone(who.user_id)
            if chosen:
                return chosen
        return self.store.settings.default_timezone

    async def set_default_zone(self, who: Principal, zone_name: str) -> str:
        if who.user_id is None:
            raise InvalidInput("only a user has a default time zone")
        check_zone(zone_name)
        await self.store.set_user_timezone(who.user_id, zone_name)
        return zone_name

    # ------------------------------------------------------------------ lookups
    async def find(self, who: Principal, name_or_id: object) -> CronJob:
        """The job ``who`` means: by name among their own jobs, else by id if it is theirs.
        Admins may name any job (an ambiguous name asks for the id). JobNotFound otherwise,
        with the same words whether the job is missing or someone else's."""
        if not isinstance(name_or_id, str) or not name_or_id.strip():
            raise InvalidInput("name the job")
        check_text("the job's name", name_or_id)
        if len(name_or_id) > MAX_NAME_QUERY:
            raise JobNotFound(f"no job named {name_or_id[:40]!r}…")
        job = await self.store.get_job_by_name(name_or_id, who.user_id)
        if job is None and who.admin:
            named = await self.store.find_jobs_by_name(name_or_id)
            if len(named) > 1:
                owners = ", ".join(j.user_id or "agent" for j in named)
                raise AmbiguousJobName(
                    f"{len(named)} jobs are named {name_or_id!r} (owners: {owners}); use the job id"
                )
            job = named[0] if named else None
        if job is None:
            by_id = await self.store.get_job(name_or_id)
            if by_id is not None and who.may_touch(by_id):
                job = by_id
        if job is None or not who.may_touch(job):
            raise JobNotFound(f"no job named {name_or_id!r}")
        return job

    async def list_jobs(self, who: Principal) -> list[CronJob]:
        if who.admin:
            return await self.store.list_jobs()
        if who.user_id is None:
            return []
        return await self.store.list_jobs_for_user(who.user_id)

    # ------------------------------------------------------------------ changes
    async def add(
        self, who: Principal, fields: JobFields, origin: dict[str, Any] | None = None
    ) -> CronJob:
        spec = await self.new_spec(who, fields, origin)
        limit = None if who.admin else self.limits.max_jobs_per_user or None
        # counted in the store's own transaction: concurrent adds cannot pass the limit
        job_id = (await self.store.add_jobs([spec], max_jobs_per_owner=limit))[0]
        job = await self.store.get_job(job_id)
        assert job is not None
        return job

    async def new_spec(
        self, who: Principal, fields: JobFields, origin: dict[str, Any] | None = None
    ) -> JobSpec:
        """The job ``add`` would create for ``who``, with the same rules and limits (nothing
        is written; the preview shows it)."""
        user_id = who.user_id
        if fields.user_id is not None:
            if not who.admin:
                raise InvalidInput("only an admin can create jobs for another user")
            user_id = fields.user_id
        tz = fields.timezone or await self.default_zone(who)
        self._check_destinations(who, fields, origin)
        spec = jobfields.job_spec(
            fields, now=self.now(), default_timezone=tz, user_id=user_id, origin=origin
        )
        if not who.admin:
            self._check_prompt(spec.prompt)
            self._check_schedule(spec.schedule, spec.timezone or tz)
        return spec

    async def preview(
        self,
        who: Principal,
        fields: JobFields,
        *,
        name: str | None = None,
        origin: dict[str, Any] | None = None,
    ) -> Preview:
        """What the job ``add`` would create (``name`` None), or job ``name`` as ``update``
        would leave it, would do when it runs: checked by the same rules, nothing saved, the
        model not called (:mod:`starpod_cron.preview`)."""
        now = self.now()
        if name is None:
            spec = await self.new_spec(who, fields, origin)
            job = planning.new_job(spec, to_ms(now), self.store.settings).to_public()
            history: list[CronRun] = []
            previous: tuple[str | None, datetime | None] = (None, None)
        else:
            saved, update = (
                (await self.find(who, name), JobUpdate())
                if fields.is_empty()
                else await self.new_update(who, name, fields)
            )
            job = await self.store.updated_job(saved.id, update)
            history = await self.store.list_runs(job.id, HISTORY)
            previous = await self.store.job_memory(job.id)
        return preview_job(
            job, self.preview_settings, self.store.settings, now=now, history=history,
            previous=previous,
        )  # fmt: skip

    async def scheduler_warning(self) -> str | None:
        """What an answer to a job added now warns of (every front end asks here): that no
        scheduler is up on the store (:data:`NO_SCHEDULER`), or None."""
        return None if await self.store.schedulers_up() else NO_SCHEDULER

    async def update(self, who: Principal, name: str, fields: JobFields) -> CronJob:
        job, update = await self.new_update(who, name, fields)
        return await self.store.update_job(job.id, update)

    async def new_update(
        self, who: Principal, name: str, fields: JobFields
    ) -> tuple[CronJob, JobUpdate]:
        """The job ``update`` would change and the change, with the same rules and limits
        (nothing is written; the preview shows it)."""
        job = await self.find(who, name)
        check_editable(job)
        user_id: Any = UNSET
        if fields.user_id is not None:
            if not who.admin:
                raise InvalidInput("only an admin can give a job to another user")
            user_id = fields.user_id
        self._check_destinations(who, fields, job.origin)
        update = jobfields.job_update(fields, job, now=self.now(), user_id=user_id)
        if not who.admin:
            if isinstance(update.prompt, str):
                self._check_prompt(update.prompt)
            if isinstance(update.schedule, Schedule):
                zone_name = update.timezone if isinstance(update.timezone, str) else job.timezone
                self._check_schedule(update.schedule, zone_name)
        return job, update

    async def set_enabled(self, who: Principal, name: str, enabled: bool) -> CronJob:
        job = await self.find(who, name)
        check_switchable(job, enabled)
        if enabled:
            return await self.store.enable_job(job.id)
        return await self.store.disable_job(job.id)

    async def snooze(self, who: Principal, name: str, duration: object) -> CronJob:
        """Move the job's next fire once, ``duration`` later (``1h``, ``30m``: from its fire
        time, not from now), leaving its schedule alone. NothingToSnooze if it is paused or
        has no next fire; a job declared in code or agent.toml may be snoozed (its
        declaration is unchanged)."""
        job = await self.find(who, name)
        return await self.store.snooze_job(job.id, duration_ms(duration))

    async def remove(self, who: Principal, name: str) -> CronJob:
        job = await self.find(who, name)
        check_editable(job)
        await self.store.remove_job(job.id)
        return job

    async def run(self, who: Principal, name: str) -> CronRun:
        job = await self.find(who, name)
        if self.runner is None:
            raise InvalidInput("running jobs now is not available here")
        return await self.runner(job.id)

    async def retry(self, who: Principal, run_id: object) -> tuple[CronJob, datetime, int]:
        """Run a failed, timed-out or interrupted run's occurrence again as its next attempt
        (trigger ``retry``) through the ordinary claim, so asking twice, from two nodes too,
        makes one run (:meth:`CronStore.retry_run`). Returns the job, the occurrence and
        the attempt. RunNotFound (also for another user's run: nothing revealed);
        RunNotRetryable when its state refuses it."""
        if not isinstance(run_id, str) or not run_id.strip():
            raise InvalidInput("give the id of the run to retry")
        check_text("the run's id", run_id)
        run = None if len(run_id) > MAX_NAME_QUERY else await self.store.get_run(run_id)
        job = None if run is None else await self.store.get_job(run.job_id)
        if run is None or job is None or not who.may_touch(job):
            raise RunNotFound(f"no run {run_id[:40]!r}")
        return await self.store.retry_run(run.id)

    async def backfill(
        self,
        who: Principal,
        name: str,
        start: object,
        end: object,
        *,
        dry_run: bool = False,
        limit: object = None,
    ) -> tuple[CronJob, list[datetime], list[CronRun]]:
        """Run once each past occurrence of the job in [``start``, ``end``] (times as people
        type them, read in the job's zone; "now") that has no recorded run; with ``dry_run``
        only list them. Returns the job, the occurrences (to run, or run) and the runs.
        Above ``[cron] backfill_limit`` occurrences (or ``limit``: only admins may pass the
        setting) it is InvalidInput and nothing runs."""
        job = await self.find(who, name)
        first, last = self._instant("from", start, job), self._instant("to", end, job)
        bound = self.store.settings.backfill_limit
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise InvalidInput(f"--max must be a whole number from 1 to {MAX_BACKFILL:,}")
            if limit > MAX_BACKFILL or (limit > bound and not who.admin):
                most = MAX_BACKFILL if who.admin else bound
                raise LimitExceeded(
                    f"--max {limit:,} is above {most:,}, the most you may backfill at once "
                    "([cron] backfill_limit); narrow --from/--to"
                )
            bound = limit
        planned = await self.store.backfill_occurrences(job.id, first, last, limit=bound)
        if dry_run or not planned:
            return job, planned, []
        if self.backfiller is None:
            raise InvalidInput("backfill is not available here (it needs a scheduler)")
        runs = await self.backfiller(job.id, first, last, bound)
        return job, [r.scheduled_for for r in runs], runs

    def _instant(self, which: str, value: object, job: CronJob) -> datetime:
        """A backfill bound: ISO 8601, "today 9:00", "tomorrow 9:00" (in the job's zone), or
        "now"."""
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise InvalidInput(f"--{which} must be an aware time (with its zone)")
            return value
        if isinstance(value, str) and value.strip().lower() == "now":
            return self.now()
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"give --{which} as a time, e.g. '2026-12-01 09:00' or 'now'")
        try:
            return at_time(value, job.timezone, self.now()).instant(job.timezone)
        except InvalidInput as exc:
            raise InvalidInput(f"--{which}: {exc}") from None

    async def runs(self, who: Principal, name: str, limit: object = 10) -> list[CronRun]:
        return (await self.job_runs(who, name, limit))[1]

    async def job_runs(
        self, who: Principal, name: str, limit: object = 10
    ) -> tuple[CronJob, list[CronRun]]:
        """The job called ``name`` and its newest ``limit`` runs (1-200)."""
        job = await self.find(who, name)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidInput(f"limit must be a whole number from 1 to 200, got {limit!r}")
        return job, await self.store.list_runs(job.id, max(1, min(limit, 200)))

    # ------------------------------------------------------------------ limits
    def _check_destinations(
        self, who: Principal, fields: JobFields, origin: dict[str, Any] | None
    ) -> None:
        """``deliver_to`` / ``alerts_to`` name declared destinations ``who`` may use; the
        chat of ``origin`` (where they are writing from) is theirs to name."""
        chat = (origin or {}).get("telegram_chat_id")
        chat = chat if isinstance(chat, int) and not isinstance(chat, bool) else None
        for entries in (fields.deliver_to, fields.alerts_to):
            if entries:
                given = [e.strip() for e in entries if isinstance(e, str) and e.strip()]
                self.destinations.check(who.user_id, who.admin, given, chat)

    def _check_prompt(self, prompt: str) -> None:
        limit = self.limits.max_prompt_chars
        if len(prompt) > limit:
            raise LimitExceeded(
                f"the prompt is {len(prompt)} characters; users may send at most {limit} "
                "([gateway] max_prompt_chars)"
            )

    def _check_schedule(self, schedule: Schedule, tz: str) -> None:
        minimum = self.limits.min_interval_secs
        if not minimum:
            return
        gap = shortest_gap_secs(schedule, tz, self.now() - timedelta(seconds=1))
        if gap is not None and gap < minimum:
            raise LimitExceeded(
                f"this schedule fires every {describe_ms(round(gap * 1000))} at times; users may "
                f"repeat jobs at most every {describe_ms(round(minimum * 1000))} "
                "([gateway] min_interval_secs)"
            )
