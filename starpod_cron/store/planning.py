"""Pure job state transitions shared by every backend: what a claim, a completion, an update
or a recovery does to a job row. Backends load rows, call these, and write the rows back in the
same transaction. No I/O and no clock: ``now`` (epoch ms) is always passed in; the only outside
input is randomness for new ids (ids.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInput
from ..jitter import fire_offset_ms
from ..models import JobUpdate, MisfirePolicy, Overlap, RunStatus, RunTrigger, _Unset
from ..schedules import Interval, OneShot, Schedule
from ..settings import StoreSettings
from ..timeutil import from_ms, to_ms, zone
from . import validation as check
from .ids import new_id as new_id
from .occurrences import count_between, first_in_window, in_window, next_ms
from .records import JobRecord, RunRecord, new_record, usages_json
from .types import Completion, JobSpec

RESULT_LIMIT = 256 * 1024
ERROR_LIMIT = 8 * 1024


def new_job(spec: JobSpec, now: int, settings: StoreSettings) -> JobRecord:
    """Validate ``spec`` and build its row; raises before anything is written."""
    values = check.spec_columns(spec, settings)
    check.overlap_rules(values["overlap"], values["max_instances"], values["misfire_policy"])
    sched, first = check.first_fire(check.schedule(spec.schedule), values["timezone"], now)
    first = check.window_first(
        sched, values["timezone"], now, first, values["start_at"], values["end_at"]
    )
    job = new_record(new_id(now), now, values)
    job.set_schedule(sched)
    set_next(job, first if job.enabled else None)
    return job


def set_next(job: JobRecord, next_ms: int | None) -> None:
    """Set the job's next occurrence and the jitter it fires with (see :mod:`..jitter`); a
    fire after the job's ``end_at`` is none."""
    next_ms = job.next_run_at = in_window(next_ms, job.end_at)
    if next_ms is None or job.jitter_ms <= 0:
        job.fire_offset_ms = 0
    else:
        job.fire_offset_ms = fire_offset_ms(
            job.id, job.schedule, job.timezone, next_ms, job.jitter_ms
        )


def clear_retry(job: JobRecord) -> None:
    job.retry_at = None
    job.retry_scheduled_for = None
    job.retry_attempt = 0
    job.retry_count = 0
    job.held_until = None


def apply_update(job: JobRecord, update: JobUpdate, now: int) -> None:
    """Apply ``update`` to ``job`` (validated first: on error ``job`` is unchanged)."""
    u = update
    values = check.update_columns(u, skip=("timezone", "enabled"))
    check.overlap_rules(
        values.get("overlap", job.overlap),
        values.get("max_instances", job.max_instances),
        values.get("misfire_policy", job.misfire_policy),
    )
    tz = job.timezone if isinstance(u.timezone, _Unset) else check.timezone(u.timezone)
    enabled = job.enabled if isinstance(u.enabled, _Unset) else check.flag("enabled", u.enabled)
    sched: Schedule = job.schedule
    window = values.get("start_at", job.start_at), values.get("end_at", job.end_at)
    check.window_order(*window)
    timing_changed = window != (job.start_at, job.end_at)
    if not isinstance(u.schedule, _Unset):
        sched = check.schedule(u.schedule)
        timing_changed = True
    if tz != job.timezone:
        timing_changed = True
    newly_enabled = enabled and not job.enabled
    new_schedule = not isinstance(u.schedule, _Unset)
    need_fire = enabled and (timing_changed or newly_enabled)
    next_run_at = job.next_run_at if enabled else None
    if need_fire or new_schedule:
        if isinstance(sched, Interval) and new_schedule:
            sched = sched.anchored(now)
        sched, first = check.first_fire(sched, tz, now)  # it must still fire
        if need_fire:
            unbounded = window == (None, None)
            next_run_at = first if unbounded else first_in_window(sched, tz, now, *window)
    for key, value in values.items():
        setattr(job, key, value)
    job.timezone = tz
    job.set_schedule(sched)
    set_next(job, next_run_at)
    if newly_enabled or not enabled:
        clear_retry(job)
    if newly_enabled:  # a resumed job starts counting afresh (see limits.py)
        job.consecutive_failures = job.stale_streak = 0
        job.paused_reason = None
    job.enabled = enabled
    job.updated_at = now


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    run: RunRecord | None
    skipped: RunRecord | None


def start_run(
    job: JobRecord,
    trigger: RunTrigger,
    scheduled_for: int,
    attempt: int,
    now: int,
    owner: str,
    lease_until: int,
    alive_at: int | None = None,
) -> RunRecord:
    """The run row of a claim: it starts at ``now`` (a fire time, for a run claimed ahead) and
    its owner was last seen alive at ``alive_at`` (the claim time; ``now`` by default)."""
    run = RunRecord(
        id=new_id(now),
        job_id=job.id,
        job_name=job.name,
        trigger=trigger.value,
        scheduled_for=scheduled_for,
        attempt=attempt,
        started_at=now,
        completed_at=None,
        status=RunStatus.RUNNING.value,
        lease_owner=owner,
        lease_expires_at=lease_until,
        result_summary=None,
        error=None,
        session_id=None,
        duration_ms=None,
        prompt_tokens=None,
        completion_tokens=None,
        lease_renewed_at=now if alive_at is None else alive_at,
    )
    job.running_run_id = run.id
    job.running_count += 1
    job.last_run_at = now
    job.run_count += 1
    return run


MISSED_UNRUN = "while no scheduler ran; misfire_policy=skip"


def _skipped_run(
    job: JobRecord,
    first: int,
    last: int,
    count: int,
    capped: bool,
    now: int,
    why: str = MISSED_UNRUN,
) -> RunRecord:
    many = f"about {count:,}" if capped else str(count)
    span = from_ms(first).isoformat()
    if last != first:
        span += f" to {from_ms(last).isoformat()}"
    job.run_count += 1
    return RunRecord(
        id=new_id(now),
        job_id=job.id,
        job_name=job.name,
        trigger=RunTrigger.SCHEDULE.value,
        scheduled_for=first,
        attempt=1,
        started_at=now,
        completed_at=now,
        status=RunStatus.SKIPPED.value,
        lease_owner=None,
        lease_expires_at=None,
        result_summary=None,
        error=f"missed {many} occurrence(s) ({span}) {why}",
        session_id=None,
        duration_ms=0,
        prompt_tokens=None,
        completion_tokens=None,
    )


def plan_claim(
    job: JobRecord,
    now: int,
    owner: str,
    lease_until: int,
    grace_ms: int,
    claimed_at: int | None = None,
    queue_limit: int = 100,
) -> ClaimPlan:
    """Claim the due occurrence of ``job`` (which must be due at ``now``: the start time, a
    fire time when claimed ahead at ``claimed_at``); mutates ``job``.

    A job whose stored schedule or zone can no longer be evaluated (say, a zone removed from
    the tz database) is disabled with ``last_error`` instead of blocking every other claim.
    """
    try:
        return _plan_claim(job, now, owner, lease_until, grace_ms, claimed_at, queue_limit)
    except (InvalidInput, OverflowError) as exc:
        job.enabled = False
        job.last_error = f"disabled: its schedule can no longer be evaluated: {exc}"
        job.updated_at = max(job.updated_at, now)
        return ClaimPlan(run=None, skipped=None)


def _plan_claim(
    job: JobRecord,
    now: int,
    owner: str,
    lease_until: int,
    grace_ms: int,
    claimed_at: int | None,
    queue_limit: int,
) -> ClaimPlan:
    if job.held_until is not None and job.retry_at is not None:
        return ClaimPlan(run=_resume_held(job, now, owner, lease_until, claimed_at), skipped=None)
    if (
        job.retry_at is not None
        and job.retry_at <= now
        and (job.next_run_at is None or job.retry_at <= job.next_run_at)
    ):
        scheduled_for = job.retry_scheduled_for if job.retry_scheduled_for is not None else now
        attempt = max(job.retry_attempt, 2)
        job.retry_at = None
        job.retry_scheduled_for = None
        job.retry_attempt = 0
        run = start_run(
            job, RunTrigger.RETRY, scheduled_for, attempt, now, owner, lease_until, claimed_at
        )
        return ClaimPlan(run=run, skipped=None)

    assert job.next_run_at is not None and job.next_run_at <= now, "job is not due"
    if job.retry_at is not None:  # a regular fire comes before the retry: it supersedes it
        clear_retry(job)
    sched, tz, first = job.schedule, job.timezone, job.next_run_at
    following = next_ms(sched, tz, first)
    horizon = now if job.end_at is None else min(now, job.end_at)  # no fire after end_at
    if following is None or following > horizon:
        latest, count, capped = first, 1, False
        set_next(job, following)
    elif job.overlap == Overlap.QUEUE:
        return _plan_queued(job, first, now, owner, lease_until, claimed_at, queue_limit)
    else:
        set_next(job, next_ms(sched, tz, now))
        latest_dt = sched.latest_run(from_ms(horizon), tz)
        latest = max(first, to_ms(latest_dt)) if latest_dt is not None else first
        count, capped = 0, False  # counted only where it matters: misfire_policy = "skip"

    skipped = None
    if job.misfire_policy == MisfirePolicy.SKIP:
        if count == 0:
            count, capped = count_between(sched, tz, first, latest)
        if now - latest - _jitter_of(job, latest) > grace_ms:  # even the latest is stale
            job.last_status = RunStatus.SKIPPED.value
            if job.next_fire_ms is None:  # a one-shot that can no longer run
                job.enabled = False
                job.last_error = "one-shot missed while no scheduler ran (misfire_policy=skip)"
            return ClaimPlan(run=None, skipped=_skipped_run(job, first, latest, count, capped, now))
        if count > 1:  # run the latest fire, record the older ones as skipped
            before = sched.latest_run(from_ms(latest - 1), tz)
            last_missed = max(first, to_ms(before)) if before is not None else first
            skipped = _skipped_run(job, first, last_missed, count - 1, capped, now)
    run = start_run(job, RunTrigger.SCHEDULE, latest, 1, now, owner, lease_until, claimed_at)
    return ClaimPlan(run=run, skipped=skipped)


def _resume_held(
    job: JobRecord, now: int, owner: str, lease_until: int, claimed_at: int | None
) -> RunRecord:
    """The hold is over (the job is due at ``held_until``, before any fire): its held
    occurrence runs again with the attempt number it had (a first attempt stays a scheduled
    run; its fires missed meanwhile follow, as after any late run)."""
    scheduled_for = job.retry_scheduled_for if job.retry_scheduled_for is not None else now
    attempt = max(job.retry_attempt, 1)
    trigger = RunTrigger.SCHEDULE if attempt == 1 else RunTrigger.RETRY
    job.retry_at = job.retry_scheduled_for = job.held_until = None
    job.retry_attempt = 0
    return start_run(job, trigger, scheduled_for, attempt, now, owner, lease_until, claimed_at)


def hold(job: JobRecord, run: RunRecord, done: Completion, now: int) -> None:
    """A run the provider held (its quota is spent, or its wait is longer than the run's
    timeout): not a failure and not a retry; the job waits until the hold's end, then runs the
    same occurrence with the same attempt number. The run's error says until when (in the
    job's zone) and why; its notice tells the owner, once per hold."""
    until = now + max(0, round((done.retry_after_secs or 0) * 1000))
    local = from_ms(until).astimezone(zone(job.timezone))
    today = from_ms(now).astimezone(zone(job.timezone)).date()
    at = local.strftime("%H:%M" if local.date() == today else "%Y-%m-%d %H:%M")
    why = cut(done.error or "provider limit", ERROR_LIMIT - 32) or ""
    run.error = f"held until {at}: {why}"
    run.notice = f"'{job.name}' is held until {at} by its model provider ({why}); it runs then"
    if run.trigger in _OFF_SCHEDULE:  # a manual run is not run again by itself
        return
    job.held_until = job.retry_at = until
    job.retry_scheduled_for = run.scheduled_for
    job.retry_attempt = run.attempt


def _plan_queued(
    job: JobRecord,
    first: int,
    now: int,
    owner: str,
    lease_until: int,
    claimed_at: int | None,
    queue_limit: int,
) -> ClaimPlan:
    """``overlap = "queue"`` with several fires missed (the job was running, or no scheduler
    ran): run the oldest of the newest ``queue_limit`` of them, and leave the job due at the
    next one, so they all run in order; fires older than those are recorded as one skipped
    run. Walks back from ``now`` at most ``queue_limit`` fires."""
    sched, tz = job.schedule, job.timezone
    kept: list[int] = []
    cursor = now if job.end_at is None else min(now, job.end_at)  # no fire after end_at
    while len(kept) < queue_limit:
        fire = sched.latest_run(from_ms(cursor), tz)
        if fire is None or (at := to_ms(fire)) < first:
            break
        kept.append(at)
        cursor = at - 1
    oldest = kept[-1] if kept else first
    skipped = None
    if oldest > first:
        before = sched.latest_run(from_ms(oldest - 1), tz)
        last_dropped = max(first, to_ms(before)) if before is not None else first
        count, capped = count_between(sched, tz, first, last_dropped)
        why = f"while more than queue_limit ({queue_limit}) fires were waiting; overlap=queue"
        skipped = _skipped_run(job, first, last_dropped, count, capped, now, why)
    set_next(job, next_ms(sched, tz, oldest))
    run = start_run(job, RunTrigger.SCHEDULE, oldest, 1, now, owner, lease_until, claimed_at)
    return ClaimPlan(run=run, skipped=skipped)


def _jitter_of(job: JobRecord, nominal: int) -> int:
    """The jitter of the job's occurrence at ``nominal`` (lateness counts from its fire time)."""
    if job.jitter_ms <= 0:
        return 0
    return fire_offset_ms(job.id, job.schedule, job.timezone, nominal, job.jitter_ms)


def backoff_ms(settings: StoreSettings, retry_number: int) -> int:
    delays = settings.retry_backoff_secs or (30,)
    return round(delays[min(retry_number, len(delays)) - 1] * 1000)


def _give_up(job: JobRecord) -> None:
    clear_retry(job)
    if job.schedule_kind == OneShot.kind and job.next_run_at is None:
        job.enabled = False


def cut(text: str | None, limit: int) -> str | None:
    """``text`` shortened to ``limit`` characters (a character boundary), marked with '…'."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def plan_finish(
    job: JobRecord | None,
    run: RunRecord,
    done: Completion,
    now: int,
    settings: StoreSettings,
) -> str | None:
    """Finish ``run`` and advance ``job``; returns "update", "delete" or None (no job)."""
    status = RunStatus(done.status)
    run.status = status.value
    run.completed_at = now
    run.duration_ms = max(0, now - run.started_at)
    run.result_summary = cut(done.summary, RESULT_LIMIT)
    run.error = cut(done.error, ERROR_LIMIT)
    run.session_id = done.session_id
    run.prompt_tokens = done.prompt_tokens
    run.completion_tokens = done.completion_tokens
    run.model = done.model
    run.usages = usages_json(done.usages)
    run.lease_owner = None
    run.lease_expires_at = None
    if job is None or not _in_flight(job, run):
        return None
    job.running_count = max(0, job.running_count - 1)
    if job.running_run_id == run.id or job.running_count == 0:
        job.running_run_id = None
    job.last_status = status.value
    job.updated_at = max(job.updated_at, now)
    success = status is RunStatus.SUCCESS
    if status is RunStatus.HELD:
        hold(job, run, done, now)
        return "update"
    if run.trigger in _OFF_SCHEDULE:  # never retried, never moves the schedule
        job.last_error = None if success else run.error
        return "update"
    if success:
        job.last_error = None
        clear_retry(job)
        if job.schedule_kind == OneShot.kind and job.next_run_at is None:
            if job.delete_after_run:
                return "delete"
            job.enabled = False
        return "update"

    job.last_error = run.error or f"run ended with status {status.value}"
    if status is RunStatus.INTERRUPTED and not done.count_attempt:
        job.retry_at = max(now, run.started_at)  # a run claimed ahead keeps its fire time
        job.retry_scheduled_for = run.scheduled_for
        job.retry_attempt = run.attempt + 1
        return "update"
    if done.permanent or job.retry_count >= job.max_retries:
        _give_up(job)
        return "update"
    job.retry_count += 1
    delay = 0 if status is RunStatus.INTERRUPTED else backoff_ms(settings, job.retry_count)
    if done.retry_after_secs is not None:
        delay = max(delay, round(done.retry_after_secs * 1000))
    job.retry_at = now + delay
    job.retry_scheduled_for = run.scheduled_for
    job.retry_attempt = run.attempt + 1
    return "update"


_OFF_SCHEDULE = frozenset({RunTrigger.MANUAL.value, RunTrigger.BACKFILL.value})


def _in_flight(job: JobRecord, run: RunRecord) -> bool:
    """Whether ``run`` (still ``running`` in the store, so never finished or recovered) counts
    among ``job``'s runs in flight: its latest, or any while some are counted (several with
    ``overlap = "allow"``, also after the job was switched back to one at a time)."""
    return job.running_run_id == run.id or job.running_count > 0


def repair(job: JobRecord, now: int) -> bool:
    """Give an enabled, idle recurring job without a next fire one; True if changed.

    A recurring schedule that can never fire again disables the job with ``last_error``.
    """
    if not job.enabled or job.next_run_at is not None or job.schedule_kind == OneShot.kind:
        return False
    nxt = first_in_window(job.schedule, job.timezone, now, job.start_at, job.end_at)
    if nxt is None:
        job.enabled = False
        job.last_error = "schedule never fires again; job disabled"
    set_next(job, nxt)
    job.updated_at = max(job.updated_at, now)
    return True
