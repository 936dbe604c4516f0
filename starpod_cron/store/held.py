"""The runs this store object claimed and has not seen completed, kept in memory: a
completion then reads back only what may have changed since the claim (status and lease),
not the whole run row. Dialect-free and pure; ``ops/scheduling.py`` keeps it.

What a running run's row holds besides that was written by its claim and cannot change
until it ends (job, name, trigger, occurrence, attempt, start); the rest of its outcome
columns are empty until the completion fills them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..models import RunStatus
from .records import RunRecord

MAX_HELD = 200_000
"""At most this many runs kept (the oldest are forgotten first: their completion reads the row)."""

Kept = tuple[str, str, str, int, int, int]
"""job_id, job_name, trigger, scheduled_for, attempt, started_at: what the claim wrote."""


class HeldRuns:
    def __init__(self, most: int = MAX_HELD) -> None:
        self._kept: dict[str, Kept] = {}
        self._most = most

    def __len__(self) -> int:
        return len(self._kept)

    def keep(self, runs: Iterable[RunRecord]) -> None:
        """After a claim committed: its running runs."""
        kept = self._kept
        for r in runs:
            if r.status == RunStatus.RUNNING:
                kept[r.id] = (
                    r.job_id,
                    r.job_name,
                    r.trigger,
                    r.scheduled_for,
                    r.attempt,
                    r.started_at,
                )
        while len(kept) > self._most:
            del kept[next(iter(kept))]

    def all_kept(self, ids: Sequence[str]) -> bool:
        kept = self._kept
        return all(i in kept for i in ids)

    def records(self, rows: Iterable[Any]) -> list[RunRecord]:
        """The runs of ``lock_held_runs``' rows (id, status, lease owner, expiry, renewal)."""
        kept = self._kept
        out = []
        for run_id, status, owner, expires, renewed in rows:
            job_id, job_name, trigger, scheduled_for, attempt, started_at = kept[run_id]
            run = RunRecord(
                run_id,
                job_id,
                job_name,
                trigger,
                scheduled_for,
                attempt,
                started_at,
                None,
                status,
                owner,
                expires,
                None,
                None,
                None,
                None,
                None,
                None,
                renewed,
            )
            out.append(run)
        return out

    def forget(self, ids: Iterable[str]) -> None:
        """After a completion committed (whatever its answer): these runs are not held."""
        kept = self._kept
        for i in ids:
            kept.pop(i, None)
