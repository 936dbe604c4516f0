"""LeaderElection on real stores: one leader at a time, state handed on, takeover after a
leader stops, and a leader that cannot renew steps down before its lease can expire."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from starpod_cron import CronStore
from starpod_cron.leadership import LeaderElection, LeaderTerm
from starpod_cron.tasks import cancel_and_wait
from tests.conftest import until


class Recorder:
    """Work for an election: notes when each node leads, and saves a counter as state."""

    def __init__(self) -> None:
        self.leading: list[str] = []
        self.states: list[str | None] = []
        self.stopped_at: dict[str, float] = {}

    def work(self, who: str, count_to: int | None = None):  # type: ignore[no-untyped-def]
        async def lead(term: LeaderTerm) -> None:
            self.leading.append(who)
            self.states.append(term.state)
            value = int(term.state or 0)
            try:
                while count_to is None or value < count_to:
                    value += 1
                    await term.save(str(value))
                    await asyncio.sleep(0.02)
                await asyncio.Event().wait()
            finally:
                self.stopped_at[who] = time.time()

        return lead


async def test_one_leader_and_the_next_one_continues_from_its_state(tmp_path: Path) -> None:
    url = str(tmp_path / "jobs.db")
    stores = [await CronStore.open(url) for _ in range(3)]
    recorder = Recorder()
    elections = [
        LeaderElection(s, "bot", f"node-{i}", lease_secs=1.5, retry_secs=0.1)
        for i, s in enumerate(stores)
    ]
    tasks = {
        e.holder: asyncio.create_task(e.run(recorder.work(e.holder, count_to=10)))
        for e in elections
    }
    try:
        await until(lambda: recorder.states and len(recorder.leading) == 1, what="a leader")
        await asyncio.sleep(1.6)  # longer than a lease: renewals keep the same leader
        assert len(recorder.leading) == 1 and recorder.states == [None]
        assert sum(e.is_leader for e in elections) == 1
        first = recorder.leading[0]
        await cancel_and_wait([tasks.pop(first)], grace=3)  # stops and releases its lease
        await until(lambda: len(recorder.leading) == 2, timeout=3, what="a second leader")
        assert recorder.leading[1] != first
        assert recorder.states[1] == "10"  # handed on, neither repeated nor lost
    finally:
        await cancel_and_wait(tasks.values(), grace=3)
        for s in stores:
            await s.close()


def hold_write_lock(path: str, seconds: float, locked: threading.Event, at: list[float]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        at.append(time.time())
        locked.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.mark.timeout(30)
async def test_a_leader_that_cannot_renew_stops_before_its_lease_expires(tmp_path: Path) -> None:
    url = str(tmp_path / "jobs.db")
    a, b = await CronStore.open(url), await CronStore.open(url)
    recorder = Recorder()
    leader = LeaderElection(a, "bot", "node-a", lease_secs=1.5, retry_secs=0.1)
    standby = LeaderElection(b, "bot", "node-b", lease_secs=1.5, retry_secs=0.1)
    running = [asyncio.create_task(leader.run(recorder.work("node-a", count_to=0)))]
    try:
        await until(lambda: leader.is_leader, what="node-a leads")
        running.append(asyncio.create_task(standby.run(recorder.work("node-b", count_to=0))))
        locked, at = threading.Event(), []
        # the database stays locked for 4 s: node-a cannot renew
        blocker = asyncio.create_task(asyncio.to_thread(hold_write_lock, url, 4, locked, at))
        await asyncio.to_thread(locked.wait, 5)
        await until(lambda: "node-a" in recorder.stopped_at, timeout=3, what="node-a stops")
        assert not leader.is_leader
        await blocker
        # once the database answers again, one of them leads (node-a may win it back)
        await until(lambda: leader.is_leader or standby.is_leader, timeout=10, what="a leader")
        (lease,) = await b.list_leases()
        assert lease.holder == ("node-a" if leader.is_leader else "node-b")
        assert not (leader.is_leader and standby.is_leader)
        # node-a's last renewal was before the lock, so its lease ran out by lock + 1.5 s:
        # it stopped leading before then, not after
        assert at[0] < recorder.stopped_at["node-a"] < at[0] + 1.5
    finally:
        await cancel_and_wait(running, grace=3)
        await a.close()
        await b.close()


async def test_work_that_fails_ends_its_term_logged_once_and_is_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    store = await CronStore.open(str(tmp_path / "jobs.db"))
    terms = 0

    async def work(term: LeaderTerm) -> None:
        nonlocal terms
        terms += 1
        raise ValueError(f"term {terms} broke")

    election = LeaderElection(store, "bot", "node-a", lease_secs=1, retry_secs=0.05)
    running = asyncio.create_task(election.run(work))
    try:
        await until(lambda: terms >= 3, what="three terms")
    finally:
        await cancel_and_wait([running], grace=2)
        await store.close()
    failed = [r for r in caplog.records if "the leader's work failed" in r.getMessage()]
    assert 3 <= len(failed) <= terms  # each failed term logged once, with its traceback
    assert all(r.exc_info for r in failed)
    assert not [r for r in caplog.records if "failed" in r.getMessage() and r not in failed]
