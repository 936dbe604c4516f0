"""The job fields of provider holds (see :mod:`starpod_cron.pacing`), declared like every
other field (appended to :data:`starpod_cron.fields.JOB_FIELDS`): a job whose run the provider
refused for its quota, or made wait longer than the run's timeout, is held until then."""

from __future__ import annotations

from .fieldspec import JobField

PACE_FIELDS: tuple[JobField, ...] = (
    JobField(
        "held_until",
        "datetime | None",
        "Until when the provider holds the job (its quota is spent or its wait is longer than "
        "a run's timeout): then its held occurrence runs again, with the same attempt number.",
        who="runtime",
        on_run=True,
        default=None,
        storage="ms",
    ),
)
