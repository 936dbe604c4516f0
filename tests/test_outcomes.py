"""How a run ended -> what the store records: one table of cases, no I/O, no clock."""

from __future__ import annotations

import pytest

from starpod_cron import JobError, JobResult, PermanentJobError, RunStatus
from starpod_cron.outcomes import RunEnd, completion
from starpod_cron.store.types import Completion

RESULT = JobResult("s-1", "all clear", prompt_tokens=3, completion_tokens=5)
OK = Completion(
    "r", RunStatus.SUCCESS, summary="all clear", session_id="s-1", prompt_tokens=3,
    completion_tokens=5,
)  # fmt: skip
BACK_WAITING = Completion(
    "r",
    RunStatus.INTERRUPTED,
    error="handed back: the scheduler stopped before the run started (before its fire time, "
    "or while it waited for a free slot)",
    count_attempt=False,
)
BACK_RETRYING = Completion(
    "r",
    RunStatus.INTERRUPTED,
    error="handed back: the scheduler stopped while the run waited to call a saturated "
    "provider again",
    count_attempt=False,
)
BACK_CALLING = Completion(
    "r",
    RunStatus.INTERRUPTED,
    error="interrupted: the scheduler stopped before the run finished",
    count_attempt=False,
)
TIMED_OUT = Completion("r", RunStatus.TIMEOUT, error="timed out after 10s")


def end(**fields: object) -> RunEnd:
    given: dict[str, object] = {"phase": "calling", **fields}
    return RunEnd("r", 10, **given)  # type: ignore[arg-type]


CASES: list[tuple[str, RunEnd, Completion]] = [
    ("a result is a success", end(result=RESULT), OK),
    ("a success after a saturated answer", end(result=RESULT, overrun_ms=-5000), OK),
    ("a success just inside the lateness allowance", end(result=RESULT, overrun_ms=50), OK),
    (
        "a call that ended well past its deadline blocked the loop",
        end(result=RESULT, overrun_ms=2500),
        Completion(
            "r",
            RunStatus.TIMEOUT,
            error="timed out: ran 12.5s, over its timeout of 10s, while blocking the event loop",
        ),
    ),
    (
        "a failure past its deadline blocked the loop too",
        end(error=ValueError("x"), overrun_ms=51),
        Completion(
            "r",
            RunStatus.TIMEOUT,
            error="timed out: ran 10.1s, over its timeout of 10s, while blocking the event loop",
        ),
    ),
    ("the watchdog's timeout", end(reason="timeout", cancelled=True, overrun_ms=1), TIMED_OUT),
    (
        "a timeout whose executor ignored cancellation (abandoned)",
        end(reason="timeout", finished=False),
        TIMED_OUT,
    ),
    (
        "a timeout while waiting for a slot is still a timeout",
        end(phase="waiting", reason="timeout", cancelled=True),
        TIMED_OUT,
    ),
    (
        "a timeout while asleep in a Retry-After",
        end(phase="retrying", reason="timeout", cancelled=True),
        TIMED_OUT,
    ),
    (
        "stopped before its fire time or a free slot: handed back",
        end(phase="waiting", reason="stopping", cancelled=True, overrun_ms=99_000),
        BACK_WAITING,
    ),
    (
        "stopped while asleep in a provider's Retry-After: handed back",
        end(phase="retrying", reason="stopping", cancelled=True),
        BACK_RETRYING,
    ),
    (
        "stopped in a call: interrupted, not counted",
        end(reason="stopping", cancelled=True),
        BACK_CALLING,
    ),
    (
        "stopped in a call that ignored cancellation (abandoned)",
        end(reason="stopping", finished=False),
        BACK_CALLING,
    ),
    (
        "a stop that came after the call ended does not change its result",
        end(reason="stopping", result=RESULT),
        OK,
    ),
    (
        "cancelled by something other than the scheduler: a failure",
        end(cancelled=True),
        Completion(
            "r",
            RunStatus.FAILED,
            error="the executor was cancelled by something other than the scheduler",
        ),
    ),
    (
        "an exception is a failure, retried",
        end(error=ValueError("nope")),
        Completion("r", RunStatus.FAILED, error="ValueError: nope"),
    ),
    (
        "a PermanentJobError skips retries",
        end(error=PermanentJobError("bad key")),
        Completion("r", RunStatus.FAILED, error="PermanentJobError: bad key", permanent=True),
    ),
    (
        "a JobError's retry_after delays the retry",
        end(error=JobError("later", retry_after=90)),
        Completion("r", RunStatus.FAILED, error="JobError: later", retry_after_secs=90),
    ),
    (
        "an executor returning something else than a JobResult failed",
        end(result="done"),
        Completion(
            "r", RunStatus.FAILED, error="TypeError: executor returned str, expected JobResult"
        ),
    ),
]


@pytest.mark.parametrize(("case", "ended", "expected"), CASES, ids=[c[0] for c in CASES])
def test_outcome(case: str, ended: RunEnd, expected: Completion) -> None:
    assert completion(ended) == expected
