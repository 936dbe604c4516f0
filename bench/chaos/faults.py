"""The fault schedule: a pure function of the seed, the length and the node count.

One fault starts every few seconds (2.5-5.5 s apart) from ``WARMUP`` until ``COOLDOWN``
before the end; the kinds are drawn from a shuffled bag, so every kind comes before any comes
twice. A node has at most one fault at a time, and at most ``nodes - 1`` nodes are faulty at
once (the cluster keeps one healthy node, as a deployment sized for one failure would)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "partition-db",  # node <-> PostgreSQL: packets dropped both ways
    "partition-clients",  # node <-> its clients and destinations
    "partition-all",  # both
    "delay-loss",  # node <-> PostgreSQL: delayed, segments "lost" (held an RTO)
    "sigkill",  # SIGKILL, restarted after a moment (as systemd would)
    "sigstop",  # SIGSTOP, then SIGCONT
    "pg-restart",  # PostgreSQL stopped (fast) and started again
    "clock-skew",  # the node's wall clock moved by up to +-30 s (libfaketime)
)
NODE_KINDS = frozenset(KINDS) - {"pg-restart"}
WARMUP = 5.0
COOLDOWN = 6.0


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the start of the schedule
    kind: str
    secs: float  # how long it lasts (a kill: until the restart)
    node: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.at + self.secs

    def describe(self) -> str:
        who = "" if self.node is None else f" node{self.node}"
        extra = "".join(f" {k}={v}" for k, v in self.params.items())
        return f"{self.kind}{who} for {self.secs:.1f}s{extra}"


def schedule(seed: int, seconds: float, nodes: int) -> list[Fault]:
    rng = random.Random(seed)
    faults: list[Fault] = []
    bag: list[str] = []
    busy_until = [0.0] * nodes
    t = WARMUP
    while t < seconds - COOLDOWN:
        if not bag:
            bag = list(KINDS)
            rng.shuffle(bag)
        kind = bag.pop()
        room = seconds - COOLDOWN - t
        secs = min(room, rng.uniform(3.0, 8.0))
        params: dict[str, Any] = {}
        node: int | None = None
        if kind in NODE_KINDS:
            free = [i for i in range(nodes) if busy_until[i] <= t]
            faulty = nodes - len(free)
            if not free or faulty >= nodes - 1:
                t += 1.0
                bag.append(kind)
                continue
            node = rng.choice(free)
            if kind == "sigkill":
                secs = rng.uniform(0.5, 3.0)
            elif kind == "sigstop":
                secs = min(room, rng.uniform(2.0, 6.0))
            elif kind == "delay-loss":
                params = {
                    "delay_ms": rng.choice((50, 100, 200, 400)),
                    "loss": rng.choice((0.0, 0.02, 0.05, 0.1)),
                }
            elif kind == "clock-skew":
                magnitude = rng.choice((1, 2, 4, 10, 20, 30))
                params = {"skew_secs": magnitude * rng.choice((-1, 1))}
                secs = min(room, rng.uniform(6.0, 12.0))
            busy_until[node] = t + secs + 2.0  # and a moment to recover
        else:
            secs = 0.0  # the restart takes what it takes
        faults.append(Fault(round(t, 2), kind, round(secs, 2), node, params))
        t += rng.uniform(2.5, 5.5)
    return faults
