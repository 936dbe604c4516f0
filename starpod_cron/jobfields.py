"""User fields -> :class:`JobSpec` / :class:`JobUpdate`: the one place that reads what a person
(or an agent) asked for, whatever the front end (CLI, WebSocket, Telegram, HTTP, tools).

Rules that hold everywhere live here: exactly one of ``cron``/``every``/``at``/``in``; a time
given with ``at`` is read in the job's zone; a job made with ``in`` is deleted after it runs
(unless ``delete_after_run`` says otherwise); names are generated from the prompt when not given
(a name given empty or blank is refused, never replaced); text fields are storable text
(:mod:`starpod_cron.inputrules`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from . import durations
from .errors import InvalidInput, InvalidJob
from .inputrules import check_text
from .models import UNSET, CronJob, JobUpdate, MisfirePolicy, Overlap, SessionMode
from .schedules import Schedule
from .store.types import JobSpec
from .timeutil import check_zone

_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "prompt": (str,),
    "cron": (str,),
    "every": (str,),
    "at": (str,),
    "in": (str,),
    "timezone": (str,),
    "max_retries": (int,),
    "timeout_secs": (int, float),
    "session_mode": (str,),
    "delete_after_run": (bool,),
    "misfire_policy": (str,),
    "enabled": (bool,),
    "rename": (str,),
    "user_id": (str,),
    "description": (str,),
    "jitter_secs": (int, float),
    "overlap": (str,),
    "max_instances": (int,),
}
_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


@dataclass(frozen=True, slots=True)
class JobFields:
    """What a user gave; ``None`` means "not given". ``in_`` is the ``in`` field."""

    name: str | None = None
    prompt: str | None = None
    cron: str | None = None
    every: str | None = None
    at: str | None = None
    in_: str | None = None
    rename: str | None = None
    # fields: JobFields (generated from starpod_cron/fields.py by python -m starpod_cron.fieldgen)
    enabled: bool | None = None
    delete_after_run: bool | None = None
    timezone: str | None = None
    max_retries: int | None = None
    timeout_secs: float | None = None
    session_mode: str | None = None
    user_id: str | None = None
    misfire_policy: str | None = None
    description: str | None = None
    jitter_secs: float | None = None
    overlap: str | None = None
    max_instances: int | None = None
    # end of generated fields

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> JobFields:
        """Fields from JSON-like data (``"in"`` for ``in_``); a value of the wrong type is an
        InvalidInput naming the field. Unknown keys are ignored (callers check their own)."""
        values: dict[str, Any] = {}
        for key, value in data.items():
            kinds = _TYPES.get(key)
            if kinds is None or value is None:
                continue
            ok = isinstance(value, kinds) and not (bool not in kinds and isinstance(value, bool))
            if not ok:
                wanted = " or ".join(_KIND_NAMES[k] for k in kinds)
                raise InvalidInput(f"{key} must be {wanted}, got {value!r}")
            if isinstance(value, str):
                check_text(key, value)
            values["in_" if key == "in" else key] = value
        return cls(**values)

    def schedule_given(self) -> tuple[str, str] | None:
        """``(kind, value)`` of the one schedule given, None if none; InvalidInput if several."""
        given = [
            (kind, value)
            for kind, value in (
                ("cron", self.cron),
                ("every", self.every),
                ("at", self.at),
                ("in", self.in_),
            )
            if value is not None
        ]
        if len(given) > 1:
            names = ", ".join(k for k, _ in given)
            raise InvalidInput(f"give only one of cron, every, at, in (got {names})")
        return given[0] if given else None

    def schedule(self, tz: str, now: datetime) -> Schedule | None:
        given = self.schedule_given()
        return None if given is None else durations.schedule(given[0], given[1], tz, now)

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def generated_name(prompt: str) -> str:
    """A readable, unique-enough name from the prompt: ``check-the-build-3f2a``."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())[:3] or ["job"]
    return "-".join(words)[:40] + "-" + secrets.token_hex(2)


def _session_mode(value: str) -> SessionMode:
    try:
        return SessionMode(value)
    except ValueError:
        raise InvalidJob(f"session_mode must be 'isolated' or 'main', got {value!r}") from None


def _misfire(value: str) -> MisfirePolicy:
    try:
        return MisfirePolicy(value)
    except ValueError:
        raise InvalidJob(f"misfire_policy must be 'run_once' or 'skip', got {value!r}") from None


def _overlap(value: str) -> Overlap:
    try:
        return Overlap(value)
    except ValueError:
        raise InvalidJob(f"overlap must be 'skip', 'queue' or 'allow', got {value!r}") from None


def job_spec(
    f: JobFields,
    *,
    now: datetime,
    default_timezone: str,
    user_id: str | None,
    origin: dict[str, Any] | None = None,
) -> JobSpec:
    """The job ``f`` asks for, owned by ``user_id``. Raises InvalidInput (or a subclass) for
    anything missing or malformed; nothing is written."""
    if f.prompt is None:
        raise InvalidJob("a prompt is required")
    tz = check_zone(f.timezone or default_timezone)
    given = f.schedule_given()
    if given is None:
        raise InvalidInput("a schedule is required: one of cron, every, at, in")
    schedule = durations.schedule(given[0], given[1], tz, now)
    delete_after_run = f.delete_after_run if f.delete_after_run is not None else given[0] == "in"
    return JobSpec(
        name=generated_name(f.prompt) if f.name is None else f.name,
        prompt=f.prompt,
        schedule=schedule,
        delete_after_run=delete_after_run,
        timezone=tz,
        max_retries=f.max_retries,
        timeout_secs=f.timeout_secs,
        session_mode=_session_mode(f.session_mode or SessionMode.ISOLATED.value),
        user_id=user_id,
        misfire_policy=_misfire(f.misfire_policy or MisfirePolicy.RUN_ONCE.value),
        enabled=True if f.enabled is None else f.enabled,
        origin=origin,
        description=f.description,
        jitter_secs=f.jitter_secs,
        overlap=_overlap(f.overlap or Overlap.SKIP.value),
        max_instances=1 if f.max_instances is None else f.max_instances,
    )


def job_update(f: JobFields, job: CronJob, *, now: datetime, user_id: Any = UNSET) -> JobUpdate:
    """The change ``f`` asks for on ``job`` (a new ``at`` is read in the new or current zone;
    a new ``in`` makes the job delete itself after running unless told otherwise).
    Raises InvalidInput when nothing would change."""
    tz = check_zone(f.timezone) if f.timezone is not None else job.timezone
    given = f.schedule_given()
    schedule = None if given is None else durations.schedule(given[0], given[1], tz, now)
    delete_after_run: bool | None = f.delete_after_run
    if delete_after_run is None and given is not None and given[0] == "in":
        delete_after_run = True
    update = JobUpdate(
        name=UNSET if f.rename is None else f.rename,
        prompt=UNSET if f.prompt is None else f.prompt,
        schedule=UNSET if schedule is None else schedule,
        timezone=UNSET if f.timezone is None else f.timezone,
        enabled=UNSET if f.enabled is None else f.enabled,
        max_retries=UNSET if f.max_retries is None else f.max_retries,
        timeout_secs=UNSET if f.timeout_secs is None else f.timeout_secs,
        session_mode=UNSET if f.session_mode is None else _session_mode(f.session_mode),
        delete_after_run=UNSET if delete_after_run is None else delete_after_run,
        misfire_policy=UNSET if f.misfire_policy is None else _misfire(f.misfire_policy),
        user_id=user_id,
        description=UNSET if f.description is None else f.description,
        jitter_secs=UNSET if f.jitter_secs is None else f.jitter_secs,
        overlap=UNSET if f.overlap is None else _overlap(f.overlap),
        max_instances=UNSET if f.max_instances is None else f.max_instances,
    )
    if update == JobUpdate():
        raise InvalidInput("nothing to change: give at least one field to change")
    return update
