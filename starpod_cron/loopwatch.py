"""Event-loop stall detection: blocking code (``time.sleep``, a sync HTTP call) inside an async
executor freezes every other job and every timeout. A daemon thread watches a heartbeat the
loop posts every 50 ms; when the loop misses it, the thread notes which task is running (the
one blocking), and when the loop comes back it logs that task with the stall's length:

    event loop blocked for 3.01s by task starpod-cron:run:report:0193... (job report); blocking
    code belongs in asyncio.to_thread() or the command executor

``LoopWatch.for_loop(loop)`` shares one watcher per loop between its users (reference counted).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import ClassVar

log = logging.getLogger("starpod_cron.loopwatch")

INTERVAL_SECS = 0.05
THRESHOLD_SECS = 0.25


class LoopWatch:
    _watchers: ClassVar[dict[asyncio.AbstractEventLoop, LoopWatch]] = {}

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        threshold: float = THRESHOLD_SECS,
        interval: float = INTERVAL_SECS,
    ) -> None:
        self.loop = loop
        self.threshold = threshold
        self.interval = interval
        self.max_lag = 0.0
        """The longest stall seen, in seconds (including ones under the threshold)."""
        self.stalls = 0
        self._beat_at = time.monotonic()
        self._handle: asyncio.Handle | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._users = 0

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop | None = None) -> LoopWatch:
        """The running (or given) loop's watcher, started on first use; call :meth:`release`
        when done with it."""
        loop = loop or asyncio.get_running_loop()
        watch = cls._watchers.get(loop)
        if watch is None or loop.is_closed():
            watch = cls._watchers[loop] = cls(loop)
        watch._users += 1
        if watch._users == 1:
            watch.start()
        return watch

    def release(self) -> None:
        self._users -= 1
        if self._users <= 0:
            self.stop()
            if self._watchers.get(self.loop) is self:
                del self._watchers[self.loop]

    def start(self) -> None:
        self._stop.clear()
        self._beat_at = time.monotonic()
        self._handle = self.loop.call_soon(self._beat)
        self._thread = threading.Thread(
            target=self._watch, name="starpod-cron:loopwatch", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _beat(self) -> None:
        now = time.monotonic()
        lag = now - self._beat_at - self.interval
        if lag > self.max_lag:
            self.max_lag = lag
        self._beat_at = now
        if not self._stop.is_set():
            self._handle = self.loop.call_later(self.interval, self._beat)

    def _watch(self) -> None:
        blocker: str | None = None
        since = 0.0
        while not self._stop.wait(self.interval):
            silent = time.monotonic() - self._beat_at - self.interval
            if blocker is None and silent > self.threshold:
                task = asyncio.current_task(self.loop) if not self.loop.is_closed() else None
                blocker = task.get_name() if task is not None else "a callback (no task)"
                since = self._beat_at
            elif blocker is not None and silent <= self.threshold:
                self.stalls += 1
                log.warning(
                    "event loop blocked for %.2fs by %s%s; blocking code belongs in "
                    "asyncio.to_thread() or the command executor",
                    self._beat_at - since - self.interval,
                    f"task {blocker}",
                    _job_hint(blocker),
                )
                blocker = None


def _job_hint(task_name: str) -> str:
    """``starpod-cron:run:JOB:RUN`` -> `` (job JOB, run RUN)``."""
    prefix = "starpod-cron:run:"
    if not task_name.startswith(prefix):
        return ""
    job, _, run = task_name[len(prefix) :].rpartition(":")
    return f" (job {job}, run {run})"
