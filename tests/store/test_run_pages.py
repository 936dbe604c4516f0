"""CronStore.page_runs and runs_per_hour over every backend: keyset pages that list each run
once while new runs arrive, filters applied before the limit, owner filtering in the query,
counts of all pages, and the indexes the page queries use (SQLite's plan)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from starpod_cron import CronStore, JobSpec, RunStatus, RunTrigger, Schedule
from starpod_cron.clock import ManualClock
from starpod_cron.store.sqlfile import load_queries
from starpod_cron.store.types import RunFilter

HOUR = 3_600_000


async def _manual_runs(store: CronStore, clock: ManualClock, job_id: str, n: int) -> list[str]:
    """``n`` finished manual runs of ``job_id``, every third failed; their ids, oldest first."""
    ids = []
    for i in range(n):
        clock.advance(1)
        run_id = await store.record_run_start(job_id)
        status = RunStatus.FAILED if i % 3 == 0 else RunStatus.SUCCESS
        await store.record_run_complete(run_id, status, "ok", error=None)
        ids.append(run_id)
    return ids


async def test_paging_lists_each_run_once_while_new_runs_arrive(
    store: CronStore, clock: ManualClock
) -> None:
    every = Schedule.interval(HOUR)
    a, b = await store.add_jobs(
        [JobSpec("a", "p", every, user_id="alice"), JobSpec("b", "p", every, user_id="bob")]
    )
    alice = await _manual_runs(store, clock, a, 120)
    bob = await _manual_runs(store, clock, b, 30)

    seen: list[str] = []
    where = RunFilter(owner="alice")
    totals = []
    while True:
        page = await store.page_runs(where, 17)
        seen += [r.id for r in page.runs]
        totals.append(page.total)
        assert all(r.job_id == a for r in page.runs)  # only alice's, filtered in the query
        await _manual_runs(store, clock, a, 1)  # a new run arrives between pages
        if page.next is None:
            break
        where = RunFilter(owner="alice", before=page.next)
    assert seen == alice[::-1]  # newest first, each once, none of the ones that came later
    assert totals == list(range(120, 120 + len(totals)))  # all pages, counted when asked

    everyone = await store.page_runs(RunFilter(), 200)
    assert len(everyone.runs) == everyone.total == 150 + len(totals) and everyone.next is None
    failed = await store.page_runs(RunFilter(owner="bob", status=RunStatus.FAILED), 3)
    assert failed.total == 10 and len(failed.runs) == 3 and failed.next is not None
    assert [r.id for r in failed.runs] == [bob[27], bob[24], bob[21]]
    one_job = await store.page_runs(RunFilter(job_id=b, trigger=RunTrigger.MANUAL), 50)
    assert [r.id for r in one_job.runs] == bob[::-1] and one_job.total == 30
    none = await store.page_runs(RunFilter(job_id=b, trigger=RunTrigger.RETRY), 50)
    assert (none.runs, none.total, none.next) == ([], 0, None)
    assert (await store.page_runs(RunFilter(owner="carol"), 5)).total == 0


async def test_runs_per_hour_are_counted_in_whole_hours_per_owner(
    store: CronStore, clock: ManualClock
) -> None:
    every = Schedule.interval(HOUR)
    a, b = await store.add_jobs(
        [JobSpec("a", "p", every, user_id="alice"), JobSpec("b", "p", every, user_id="bob")]
    )
    since = clock.now().replace(minute=0, second=0, microsecond=0)
    await _manual_runs(store, clock, a, 4)  # hour 0: 4 runs, 2 failed (the 1st and 4th)
    clock.advance(2 * 3600)
    await _manual_runs(store, clock, a, 1)  # hour 2: 1 failed
    await _manual_runs(store, clock, b, 2)
    hours = await store.runs_per_hour(since, 4, "alice")
    assert [(h.start, h.runs, h.failures) for h in hours] == [
        (since, 4, 2),
        (since + timedelta(hours=1), 0, 0),
        (since + timedelta(hours=2), 1, 1),
        (since + timedelta(hours=3), 0, 0),
    ]
    everyone = await store.runs_per_hour(since, 3, None)
    assert [h.runs for h in everyone] == [4, 0, 3]
    later = await store.runs_per_hour(since + timedelta(hours=1), 2, None)
    assert [h.runs for h in later] == [0, 3]  # what started before `since` is not counted


async def test_the_page_queries_walk_an_index_without_sorting(tmp_path: Path) -> None:
    """The hot queries (a page across jobs, a page of one job) read an index in order: no
    full scan, no sort of every run (SQLite's plan of the store's own file)."""
    path = str(tmp_path / "plan.db")
    store = await CronStore.open(path)
    await store.close()
    queries = load_queries("sqlite")
    params = {"before": 10, "status": None, "trigger": None, "owner": None, "job_id": "j"}
    params["limit"] = 5
    with sqlite3.connect(path) as conn:
        for name, index in [("page_runs", "INTEGER PRIMARY KEY"), ("page_job_runs", "runs_job")]:
            sql = queries[name]
            assert sql is not None
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " | ".join(str(row[-1]) for row in rows)
            assert f"SEARCH runs USING {index}" in plan or f"INDEX {index}" in plan, plan
            assert "TEMP B-TREE" not in plan and "SCAN runs" not in plan, plan
