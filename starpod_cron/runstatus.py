"""How a run stands: its own module so what lists jobs (``jobs list``) reads a run's status
without the value types of :mod:`starpod_cron.models` (which re-exports it)."""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """Where a run stands: ``running`` until it ends as ``success``, ``failed``, ``timeout``
    (counts as a failure for retries), ``interrupted`` (its process stopped or died mid-run)
    or ``skipped`` (missed while no scheduler ran, with ``misfire_policy = "skip"``), or
    ``held`` (the provider's quota is spent, or it asked to wait longer than the run's timeout:
    handed back, not a failure, the same occurrence and attempt run again at ``held_until``)."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    HELD = "held"

    @property
    def is_final(self) -> bool:
        return self is not RunStatus.RUNNING
