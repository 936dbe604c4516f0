"""Notifiers: an in-process consumer of the store's run-finished events.

Every run outcome takes one path: the store records the run and the deliveries planned for it
in one transaction, then signals. The gateway's outbox sends the deliveries; a ``Notifier`` is
told about the same runs, after the same commit. A notifier that raises or hangs is logged and
dropped; it never breaks or blocks the scheduler.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from .logs import run_log
from .models import RunStatus
from .store.contract import StoreSignals
from .store.types import RunFinished
from .tasks import TaskSet

log = logging.getLogger("starpod_cron.notify")

SUMMARY_CHARS = 500

Notifier = Callable[[str, str, str, bool], Awaitable[None]]
"""``async def notifier(job_name, session_id, result_text, success) -> None``."""


def summarize(text: str, limit: int = SUMMARY_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, on a character boundary."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def result_text(event: RunFinished) -> str:
    """What a run said: its result on success, its error otherwise."""
    run = event.outcome
    if run.status == RunStatus.SUCCESS:
        return run.result_summary or ""
    return run.error or f"run ended with status {run.status}"


async def deliver(
    notifier: Notifier,
    job_name: str,
    session_id: str,
    text: str,
    success: bool,
    *,
    run_id: str,
    timeout_secs: float,
) -> None:
    """Call ``notifier`` with the summary, bounded by ``timeout_secs``; log any failure."""
    try:
        async with asyncio.timeout(timeout_secs):
            await notifier(job_name, session_id, summarize(text), success)
    except TimeoutError:
        lines = run_log(log, job_name, run_id)  # made only for a failure: a burst's calls pass
        lines.error("notifier timed out after %ss", timeout_secs, action="notify")
    except Exception:  # noqa: BLE001 - a user hook: logged with its traceback, never re-raised
        run_log(log, job_name, run_id).exception("notifier failed", action="notify")


def check_notifier(notifier: object) -> None:
    """TypeError unless ``notifier`` is an ``async def`` function (or an object whose
    ``__call__`` is one): a plain function's return value could not be awaited."""
    if inspect.iscoroutinefunction(notifier):
        return
    call = getattr(notifier, "__call__", None)  # noqa: B004 - an object's async __call__
    if call is not None and inspect.iscoroutinefunction(call):
        return
    name = getattr(notifier, "__qualname__", None) or repr(notifier)
    raise TypeError(
        f"notifier {name} is not an async def function; write it as "
        "`async def notifier(job_name, session_id, result_text, success) -> None`"
    )


NOTIFY_WORKERS = 64
"""At most this many notifier calls at once (per scheduler)."""
GROW_AFTER_SECS = 0.01
"""A queue of calls that did not shrink for this long gets one more worker."""

YIELD_EVERY = 64
"""A worker gives the event loop a turn after this many calls."""

Call = tuple[Notifier, RunFinished]


class NotifierFeed:
    """Feeds a store's run-finished events to notifiers; only the runs ``mine(run_id)``
    accepts (the runs of one scheduler), and only those delivered: a notifier is a
    destination too, so a silent or suppressed run never reaches it.

    The calls wait in one queue, made by a few supervised worker tasks rather than one task
    per call: a burst of 10,000 runs with a quick notifier is a handful of tasks. A queue that
    does not shrink for ``GROW_AFTER_SECS`` (slow or hanging notifiers) gets another worker,
    up to ``NOTIFY_WORKERS`` calls at once; each call is bounded by ``timeout_secs``."""

    def __init__(
        self,
        store: StoreSignals,
        notifiers: Sequence[Notifier],
        timeout_secs: float,
        *,
        mine: Callable[[str], bool],
    ) -> None:
        self._notifiers = notifiers
        self._mine = mine
        self._timeout = timeout_secs
        self._tasks = TaskSet("starpod-cron:notify")
        self._queue: deque[Call] = deque()
        self._workers = 0
        self._watch: asyncio.TimerHandle | None = None
        self._seen = 0  # calls taken from the queue, when the watch last looked
        self._taken = 0
        self._unsubscribe = store.on_run_finished(self._on_finished)

    def _on_finished(self, events: Sequence[RunFinished]) -> None:
        queue = self._queue
        for event in events:
            run = event.outcome  # the view is not made: a burst's runs pass through here
            if run.suppressed is not None or not self._mine(run.id):
                continue
            for notifier in self._notifiers:
                queue.append((notifier, event))
        if not queue:
            return
        if self._workers == 0:
            self._grow()
        if self._watch is None:
            self._seen = self._taken
            self._watch = asyncio.get_running_loop().call_later(GROW_AFTER_SECS, self._look)

    def _grow(self) -> None:
        self._workers += 1
        self._tasks.spawn(self._work(), f"worker-{self._workers}")

    def _look(self) -> None:
        """The queue's watch: another worker if nothing was taken from it since the last
        look (every worker is in a call), until it is empty."""
        self._watch = None
        if not self._queue:
            return
        if self._taken == self._seen and self._workers < NOTIFY_WORKERS:
            self._grow()
        self._seen = self._taken
        self._watch = asyncio.get_running_loop().call_later(GROW_AFTER_SECS, self._look)

    async def _work(self) -> None:
        queue = self._queue
        try:
            while queue:
                notifier, event = queue.popleft()
                self._taken += 1
                if self._taken % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # quick calls never suspend: let the loop run
                run = event.outcome
                await deliver(
                    notifier,
                    run.job_name,
                    run.session_id or "",
                    result_text(event),
                    run.status == RunStatus.SUCCESS,
                    run_id=run.id,
                    timeout_secs=self._timeout,
                )
        finally:
            self._workers -= 1

    async def close(self, grace: float) -> None:
        """Stop listening; wait up to ``grace`` for the calls queued and in progress."""
        self._unsubscribe()
        loop = asyncio.get_running_loop()
        until = loop.time() + grace
        while len(self._tasks) and loop.time() < until:
            await self._tasks.wait(within=until - loop.time())
        if self._queue or len(self._tasks):
            log.error(
                "stopping: %d notifier call(s) queued and %d in progress given up",
                len(self._queue),
                self._workers,
            )
            self._queue.clear()
            await self._tasks.stop(grace=1)
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
