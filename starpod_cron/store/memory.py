"""Memory between runs (``context = "last"``), decided inside the completing transaction: a
successful run's result becomes the job's previous result, handed to its next run by the claim
(:class:`~.types.Claim` ``previous_result``/``previous_at``). A silent answer (the result is
exactly ``[cron] silent_token``) keeps the last real result, so a watcher answering it keeps
comparing with what it last saw. Pure: no I/O, no clock."""

from __future__ import annotations

from ..models import ContextMode, RunStatus
from ..settings import StoreSettings
from .records import JobRecord, RunRecord


def is_silent(summary: str | None, settings: StoreSettings) -> bool:
    """Whether ``summary`` is the silent answer (the token, whitespace around it ignored)."""
    return summary is not None and summary.strip() == settings.silent_token.strip()


def given(context: str, text: str | None, at: int | None) -> tuple[str | None, int | None]:
    """What a run of a job with ``context`` is handed of its kept result (and its end, ms):
    nothing with ``context = "none"``, even if one was kept while it was ``last``."""
    if context != ContextMode.LAST:
        return None, None
    return text, at


def remember(job: JobRecord, run: RunRecord, now: int, settings: StoreSettings) -> bool:
    """Keep ``run``'s result on ``job`` if it is a real (not silent) success of a job with
    ``context = "last"``, ended ``now``; True if the job changed."""
    if (
        job.context != ContextMode.LAST
        or run.status != RunStatus.SUCCESS
        or run.result_summary is None
        or run.silent
        or is_silent(run.result_summary, settings)
    ):
        return False
    job.previous_result = run.result_summary
    job.previous_result_at = now
    return True
