"""Table tests of what a finished run says (starpod_cron/store/quiet.py): a silent answer and
the job's notify policy -> the run's silent/suppressed, the job's counts and on_change hash.
No store: tests/test_quiet.py runs the same rules through a scheduler on every backend."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from starpod_cron import Completion, JobSpec, RunStatus, RunTrigger, Schedule, StoreSettings
from starpod_cron.store import planning, quiet
from starpod_cron.store.records import JobRecord, RunRecord
from starpod_cron.timeutil import to_ms
from tests.conftest import START

T0 = to_ms(START)
SETTINGS = StoreSettings()
EVERY = Schedule.interval(60_000)
ONCE = Schedule.one_shot(START.replace(year=2027))
OK, FAILED, TIMEOUT = RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.TIMEOUT


def job(schedule: Schedule = EVERY, **changes: Any) -> JobRecord:
    record = planning.new_job(JobSpec("j", "p", schedule), T0, SETTINGS)
    return dataclasses.replace(record, **changes)


def running(record: JobRecord) -> RunRecord:
    return planning.start_run(record, RunTrigger.SCHEDULE, T0, 1, T0, "me", T0 + 60_000)


def ends(
    record: JobRecord,
    status: RunStatus,
    text: str | None = None,
    settings: StoreSettings = SETTINGS,
) -> RunRecord:
    run = running(record)
    done = Completion(run.id, status, summary=text if status is OK else None, error=text)
    quiet.settle(record, run, done, settings)
    return run


@pytest.mark.parametrize(
    ("record", "status", "text", "silent", "suppressed"),
    [
        (job(), OK, "[SILENT]", True, "silent answer"),
        (job(), OK, " \n[SILENT]\t ", True, "silent answer"),  # whitespace stripped
        (job(), OK, "[SILENT] nothing new", False, None),  # exactly the token, nothing else
        (job(), OK, "[silent]", False, None),
        (job(ONCE), OK, "[SILENT]", False, None),  # a reminder always speaks
        (job(ONCE, notify="never"), OK, "[SILENT]", False, "notify=never"),  # ... unless told
        (job(notify="never"), OK, "[SILENT]", True, "silent answer"),  # the token wins
        (job(), FAILED, "[SILENT]", False, None),  # only a success is an answer
        (job(notify="never"), FAILED, "boom", False, "notify=never"),
        (job(notify="on_failure"), OK, "fine", False, "notify=on_failure: succeeded"),
        (job(notify="on_failure", last_status="failed"), OK, "fine", False, None),
        (job(notify="on_failure", last_status="timeout"), OK, "fine", False, None),
        (job(notify="on_failure", last_status="success"), FAILED, "x", False, None),
        (job(notify="on_failure"), TIMEOUT, "slow", False, None),
        (job(notify="on_change"), OK, "first", False, None),  # the first always speaks
        (
            job(notify="on_change", notify_hash=quiet.result_hash("a  b")),
            OK,
            " a\n b ",
            False,
            "unchanged (notify=on_change)",
        ),
        (job(notify="on_change", notify_hash=quiet.result_hash("a b")), OK, "a c", False, None),
        (job(notify="on_change", notify_hash=quiet.result_hash("a b")), FAILED, "a b", False, None),
    ],
)
def test_what_a_run_says(
    record: JobRecord, status: RunStatus, text: str, silent: bool, suppressed: str | None
) -> None:
    run = ends(record, status, text)
    assert (run.silent, run.suppressed) == (silent, suppressed)
    assert record.silent_runs == int(silent)
    assert record.suppressed_runs == int(suppressed is not None and not silent)


def test_on_change_keeps_the_hash_of_the_last_delivered_result_only() -> None:
    record = job(notify="on_change")
    assert ends(record, OK, "disk 40%").suppressed is None
    kept = record.notify_hash
    assert kept == quiet.result_hash("disk 40%")
    assert ends(record, FAILED, "disk unreadable").suppressed is None  # a failure is news ...
    assert record.notify_hash == kept  # ... and not what the next result is compared with
    assert ends(record, OK, "[SILENT]").silent and record.notify_hash == kept
    assert ends(record, OK, "disk  40%\n").suppressed == quiet.UNCHANGED
    assert ends(record, OK, "disk 41%").suppressed is None
    assert record.notify_hash == quiet.result_hash("disk 41%")
    assert record.suppressed_runs == 1 and record.silent_runs == 1


def test_a_job_switched_away_from_on_change_forgets_what_it_last_said() -> None:
    record = job(notify="on_change")
    ends(record, OK, "same")
    record.notify = "always"
    ends(record, OK, "same")
    assert record.notify_hash is None
    record.notify = "on_change"
    assert ends(record, OK, "same").suppressed is None  # its first result again


def test_a_custom_token_and_runs_that_decide_nothing() -> None:
    settings = StoreSettings(silent_token="NO_REPLY")
    assert ends(job(), OK, "NO_REPLY", settings).silent
    assert not ends(job(), OK, "[SILENT]", settings).silent
    record = job(notify="never")
    run = running(record)
    quiet.settle(record, run, Completion(run.id, RunStatus.INTERRUPTED, error="gone"), SETTINGS)
    assert (run.suppressed, record.suppressed_runs) == (None, 0)  # interrupted: not delivered
    quiet.settle(None, run, Completion(run.id, OK, summary="[SILENT]"), SETTINGS)
    assert not run.silent  # a job removed meanwhile: nothing to decide by


def test_recovered_is_the_first_delivered_success_after_a_failure_under_on_failure() -> None:
    failing = job(notify="on_failure", last_status="failed").to_public()
    fine = job(notify="on_failure", last_status="success").to_public()
    always = job(last_status="failed").to_public()
    run = ends(job(notify="on_failure", last_status="failed"), OK, "ok")
    delivered = dataclasses.replace(run.to_public(), status=OK)  # plan_finish sets the status
    assert quiet.recovered(failing, delivered)
    assert not quiet.recovered(fine, delivered)
    assert not quiet.recovered(always, delivered)
    assert not quiet.recovered(failing, dataclasses.replace(delivered, status=FAILED))
    assert not quiet.recovered(failing, dataclasses.replace(delivered, suppressed="silent answer"))
