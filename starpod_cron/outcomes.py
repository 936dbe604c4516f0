"""How a run ended -> what the store records: one pure decision (no I/O, no clock, no logging).

The scheduler observes a run's end (:class:`RunEnd`: where it was, why the scheduler cancelled
it, what the executor answered) and :func:`completion` turns it into the
:class:`~starpod_cron.store.types.Completion` to record: its status, whether a retry is skipped
(``permanent``) or delayed (``retry_after_secs``), and whether it uses up an attempt
(``count_attempt``: a run handed back before its executor was called does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import JobError, ProviderHeld
from .models import HANDED_BACK, JobResult, RunStatus
from .store.types import Completion

Reason = Literal["timeout", "stopping", "lease_lost", "spent"]
"""Why the scheduler cancelled a run: its job's timeout, a stop, or its lease was lost; or
why it never called its executor: ``spent``, a budget spent by the time a run claimed ahead
was due (the store recorded it skipped)."""

Phase = Literal["waiting", "calling", "retrying"]
"""Where a run was: ``waiting`` before its first executor call (for its fire time or a free
slot), ``calling`` in an executor call (or returned from it), ``retrying`` between calls after
a provider answered "saturated" (asleep in its ``Retry-After``, or waiting for a slot again)."""

LATE_MS = 50
"""A call ending this long after its deadline overran it (the event loop was blocked)."""

NOT_STARTED = (
    f"{HANDED_BACK}the scheduler stopped before the run started (before its fire time, or "
    "while it waited for a free slot)"
)
NOT_RETRIED = (
    f"{HANDED_BACK}the scheduler stopped while the run waited to call a saturated provider again"
)
NOT_FINISHED = "interrupted: the scheduler stopped before the run finished"
CANCELLED_ELSEWHERE = "the executor was cancelled by something other than the scheduler"


@dataclass(frozen=True, slots=True)
class RunEnd:
    """What the scheduler saw when a run ended.

    ``finished`` is False for a run abandoned because its executor ignored cancellation;
    ``cancelled``, ``error`` and ``result`` describe how its task ended otherwise (``result``
    is whatever the executor returned); ``overrun_ms`` is how long after its deadline it ended.
    """

    run_id: str
    timeout_secs: float
    phase: Phase
    reason: Reason | None = None
    finished: bool = True
    cancelled: bool = False
    error: BaseException | None = None
    result: object = None
    overrun_ms: int = 0


def completion(end: RunEnd) -> Completion:
    """The completion to record for ``end`` (a lease-lost run is never recorded: not here)."""
    run_id, timeout = end.run_id, end.timeout_secs
    blocked = end.overrun_ms > LATE_MS  # the watchdog could not fire: the loop was blocked
    if blocked and end.reason is None and end.phase != "waiting" and end.finished:
        error = (
            f"timed out: ran {timeout + end.overrun_ms / 1000:.1f}s, over its timeout of "
            f"{timeout:g}s, while blocking the event loop"
        )
        return Completion(run_id, RunStatus.TIMEOUT, error=error)
    if end.reason == "timeout":
        return Completion(run_id, RunStatus.TIMEOUT, error=f"timed out after {timeout:g}s")
    if isinstance(end.error, ProviderHeld) and end.reason is None:  # before or after a call
        return Completion(
            run_id,
            RunStatus.HELD,
            error=str(end.error),
            retry_after_secs=end.error.retry_after,
            count_attempt=False,
        )
    if end.phase == "waiting":
        return _handed_back(run_id, NOT_STARTED)
    if end.phase == "retrying" and (end.reason == "stopping" or not end.finished):
        return _handed_back(run_id, NOT_RETRIED)
    if not end.finished or (end.cancelled and end.reason == "stopping"):
        return _handed_back(run_id, NOT_FINISHED)
    if end.cancelled:
        return Completion(run_id, RunStatus.FAILED, error=CANCELLED_ELSEWHERE)
    failure = end.error
    if failure is None:
        result = end.result
        if not isinstance(result, JobResult):
            text = f"TypeError: executor returned {type(result).__name__}, expected JobResult"
            return Completion(run_id, RunStatus.FAILED, error=text)
        return Completion(
            run_id,
            RunStatus.SUCCESS,
            summary=result.summary,
            session_id=result.session_id,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            model=result.model,
            usages=result.usages,
        )
    text = failure_text(failure)
    if isinstance(failure, JobError):
        return Completion(
            run_id,
            RunStatus.FAILED,
            error=text,
            permanent=failure.permanent,
            retry_after_secs=failure.retry_after,
        )
    return Completion(run_id, RunStatus.FAILED, error=text)


def failure_text(error: BaseException) -> str:
    """How an executor's exception reads in the run's ``error``."""
    return f"{type(error).__name__}: {error}"


def _handed_back(run_id: str, error: str) -> Completion:
    """Interrupted without using up an attempt: retried at once (or at its fire time)."""
    return Completion(run_id, RunStatus.INTERRUPTED, error=error, count_attempt=False)
