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
    run = event.run
    if run.status is RunStatus.SUCCESS:
        return run.result_summary or ""
    return run.error or f"run ended with status {run.status.value}"


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
    lines = run_log(log, job_name, run_id)
    try:
        async with asyncio.timeout(timeout_secs):
            await notifier(job_name, session_id, summarize(text), success)
    except TimeoutError:
        lines.error("notifier timed out after %ss", timeout_secs, action="notify")
    except Exception:  # noqa: BLE001 - a user hook: logged with its traceback, never re-raised
        lines.exception("notifier failed", action="notify")


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


class NotifierFeed:
    """Feeds a store's run-finished events to notifiers, each call a supervised task; only
    the runs ``mine(run_id)`` accepts (the runs of one scheduler), and only those delivered:
    a notifier is a destination too, so a silent or suppressed run never reaches it."""

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
        self._unsubscribe = store.on_run_finished(self._on_finished)

    def _on_finished(self, events: Sequence[RunFinished]) -> None:
        for event in events:
            run = event.run
            if run.suppressed is not None or not self._mine(run.id):
                continue
            for notifier in self._notifiers:
                self._tasks.spawn(
                    deliver(
                        notifier,
                        run.job_name,
                        run.session_id or "",
                        result_text(event),
                        run.status is RunStatus.SUCCESS,
                        run_id=run.id,
                        timeout_secs=self._timeout,
                    ),
                    f"{run.job_name}:{run.id}",
                )

    async def close(self, grace: float) -> None:
        """Stop listening; wait up to ``grace`` for notifier calls in progress."""
        self._unsubscribe()
        if not await self._tasks.wait(within=grace):
            await self._tasks.stop(grace=1)
