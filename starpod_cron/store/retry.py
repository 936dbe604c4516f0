"""Retry of a finished run, pure: the job's retry fields set to the run's occurrence and the
next attempt, due now, as :func:`planning.hold` sets them for a held run. The claim then
inserts the retry run (``planning.plan_claim``'s retry branch, trigger ``retry``) through
the ordinary path, so the unique key ``runs_occurrence`` judges: two retries of one run, by
two requests or two nodes, make one run.
"""

from __future__ import annotations

from ..errors import RunNotRetryable
from ..models import RunStatus
from ..schedules import OneShot
from ..timeutil import from_ms
from .records import JobRecord, RunRecord

RETRYABLE = frozenset(
    {RunStatus.FAILED.value, RunStatus.TIMEOUT.value, RunStatus.INTERRUPTED.value}
)
"""The statuses a person may retry: a failure, a timeout, an interrupted run."""

_REFUSED = {
    RunStatus.SUCCESS.value: "succeeded: there is nothing to retry",
    RunStatus.RUNNING.value: "is still running: retry it once it has finished",
    RunStatus.SKIPPED.value: "was skipped, not run: use `jobs backfill` to run missed fires",
    RunStatus.HELD.value: "is held by its model provider: it runs again at the hold's end",
}


def plan_retry(job: JobRecord, run: RunRecord, latest_attempt: int | None, now: int) -> int:
    """Set ``job`` to run ``run``'s occurrence again as attempt ``run.attempt + 1``, due now;
    returns that attempt. ``latest_attempt``: the highest attempt recorded for the occurrence
    (held and manual runs aside). RunNotRetryable, ``job`` unchanged, when the run did not
    fail, was retried already, or the job is running, paused or has another retry pending.
    Asking twice before the claim is the same retry (the second answer is the first's)."""
    what = f"run {run.id} of '{job.name}'"
    if run.status not in RETRYABLE:
        raise RunNotRetryable(f"{what} {_REFUSED.get(run.status, 'cannot be retried')}")
    attempt = run.attempt + 1
    if latest_attempt is not None and latest_attempt >= attempt:
        raise RunNotRetryable(
            f"{what} was retried already (attempt {latest_attempt} of its occurrence exists): "
            "retry the newest attempt instead"
        )
    if job.held_until is not None:
        raise RunNotRetryable(
            f"'{job.name}' is held by its model provider until "
            f"{from_ms(job.held_until).isoformat()}: retry after that"
        )
    if job.retry_at is not None:
        if job.retry_scheduled_for == run.scheduled_for and job.retry_attempt == attempt:
            job.retry_at = min(job.retry_at, now)  # this retry, asked again: one run
            return attempt
        raise RunNotRetryable(
            f"'{job.name}' already has a retry pending at {from_ms(job.retry_at).isoformat()} "
            "(of another run): wait for it, then retry"
        )
    if job.running_count > 0:
        raise RunNotRetryable(f"'{job.name}' is running now: retry once its run has finished")
    if not job.enabled:
        finished_once = job.schedule_kind == OneShot.kind and job.next_run_at is None
        if job.paused_reason is not None or not finished_once:
            why = f" ({job.paused_reason})" if job.paused_reason else ""
            raise RunNotRetryable(f"'{job.name}' is paused{why}: resume it, then retry")
        job.enabled = True  # a one-shot that gave up: enabled for this retry only
    job.retry_at = now if job.next_run_at is None else min(now, job.next_run_at)
    job.retry_scheduled_for = run.scheduled_for
    job.retry_attempt = attempt
    job.updated_at = max(job.updated_at, now)
    return attempt
