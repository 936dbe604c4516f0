"""One timer for every run's timeout, instead of a timer per run."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from .clock import Clock
from .tasks import TaskSet

log = logging.getLogger("starpod_cron.scheduler")

T = TypeVar("T")
_COMPACT_MIN = 64


class Watchdog(Generic[T]):
    """Calls ``on_expiry(item)`` once the clock reaches the deadline an item was watched with.

    Deadlines are read on the injected clock, so a ManualClock can fire a two-hour timeout at
    once. ``discard(item)`` forgets an item that finished early: it is dropped from the heap
    lazily, and the heap is rebuilt whenever more than half of it is discarded entries, so
    memory follows the number of runs in flight, not the number of runs ever watched.
    """

    def __init__(
        self, clock: Clock, on_expiry: Callable[[T], None], *, tasks: TaskSet | None = None
    ) -> None:
        """``tasks`` holds the timer task (by default a TaskSet of its own)."""
        self._clock = clock
        self._tasks = tasks if tasks is not None else TaskSet("starpod-cron")
        self._on_expiry = on_expiry
        self._heap: list[tuple[int, int, T]] = []
        self._live: dict[int, int] = {}  # id(item) -> seq of its live entry
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Items watched and not yet expired or discarded."""
        return len(self._live)

    @property
    def heap_size(self) -> int:
        return len(self._heap)

    def watch(self, item: T, deadline_ms: int) -> None:
        earliest = self._heap[0][0] if self._heap else None
        seq = next(self._seq)
        self._live[id(item)] = seq
        heapq.heappush(self._heap, (deadline_ms, seq, item))
        if self._task is None or self._task.done():
            self._task = self._tasks.spawn(self._run(), "watchdog")
        elif earliest is None or deadline_ms < earliest:
            self._wake.set()

    def discard(self, item: T) -> None:
        """Stop watching ``item`` (it finished); a no-op if it is not watched."""
        if self._live.pop(id(item), None) is None:
            return
        dead = len(self._heap) - len(self._live)
        if dead > _COMPACT_MIN and dead > len(self._heap) // 2:
            self._heap = [e for e in self._heap if self._live.get(id(e[2])) == e[1]]
            heapq.heapify(self._heap)

    async def _run(self) -> None:
        while self._heap:
            self._wake.clear()
            now = self._clock.now_ms()
            while self._heap and self._heap[0][0] <= now:
                _, seq, item = heapq.heappop(self._heap)
                if self._live.get(id(item)) != seq:
                    continue  # discarded
                del self._live[id(item)]
                try:
                    self._on_expiry(item)
                except Exception:
                    log.exception("timeout handling failed for %r", item)
            if self._heap:
                await self._clock.wait(self._wake, self._heap[0][0])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._heap.clear()
        self._live.clear()
