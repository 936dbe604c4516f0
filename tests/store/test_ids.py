"""Ids sort in the order they were made (store/ids.py), so claims write the id indexes at
their ends: within one millisecond too, across threads, and when the clock steps back."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import pytest

from starpod_cron import CronStore, JobSpec, ManualClock, Schedule
from starpod_cron.inputrules import _ID_LIKE
from starpod_cron.store import ids as id_module
from starpod_cron.store.ids import new_id

NOW = 1_795_000_000_000  # an epoch ms in 2026


@pytest.fixture(autouse=True)
def fresh_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: no millisecond seen yet."""
    monkeypatch.setattr(id_module, "_sequence", id_module._Sequence())


def test_ids_made_in_one_millisecond_sort_in_the_order_they_were_made() -> None:
    ids = [new_id(NOW + 10_000) for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_an_id_is_32_lowercase_hex_with_its_millisecond_first_and_the_v7_bits() -> None:
    made = new_id(NOW + 20_000)
    assert _ID_LIKE.fullmatch(made)
    assert int(made[:12], 16) == NOW + 20_000
    assert made[12] == "7"  # version
    assert made[16] in "89ab"  # variant 10xx


def test_later_milliseconds_sort_later_and_ids_of_the_old_layout_keep_their_place() -> None:
    old = f"{NOW + 30_000:012x}" + "f" * 20  # 48 bits of time then 80 random bits
    before, after = new_id(NOW + 29_999), new_id(NOW + 30_001)
    assert before < old < after


def test_a_clock_stepping_back_never_makes_an_id_that_sorts_before_an_earlier_one() -> None:
    first = new_id(NOW + 50_000)
    after_step_back = [new_id(NOW + 40_000) for _ in range(100)]
    assert all(first < later for later in after_step_back)
    assert after_step_back == sorted(after_step_back)


def test_each_thread_sees_its_ids_in_order_and_no_two_threads_share_one() -> None:
    made: dict[int, list[str]] = {}

    def make(k: int) -> None:
        made[k] = [new_id(NOW + 60_000) for _ in range(5_000)]

    threads = [threading.Thread(target=make, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for ids in made.values() for i in ids]
    assert len(set(every)) == len(every)
    assert all(ids == sorted(ids) for ids in made.values())


def test_two_processes_in_the_same_millisecond_make_different_ids() -> None:
    program = (
        "from starpod_cron.store.ids import new_id\n"
        f"print('\\n'.join(new_id({NOW + 70_000}) for _ in range(2000)))"
    )
    runs = [
        subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    first, second = (set(r.stdout.split()) for r in runs)
    assert len(first) == len(second) == 2000
    assert not first & second


async def test_claims_visit_jobs_due_together_in_creation_order_and_their_runs_sort_so(
    url: str, clock: ManualClock
) -> None:
    store = await CronStore.open(url, clock=clock)
    try:
        at = clock.now() + timedelta(minutes=1)
        ids = await store.add_jobs(
            [JobSpec(f"job-{i:04}", "p", Schedule.one_shot(at)) for i in range(600)]
        )
        assert ids == sorted(ids)  # one add_jobs call: all in one millisecond
        clock.set(at)
        claims = [c for _ in range(3) for c in await store.claim_due("me", 256, 60)]
        assert [c.job_id for c in claims] == ids
        run_ids = [c.run_id for c in claims]
        assert run_ids == sorted(run_ids)
    finally:
        await store.close()
