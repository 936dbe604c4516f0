"""The checker: reads the database, the stand-ins' records, the executor's call logs and the
WebSocket clients at the end, and says which invariant failed (if any)."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from .faults import Fault
from .workload import EVENTS, Client

FINAL = ("success", "failed", "timeout", "interrupted")  # a run of an occurrence recorded
EARLY_MS = 300  # a call this much before its due time (on the real clock) ran early
# faults that may leave a message sent but not recorded (its sender cut off or gone)
DISRUPTIVE = frozenset({"sigkill", "sigstop", "partition-db", "partition-clients", "partition-all"})


@dataclass
class Sent:
    destination: str
    delivery_id: int
    node: int | None  # which node sent it (from the peer address)


@dataclass
class Report:
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.violations.append(message)


def disruptions(faults: Sequence[Fault], nodes: int) -> Counter[int]:
    """Per node, the faults that could leave one of its sends unrecorded."""
    count: Counter[int] = Counter()
    for fault in faults:
        if fault.kind in DISRUPTIVE and fault.node is not None:
            count[fault.node] += 1
        elif fault.kind == "pg-restart":  # every node partitioned from the database at once
            for i in range(nodes):
                count[i] += 1
    return count


async def check(
    dsn: str,
    *,
    first: int,
    last: int,
    interval_jobs: dict[str, tuple[int, int]],
    faults: Sequence[Fault],
    nodes: int,
    telegram: Iterable[tuple[int, str, int | None]],
    hooks: Iterable[tuple[str, int | None]],
    calls: Iterable[Path],
    clients: Sequence[Client],
    clock: tuple[float, int],
) -> Report:
    """``interval_jobs``: job id -> (anchor ms, every ms, every fire must run: overlap =
    queue; with skip / allow fires missed while nobody could claim are coalesced); ``telegram``: (chat, text, sending
    node) per message the Bot API stand-in accepted; ``hooks``: (webhook-id, sending node) per
    request the receiver accepted; ``clock``: (time.monotonic(), wall ms) read together, to
    place the executor's calls on the real clock."""
    report = Report()
    conn = await asyncpg.connect(dsn)
    try:
        runs = await conn.fetch(
            "SELECT job_id, scheduled_for, status, attempt, started_at, completed_at, trigger, "
            "lease_renewed_at "
            "FROM runs"
        )
        jobs = {r["id"]: r for r in await conn.fetch("SELECT id, name FROM jobs")}
        deliveries = await conn.fetch(
            "SELECT id, run_id, destination, status, payload, last_error FROM deliveries"
        )
    finally:
        await conn.close()
    recorded = {(r["job_id"], r["scheduled_for"]) for r in runs if r["status"] in FINAL}
    successes: Counter[tuple[str, int]] = Counter(
        (r["job_id"], r["scheduled_for"]) for r in runs if r["status"] == "success"
    )
    # 1. every occurrence due in the window recorded exactly once; no one-shot lost
    expected = {
        (job, fire)
        for job, (anchor, every, every_fire) in interval_jobs.items()
        if every_fire
        for fire in _fires(anchor, every, first, last)
    }
    coalesced = {
        (job, fire)
        for job, (anchor, every, every_fire) in interval_jobs.items()
        if not every_fire
        for fire in _fires(anchor, every, first, last)
    } - recorded
    once_jobs = [j for j, row in jobs.items() if str(row["name"]).startswith("once-")]
    by_job: Counter[str] = Counter(job for job, _ in successes)
    lost = [key for key in expected if key not in recorded]
    lost_once = [j for j in once_jobs if by_job[j] == 0]
    # an interrupted run whose retry a later fire superseded (planning: by design) is
    # recorded (interrupted), not lost: counted apart
    superseded = [key for key in expected if key in recorded and not successes[key]]
    twice = [key for key, n in successes.items() if n > 1]
    report.figures |= {
        "runs": sum(successes.values()),
        "expected": len(expected),
        "one_shots": len(once_jobs),
        "lost": len(lost) + len(lost_once),
        "twice": len(twice),
        "interrupted_not_retried": len(superseded),
        "coalesced": len(coalesced),
    }
    if lost:
        report.fail(
            f"{len(lost)} occurrence(s) due in the window never recorded: {sorted(lost)[:5]}"
        )
    if lost_once:
        report.fail(f"{len(lost_once)} one-shot(s) lost: {lost_once[:5]}")
    if twice:
        report.fail(f"{len(twice)} occurrence(s) recorded twice: {twice[:5]}")
    # 2. nothing left running
    running = [r for r in runs if r["status"] == "running"]
    report.figures["left_running"] = len(running)
    if running:
        report.fail(f"{len(running)} run(s) left running")
    # 3. every delivery delivered or waiting; none dead (the stand-ins reject nothing)
    outbox = [d for d in deliveries if not d["destination"].startswith("ws:")]
    statuses = Counter(d["status"] for d in outbox)
    report.figures["deliveries"] = dict(statuses)
    dead = [d for d in outbox if d["status"] == "dead"]
    if dead:
        report.fail(
            f"{len(dead)} delivery(ies) dead, though no destination refused: "
            f"{[(d['id'], d['last_error']) for d in dead[:3]]}"
        )
    # 4. duplicates per destination <= the disruptions of the node that sent them first;
    # 5. order per destination preserved (first arrivals in delivery-id order)
    text_ids = {}
    for d in deliveries:
        if d["destination"].startswith("tg:"):
            text_ids[(d["destination"], json.loads(d["payload"]).get("text"))] = d["id"]
    sent = [
        Sent(f"tg:{chat}", text_ids.get((f"tg:{chat}", text), -1), node)
        for chat, text, node in telegram
    ]
    sent += [Sent("dest:hook", int(hook_id.rpartition("_")[2]), node) for hook_id, node in hooks]
    strays = [s for s in sent if s.delivery_id < 0]
    if strays:
        report.fail(f"{len(strays)} message(s) no delivery of the store says: {strays[:3]}")
    bound = disruptions(faults, nodes)
    seen: Counter[tuple[str, int]] = Counter()
    first_sender: dict[tuple[str, int], int | None] = {}
    order: dict[str, list[int]] = defaultdict(list)
    for s in sent:
        key = (s.destination, s.delivery_id)
        if not seen[key]:
            first_sender[key] = s.node
            order[s.destination].append(s.delivery_id)
        seen[key] += 1
    dups: Counter[tuple[str, int | None]] = Counter()
    for key, n in seen.items():
        if n > 1:
            dups[(key[0], first_sender[key])] += n - 1
    report.figures["dup_messages"] = sum(dups.values())
    for (destination, node), n in dups.items():
        allowed = bound[node] if node is not None else 0
        if n > allowed:
            report.fail(
                f"{destination}: {n} duplicate(s) first sent by node{node}, which "
                f"had {allowed} kill/pause/partition fault(s)"
            )
    for destination, ids in order.items():
        if ids != sorted(ids):
            wrong = next(i for i, (a, b) in enumerate(itertools.pairwise(ids)) if a > b)
            report.fail(f"{destination}: out of order at {ids[wrong : wrong + 2]}")
    delivered = {(d["destination"], d["id"]) for d in outbox if d["status"] == "delivered"}
    unsent = delivered - set(seen)
    if unsent:
        report.fail(
            f"{len(unsent)} delivery(ies) recorded delivered never arrived: {sorted(unsent)[:3]}"
        )
    # 6. WebSocket events per client gapless after replay
    events: dict[str, set[int]] = defaultdict(set)
    for d in deliveries:
        if d["destination"].startswith("ws:") and d["status"] == "published":
            kind = json.loads(d["payload"]).get("type", "notification")
            if kind in EVENTS:
                events[d["destination"].removeprefix("ws:")].add(d["id"])
    gaps = 0
    for client in clients:
        missing = {i for i in events[client.user] if i <= client.last} - set(client.ids)
        gaps += len(missing)
        if missing:
            report.fail(
                f"WebSocket client {client.user}: {len(missing)} event(s) missing "
                f"after replay: {sorted(missing)[:5]}"
            )
        if client.last < max(events[client.user], default=0):
            report.fail(f"WebSocket client {client.user}: replay stopped at {client.last}")
    report.figures["ws_events"] = sum(len(c.ids) for c in clients)
    report.figures["ws_gaps"] = gaps
    # 7. executor calls made twice (at-least-once: counted, never a violation)
    made: Counter[tuple[str, int]] = Counter()
    early: list[tuple[str, int, float]] = []
    mono0, wall0 = clock
    for path in calls:
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    call = json.loads(line)
                    made[(call["job"], call["at"])] += 1
                    real = wall0 + (call["mono"] - mono0) * 1000
                    if real < call["at"] - EARLY_MS:
                        early.append((call["job"], call["at"], (call["at"] - real) / 1000))
    report.figures["early_calls"] = len(early)
    if early:
        worst = max(early, key=lambda e: e[2])
        report.fail(
            f"{len(early)} executor call(s) before their due time (the worst "
            f"{worst[2]:.1f} s early: job {worst[0]} due {worst[1]})"
        )
    report.figures["repeat_calls"] = sum(n - 1 for n in made.values() if n > 1)
    report.figures["calls"] = sum(made.values())
    # the longest a per-second run waited past its due time (a takeover, a recovery)
    late = [
        (r["started_at"] - r["scheduled_for"])
        for r in runs
        if r["status"] == "success"
        and (r["job_id"], r["scheduled_for"]) in expected
        and interval_jobs[r["job_id"]][1] == 1000
    ]
    report.figures["latest_start_secs"] = round(max(late, default=0) / 1000, 1)
    # a takeover: from the holder's last renewal (last seen alive) to another node ending
    # the run it held (recovery), so its occurrence can go on
    takeovers = [
        r["completed_at"] - (r["lease_renewed_at"] or r["started_at"])
        for r in runs
        if r["status"] == "interrupted" and r["completed_at"] is not None
    ]
    report.figures["longest_takeover_secs"] = round(max(takeovers, default=0) / 1000, 1)
    return report


def _fires(anchor: int, every: int, first: int, last: int) -> range:
    """The fires of an interval job (``anchor + k * every``) within [first, last]."""
    start = anchor + max(0, -((anchor - first) // every)) * every
    return range(start, last + 1, every)
