"""store/held.py: the runs a store object claimed, kept until completed, bounded."""

from __future__ import annotations

from starpod_cron.models import RunStatus
from starpod_cron.store.held import HeldRuns
from starpod_cron.store.records import RunRecord


def run(run_id: str, status: str = RunStatus.RUNNING.value) -> RunRecord:
    return RunRecord(
        run_id, f"job-{run_id}", f"name-{run_id}", "schedule", 1_000, 2, 1_500,
        None, status, "me", 9_000, None, None, None, None, None, None, 1_500,
    )  # fmt: skip


def test_a_kept_run_comes_back_with_its_row_status_and_lease() -> None:
    held = HeldRuns()
    held.keep([run("a"), run("s", RunStatus.SKIPPED.value)])  # a skipped run is not held
    assert len(held) == 1 and held.all_kept(["a"]) and not held.all_kept(["a", "s"])
    (back,) = held.records([("a", "interrupted", None, None, 4_000)])
    assert back == RunRecord(
        "a", "job-a", "name-a", "schedule", 1_000, 2, 1_500,
        None, "interrupted", None, None, None, None, None, None, None, None, 4_000,
    )  # fmt: skip
    held.forget(["a", "never-held"])
    assert len(held) == 0 and not held.all_kept(["a"])


def test_the_oldest_runs_are_forgotten_past_the_bound() -> None:
    held = HeldRuns(most=3)
    held.keep([run(str(i)) for i in range(5)])
    assert len(held) == 3 and held.all_kept(["2", "3", "4"]) and not held.all_kept(["0"])
