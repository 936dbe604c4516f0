"""Notifiers: told once per finished run. A notifier that raises or hangs is logged and dropped;
it never breaks or blocks the scheduler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("starpod_cron.notify")

SUMMARY_CHARS = 500

Notifier = Callable[[str, str, str, bool], Awaitable[None]]
"""``async def notifier(job_name, session_id, result_text, success) -> None``."""


def summarize(text: str, limit: int = SUMMARY_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, on a character boundary."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def deliver(
    notifier: Notifier,
    job_name: str,
    session_id: str,
    result_text: str,
    success: bool,
    *,
    run_id: str,
    timeout_secs: float,
) -> None:
    """Call ``notifier`` with the summary, bounded by ``timeout_secs``; log any failure."""
    try:
        async with asyncio.timeout(timeout_secs):
            await notifier(job_name, session_id, summarize(result_text), success)
    except TimeoutError:
        log.error("job %s run %s: notifier timed out after %ss", job_name, run_id, timeout_secs)
    except Exception:
        log.exception("job %s run %s: notifier failed", job_name, run_id)
