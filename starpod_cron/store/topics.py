"""What a change signal is about: its own module so a driver (and a listing that needs only
a driver) loads without the store's value types (:mod:`.types` re-exports it)."""

from __future__ import annotations

import enum


class Topic(enum.StrEnum):
    """What a change signal is about (see ``CronStore.on_change``)."""

    JOBS = "jobs"
    """Something that can make a job due sooner: added, updated, enabled, a retry scheduled."""
    DELIVERIES = "deliveries"
    """Deliveries were queued or became due sooner."""
