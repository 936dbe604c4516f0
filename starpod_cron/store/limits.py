"""Jobs that pause, end and stop by themselves: the decisions of ``pause_after_failures``,
``start_at``/``end_at``, ``max_runs`` and ``stale_after``, made inside the transactions that
claim, finish, change and repair jobs. Pure, like :mod:`.planning` (whose state transitions
they follow): rows in, rows changed; what a run did to its job is its ``notice``, which the
delivery planner sends once to every destination of the job.

- **Failures in a row**: ``consecutive_failures`` counts occurrences whose final attempt failed
  or timed out (a failed attempt that will be retried does not count); a success resets it. At
  ``pause_after_failures`` the job is disabled with ``paused_reason`` and a notice.
- **Window**: no fire before ``start_at`` or after ``end_at`` (:func:`.occurrences.first_in_window`,
  applied by :func:`.planning.set_next`); a job with no fire left is disabled, reason "ended".
- **max_runs**: ``finished_runs`` counts occurrences whose final attempt ended (success,
  failed, timeout); at ``max_runs`` the job is disabled; meanwhile no new occurrence starts
  while the runs counted and in flight make ``max_runs`` (a retry of one does).
- **stale_after**: a scheduled run that would start later than this after its fire time is
  recorded ``skipped``; the first of a stretch of such skips tells the owner.
Manual runs (``jobs run``, ``run_now``) count for none of these.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ..jitter import fire_offset_ms
from ..models import RunStatus, RunTrigger
from ..schedules import OneShot
from ..timeutil import from_ms, zone
from . import planning
from .occurrences import next_ms
from .records import JobRecord, RunRecord

ENDED = "ended"
COUNTED = frozenset({RunStatus.SUCCESS.value, RunStatus.FAILED.value, RunStatus.TIMEOUT.value})
"""The statuses of a final attempt that ``max_runs`` counts."""
FAILED = frozenset({RunStatus.FAILED.value, RunStatus.TIMEOUT.value})
STALE = "stale"
"""``suppressed`` of a stale skip: its result (none) goes nowhere; its notice does."""
ERROR_IN_NOTICE = 300


def blocked(job: JobRecord, start: int) -> bool:
    """Whether claiming ``job`` at ``start`` would start an occurrence past ``max_runs`` (the
    runs counted and those in flight make it); a due retry is never blocked. A blocked fire
    is passed over: no run, nothing recorded, the job due at its next fire (its runs in
    flight decide: counted, the job stops; not counted, the next fire runs)."""
    if job.max_runs is None or job.finished_runs + job.running_count < job.max_runs:
        return False
    nxt = job.next_run_at
    if job.held_until is not None:  # a held occurrence resumes: not a new one
        return False
    if job.retry_at is not None and job.retry_at <= start and (nxt is None or job.retry_at <= nxt):
        return False
    if job.finished_runs >= job.max_runs:
        _stop(job, max_runs_reason(job))
    elif nxt is not None:
        planning.set_next(job, next_ms(job.schedule, job.timezone, max(start, nxt)))
    return True


def settle_claim(
    job: JobRecord, started: RunRecord | None, last_run_at: int | None, now: int
) -> RunRecord | None:
    """After :func:`.planning.plan_claim` planned ``started``: the run it becomes if it is
    stale (``skipped``, to record instead of starting; the job no longer counts it as running;
    ``last_run_at`` is the job's before the claim), else None. A scheduled run that starts in
    time ends a stretch of stale skips."""
    if started is None or started.trigger != RunTrigger.SCHEDULE:
        return None
    limit = job.stale_after_ms
    late = 0 if limit is None else started.started_at - started.scheduled_for
    if limit is not None and late > limit and job.jitter_ms > 0:  # late from its jittered time
        late -= fire_offset_ms(
            job.id, job.schedule, job.timezone, started.scheduled_for, job.jitter_ms
        )
    if limit is None or late <= limit:
        job.stale_streak = 0
        return None
    reason = f"{words_ms(late)} late, stale after {words_ms(limit)}"
    if job.stale_streak == 0:
        started.notice = f"your {_at(job, started.scheduled_for, now)} '{job.name}' was skipped: "
        started.notice += reason
    job.stale_streak += 1
    return skip_started(job, started, reason, last_run_at, STALE)


def skip_started(
    job: JobRecord, started: RunRecord, reason: str, last_run_at: int | None, why: str
) -> RunRecord:
    """Record ``started`` (planned by the claim) as ``skipped`` with ``reason`` instead of
    starting it (``why``: its ``suppressed``, a stale or budget skip); the job no longer
    counts it as running and keeps ``last_run_at``; a one-shot that cannot run is disabled."""
    started.status = RunStatus.SKIPPED.value
    started.completed_at = started.started_at
    started.duration_ms = 0
    started.lease_owner = started.lease_expires_at = None
    started.error = reason
    started.suppressed = why
    job.running_count = max(0, job.running_count - 1)
    if job.running_run_id == started.id:
        job.running_run_id = None
    job.last_run_at = last_run_at
    job.last_status = RunStatus.SKIPPED.value
    if job.schedule_kind == OneShot.kind and job.next_run_at is None:  # it cannot run now
        job.enabled = False
        job.last_error = f"one-shot skipped: {reason}"
    return started


def settle_skipped(job: JobRecord, skipped: Sequence[RunRecord]) -> None:
    """After a claim that started nothing: a job whose last fire was skipped and that has no
    fire left before its ``end_at`` stops now, the newest skipped run saying so."""
    if skipped and job.running_count == 0 and _ended(job):
        _stop(job, ENDED)
        _tell(skipped[-1], ended_notice(job))


def settle_finish(job: JobRecord, run: RunRecord) -> None:
    """After :func:`.planning.plan_finish` finished ``run``: count it (if it was its
    occurrence's final attempt) and stop the job when it reached ``max_runs``, failed
    ``pause_after_failures`` times in a row or has no fire left before its ``end_at``; the
    run's ``notice`` says which."""
    if run.trigger != RunTrigger.MANUAL and run.status in COUNTED and not _retrying(job, run):
        job.finished_runs += 1
        if run.status in FAILED:
            job.consecutive_failures += 1
        else:
            job.consecutive_failures = 0
    if not job.enabled:
        return
    if _exhausted(job):
        _stop(job, max_runs_reason(job))
        _tell(run, max_runs_notice(job))
    elif 0 < job.pause_after_failures <= job.consecutive_failures:
        _stop(job, f"paused after {job.consecutive_failures} failed runs in a row")
        _tell(run, pause_notice(job))
    elif job.running_count == 0 and _ended(job):
        _stop(job, ENDED)
        _tell(run, ended_notice(job))


def settle_update(job: JobRecord) -> None:
    """After :func:`.planning.apply_update`: an enabled job that has made its ``max_runs``,
    or has no fire left in its window, is saved disabled with the reason (not an error: a
    declaration synced at start-up may say ``enabled`` of a job that ended)."""
    if not job.enabled or job.running_count:
        return
    if _exhausted(job):
        _stop(job, max_runs_reason(job))
    elif _ended(job):
        _stop(job, ENDED)


def repair(job: JobRecord, now: int) -> bool:
    """:func:`.planning.repair` for a job with limits: one whose runs in flight or retry will
    decide waits for them; one that has made its ``max_runs`` or has no fire left is stopped
    with the reason. True if the job changed."""
    if job.end_at is not None and (job.running_count or job.retry_at is not None):
        return False
    if job.enabled and _exhausted(job):
        _stop(job, max_runs_reason(job))
        return True
    changed = planning.repair(job, now)
    if changed and not job.enabled and job.end_at is not None:
        job.paused_reason = ENDED
    return changed


def _retrying(job: JobRecord, run: RunRecord) -> bool:
    """Whether the job holds a retry of ``run`` (so its occurrence has not ended)."""
    return (
        job.retry_at is not None
        and job.retry_scheduled_for == run.scheduled_for
        and job.retry_attempt == run.attempt + 1
    )


def _exhausted(job: JobRecord) -> bool:
    return job.max_runs is not None and job.finished_runs >= job.max_runs


def _ended(job: JobRecord) -> bool:
    """An enabled job with a window, no next fire and nothing pending: its window is over."""
    return (
        job.enabled
        and job.next_run_at is None
        and job.retry_at is None
        and (job.end_at is not None or job.start_at is not None)
        and not (job.schedule_kind == OneShot.kind and job.last_run_at is not None)
    )


def _stop(job: JobRecord, reason: str) -> None:
    """Disable ``job`` by itself, as ``jobs disable`` would, saying why."""
    job.enabled = False
    job.paused_reason = reason
    planning.set_next(job, None)
    planning.clear_retry(job)


def _tell(run: RunRecord, notice: str) -> None:
    run.notice = notice if not run.notice else f"{run.notice}\n{notice}"


def max_runs_reason(job: JobRecord) -> str:
    return f"max_runs reached ({job.max_runs} runs)"


def _command(verb: str, job: JobRecord, rest: str = "") -> str:
    return f"`starpod-cron jobs {verb} {shlex.quote(job.name)}{rest}`"


def pause_notice(job: JobRecord) -> str:
    error = planning.cut(job.last_error, ERROR_IN_NOTICE) or "-"
    return (
        f"'{job.name}' paused after {job.consecutive_failures} failed runs in a row; "
        f"last error: {error}; resume with {_command('enable', job)}"
    )


def max_runs_notice(job: JobRecord) -> str:
    return (
        f"'{job.name}' has made its {job.max_runs} runs (max_runs) and is disabled; to run it "
        f"again, raise it: {_command('edit', job, ' --max-runs N')}"
    )


def ended_notice(job: JobRecord) -> str:
    end = "" if job.end_at is None else f" (end_at {_local(job, job.end_at)})"
    return (
        f"'{job.name}' has ended: no fire is left in its window{end}; it is disabled. To go "
        f"on, give it a later end: {_command('edit', job, ' --end-at TIME')}"
    )


def _local(job: JobRecord, ms: int) -> str:
    return from_ms(ms).astimezone(zone(job.timezone)).strftime("%Y-%m-%d %H:%M %Z")


def _at(job: JobRecord, fire: int, now: int) -> str:
    """A fire time as the owner knows it: ``09:00`` in the job's zone (with the date when it
    is not today's)."""
    tz = zone(job.timezone)
    local, today = from_ms(fire).astimezone(tz), from_ms(now).astimezone(tz)
    return local.strftime("%H:%M" if local.date() == today.date() else "%Y-%m-%d %H:%M")


_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000))


def words_ms(ms: int) -> str:
    """A duration as people read it: ``2 h 40 min``, ``1 h``, ``45 s`` (its two largest
    units; below a second, ``0 s``)."""
    parts: list[str] = []
    rest = max(0, ms)
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        if count or parts:
            if count:
                parts.append(f"{count} {unit}")
            if len(parts) == 2 or (parts and not count):
                break
    return " ".join(parts[:2]) or "0 s"
