"""Fire-time gates: every run claimed ahead for one instant waits on one gate, opened by one
timer at that instant, whichever claim brought it.

A large group (a burst: thousands of jobs due at 09:00) has the garbage collector's full pass
taken shortly before its gate opens, while the runs wait with nothing to do. Left to itself,
the collector tends to run its full pass just as the group starts, because starting thousands
of tasks allocates what triggers it: that pass (tens of milliseconds over a heap holding
thousands of claimed runs) then delays every start of the group. Taken before, the starts see
a collector that has just run. Those passes are kept under 1% of the time (after one of d
seconds the next waits 100 d), and none is taken while the program has the collector disabled.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .clock import Clock
from .tasks import TaskSet

log = logging.getLogger("starpod_cron.scheduler")

BIG_GROUP = 1000
"""Runs starting at one instant from which the gate has the collector run before it opens."""
COLLECT_LEAD_MS = 150
"""How long before the instant that pass is taken (a full pass takes tens of milliseconds)."""
MOST_GC_SHARE = 0.01
"""The share of the time these passes may take."""


@dataclass(slots=True)
class _Gate:
    event: asyncio.Event = field(default_factory=asyncio.Event)
    runs: int = 0


class StartGates:
    """The gates of one scheduler's runs claimed ahead, one per fire instant (epoch ms)."""

    def __init__(
        self,
        clock: Clock,
        tasks: TaskSet,
        on_open: Callable[[], None],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._tasks = tasks
        self._on_open = on_open
        self._monotonic = monotonic
        self._gates: dict[int, _Gate] = {}
        self._never = asyncio.Event()
        self._next_collect = 0.0  # monotonic seconds: no pass before then
        self.collections = 0
        """Passes taken before a gate opened."""

    def gate(self, start_ms: int) -> asyncio.Event:
        """The gate a run starting at ``start_ms`` (later than now) waits on."""
        gate = self._gates.get(start_ms)
        if gate is None:
            gate = self._gates[start_ms] = _Gate()
            self._tasks.spawn(self._open_at(start_ms, gate), f"start-at:{start_ms}")
        gate.runs += 1
        return gate.event

    async def _open_at(self, start_ms: int, gate: _Gate) -> None:
        clock = self._clock
        collect_at = start_ms - COLLECT_LEAD_MS
        if clock.now_ms() < collect_at:  # time to spare: wait until shortly before
            await clock.wait(self._never, collect_at)
            if gate.runs >= BIG_GROUP:
                self._collect(gate.runs)
        await clock.wait(self._never, start_ms)
        if self._gates.get(start_ms) is gate:
            del self._gates[start_ms]  # a run claimed for this instant from now starts at once
        gate.event.set()
        self._on_open()

    def _collect(self, runs: int) -> None:
        began = self._monotonic()
        if not gc.isenabled() or began < self._next_collect:
            return
        gc.collect()
        took = self._monotonic() - began
        self._next_collect = began + took / MOST_GC_SHARE
        self.collections += 1
        log.debug("collected garbage in %.0f ms before %d runs start", took * 1000, runs)
