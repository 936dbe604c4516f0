"""What a finished run says, decided inside the transaction that records it: a silent answer
and the job's ``notify`` policy, the counters they keep on the job and the hash ``on_change``
compares with. Pure: the job row as read in that transaction, the run, how it ended and the
settings in; the run's ``silent`` / ``suppressed`` and the job's counters out. Every node reads
the same job row under the same lock, so every node compares with the same hash.

The rules (README, "Notification policies and silent answers"):

- a success whose result is exactly ``[cron] silent_token`` (whitespace stripped) is silent:
  delivered nowhere, counted in ``silent_runs``; a one-shot is never silent (a reminder is
  always delivered unless its own ``notify`` says otherwise); the silent token wins over every
  policy, and leaves ``notify_hash`` alone;
- ``always``: everything is delivered; ``never``: nothing is;
- ``on_failure``: failed and timed-out runs are delivered, and the first success after one
  (the job's last status was failed or timeout) as *recovered*; other successes are not;
- ``on_change``: a success is delivered only when its result, trimmed and with whitespace
  collapsed, hashes (SHA-256) differently from the last delivered one (the first always is);
  failures are always delivered and never replace the hash (a failure is news, and the next
  success is compared with the last good result, not with an error);
- a run not delivered by its policy is counted in ``suppressed_runs``; interrupted runs are not
  delivered at all (as before) and decide nothing here.
"""

from __future__ import annotations

import hashlib

from ..models import CronJob, CronRun, NotifyPolicy, RunStatus
from ..schedules import OneShot
from ..settings import StoreSettings
from .records import JobRecord, RunRecord
from .types import Completion

SILENT = "silent answer"
NEVER = "notify=never"
SUCCEEDED = "notify=on_failure: succeeded"
UNCHANGED = "unchanged (notify=on_change)"

_DECIDED = frozenset({RunStatus.SUCCESS.value, RunStatus.FAILED.value, RunStatus.TIMEOUT.value})
_FAILED = frozenset({RunStatus.FAILED.value, RunStatus.TIMEOUT.value})


def normalized(text: str) -> str:
    """``text`` as ``on_change`` compares it: trimmed, every run of whitespace one space."""
    return " ".join(text.split())


def result_hash(text: str) -> str:
    """The SHA-256 (hex) of ``text`` normalised: what ``notify_hash`` holds."""
    return hashlib.sha256(normalized(text).encode("utf-8", "surrogatepass")).hexdigest()


def is_silent(text: str | None, token: str) -> bool:
    """Whether a result is the silent token (both stripped of surrounding whitespace)."""
    return text is not None and text.strip() == token.strip()


def settle(
    job: JobRecord | None, run: RunRecord, done: Completion, settings: StoreSettings
) -> None:
    """Decide ``run``'s ``silent`` / ``suppressed`` from ``job`` as it was before the run ended
    (call it before the job's state is advanced: ``on_failure`` reads its last status) and
    keep the job's counters and hash. Runs that are not delivered anyway (interrupted), and
    runs of a job that is gone, decide nothing."""
    status = str(done.status)
    if job is None or status not in _DECIDED:
        return
    success = status == RunStatus.SUCCESS
    one_shot = job.schedule_kind == OneShot.kind
    if success and not one_shot and is_silent(done.summary, settings.silent_token):
        run.silent = True
        run.suppressed = SILENT
        job.silent_runs += 1
        return
    policy = job.notify
    reason: str | None = None
    if policy == NotifyPolicy.NEVER:
        reason = NEVER
    elif policy == NotifyPolicy.ON_FAILURE:
        if success and job.last_status not in _FAILED:
            reason = SUCCEEDED
    elif policy == NotifyPolicy.ON_CHANGE and success:
        digest = result_hash(done.summary or "")
        if digest == job.notify_hash:
            reason = UNCHANGED
        else:
            job.notify_hash = digest
    if policy != NotifyPolicy.ON_CHANGE:
        job.notify_hash = None  # back on on_change later, its first result is delivered
    if reason is not None:
        run.suppressed = reason
        job.suppressed_runs += 1


def recovered(job: CronJob, run: CronRun) -> bool:
    """Whether a delivered run is the first success after a failure of an ``on_failure`` job
    (``job`` as it was before the run: the delivery planner's view), said as "recovered"."""
    return (
        job.notify is NotifyPolicy.ON_FAILURE
        and run.status is RunStatus.SUCCESS
        and run.suppressed is None
        and job.last_status in (RunStatus.FAILED, RunStatus.TIMEOUT)
    )
