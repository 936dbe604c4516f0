"""Three `starpod-cron serve` processes on one PostgreSQL schema, per-second jobs, and rounds of
faults about 2.5 s apart: each round terminates every node's connections
(`pg_terminate_backend`), and in turn also SIGKILLs a node (restarted at once, as systemd
would) or SIGSTOPs one for 2 s. Every occurrence due between
the first and the last round is recorded once: 0 lost, 0 twice (the runs table is the judge)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from starpod_cron import CronStore, JobSpec, Overlap, Schedule
from starpod_cron.timeutil import to_ms
from tests.backends import needs_postgres, pg_dsn, pg_schema, query
from tests.pgfaults import named, terminate
from tests.processes import Serve, serve

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pg-nodes")]

NODES = 3
JOBS = 30
ROUNDS = 12  # each resets every connection; 4 also SIGKILL a node, 4 SIGSTOP one
ROUND_SECS = 2.5

CONFIG = """
[cron]
tick_secs = 1
lease_secs = 4
max_concurrent_runs = 100
retry_backoff_secs = [0.5]

[executor]
kind = "python"
target = "tests.gateway.targets:run_here"
"""


async def _settled(dsn: str, first: int, last: int) -> tuple[int, int, int]:
    """(successful runs in [first, last], occurrences lost, occurrences recorded twice)."""
    rows = await query(
        dsn,
        "SELECT job_id, scheduled_for FROM runs WHERE status = 'success' "
        f"AND scheduled_for BETWEEN {first} AND {last}",
    )
    recorded = Counter(rows)
    jobs = {job for job, _ in await query(dsn, "SELECT id, name FROM jobs")}
    expected = {(job, fire) for job in jobs for fire in range(first, last + 1, 1000)}
    lost = len(expected - set(recorded))
    twice = sum(1 for n in recorded.values() if n > 1)
    return sum(recorded.values()), lost, twice


@needs_postgres
@pytest.mark.timeout(120)
async def test_three_nodes_through_kills_freezes_and_connection_resets(tmp_path: Path) -> None:
    started = time.monotonic()
    async with pg_schema() as dsn:
        anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        every = Schedule.interval(every_ms=1000, anchor=anchor)
        async with CronStore.open(dsn) as store:
            await store.add_jobs(
                [JobSpec(f"tick-{i:02}", "p", every, overlap=Overlap.QUEUE) for i in range(JOBS)]
            )
        (tmp_path / "agent.toml").write_text(CONFIG)
        urls = [named(dsn, f"node{i}") for i in range(NODES)]

        async def start(i: int) -> Serve:
            url, _ = urls[i]
            log = tmp_path / f"node{i}.log"
            return await serve(tmp_path, "--db", url, log=log)

        nodes = list(await asyncio.gather(*(start(i) for i in range(NODES))))
        admin = await asyncpg.connect(pg_dsn())
        faults: Counter[str] = Counter()
        try:
            first = to_ms(datetime.now(UTC)) // 1000 * 1000 + 1000
            for r in range(ROUNDS):
                await asyncio.sleep(ROUND_SECS)
                victim = r % NODES
                for _, name in urls:  # every round resets every node's connections
                    faults["connections terminated"] += await terminate(admin, name)
                faults["pg_terminate_backend"] += 1
                kind = (None, "SIGKILL", "SIGSTOP")[r % 3]
                if kind == "SIGKILL":
                    nodes[victim].proc.kill()
                    await nodes[victim].proc.wait()
                    nodes[victim] = await start(victim)  # as Restart=on-failure would
                elif kind == "SIGSTOP":
                    nodes[victim].proc.send_signal(signal.SIGSTOP)
                    await asyncio.sleep(2)
                    nodes[victim].proc.send_signal(signal.SIGCONT)
                if kind:
                    faults[kind] += 1
                for node in nodes:  # a connection reset never takes a node down
                    assert node.proc.returncode is None, node.log and node.log.read_text()[-3000:]
            last = to_ms(datetime.now(UTC)) // 1000 * 1000 - 1000
            # frozen and killed nodes' runs are recovered within about a lease (4 s)
            for _ in range(40):  # at most 20 s
                if not (await _settled(dsn, first, last))[1]:
                    break
                await asyncio.sleep(0.5)
        finally:
            await admin.close()
            for node in nodes:
                if node.proc.returncode is None:
                    node.proc.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(node.proc.wait(), 40) for node in nodes]
        runs, lost, twice = await _settled(dsn, first, last)
    wall = time.monotonic() - started
    logs = [(tmp_path / f"node{i}.log").read_text() for i in range(NODES)]
    assert codes == [0] * NODES, [log[-2000:] for log in logs]  # SIGTERM: exit 0
    print(
        f"{NODES} nodes, {JOBS} per-second jobs, {ROUNDS} rounds "
        f"({faults['SIGKILL']} SIGKILL, {faults['SIGSTOP']} SIGSTOP, "
        f"{faults['pg_terminate_backend']} pg_terminate_backend of every node, "
        f"{faults['connections terminated']} connections): {runs} runs in "
        f"{(last - first) / 1000 + 1:.0f} s of fires, {lost} lost, {twice} recorded twice; "
        f"{wall:.0f} s wall"
    )
    assert lost == 0, f"{lost} occurrence(s) lost"
    assert twice == 0, f"{twice} occurrence(s) recorded twice"
    assert runs == JOBS * ((last - first) // 1000 + 1)
