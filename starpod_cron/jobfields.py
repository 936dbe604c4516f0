"""User fields -> :class:`JobSpec` / :class:`JobUpdate`: the one place that reads what a person
(or an agent) asked for, whatever the front end (CLI, WebSocket, Telegram, HTTP, tools).

Rules that hold everywhere live here: exactly one of ``cron``/``every``/``at``/``in``/``when``;
a time given with ``at`` is read in the job's zone; ``when`` (a schedule in words,
:mod:`starpod_cron.phrases`) is the form it means, and its phrase the job's description unless
one is given; a job made with ``in`` (or ``when = "in 20 minutes"``) is deleted after it runs
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

from . import durations, phrases
from .errors import InvalidInput, InvalidJob
from .fields import SPECIAL_INPUTS, JobField, user_fields
from .inputrules import check_text, whole_number
from .models import UNSET, CronJob, JobUpdate
from .schedules import Schedule
from .store.types import JobSpec
from .timeutil import check_zone

_KINDS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "number": (int, float),
    "duration": (int, float),
    "bool": (bool,),
    "list": (list,),
}
_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "prompt": (str,),
    "cron": (str,),
    "every": (str,),
    "at": (str,),
    "in": (str,),
    "when": (str,),
    "rename": (str,),
    **{f.name: _KINDS.get(f.input, (str,)) for f in user_fields() if f.name not in SPECIAL_INPUTS},
}
_KIND_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list of names",
}


@dataclass(frozen=True, slots=True)
class JobFields:
    """What a user gave; ``None`` means "not given". ``in_`` is the ``in`` field."""

    name: str | None = None
    prompt: str | None = None
    cron: str | None = None
    every: str | None = None
    at: str | None = None
    in_: str | None = None
    when: str | None = None
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
    notify: str | None = None
    context: str | None = None
    pause_after_failures: int | None = None
    start_at: str | None = None
    end_at: str | None = None
    max_runs: int | None = None
    stale_after_secs: float | None = None
    model: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    fallback_models: list[str] | None = None
    escalate_to: str | None = None
    tools: list[str] | None = None
    budget_usd_per_day: float | None = None
    budget_usd_per_month: float | None = None
    budget_tokens_per_day: int | None = None
    deliver_to: list[str] | None = None
    alerts_to: list[str] | None = None
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
            if isinstance(value, list | tuple):
                value = _strings(key, value)
            values["in_" if key == "in" else key] = value
        return cls(**values)

    def schedule_given(self) -> tuple[str, str] | None:
        """``(kind, value)`` of the one schedule given, None if none; InvalidInput if several.
        A ``when`` phrase is given as the form it means (``("cron", "0 9 * * 1-5")``)."""
        given = [
            (kind, value)
            for kind, value in (
                ("cron", self.cron),
                ("every", self.every),
                ("at", self.at),
                ("in", self.in_),
                ("when", self.when),
            )
            if value is not None
        ]
        if len(given) > 1:
            names = ", ".join(k for k, _ in given)
            raise InvalidInput(f"give only one of cron, every, at, in, when (got {names})")
        if given and given[0][0] == "when":
            meaning = phrases.translate(given[0][1])
            return meaning.kind, meaning.value
        return given[0] if given else None

    def phrase(self) -> str | None:
        """The ``when`` phrase as the job's description keeps it (spaces collapsed)."""
        return None if self.when is None else " ".join(self.when.split())

    def schedule(self, tz: str, now: datetime) -> Schedule | None:
        given = self.schedule_given()
        return None if given is None else durations.schedule(given[0], given[1], tz, now)

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def from_text(field: JobField, text: str) -> Any:
    """The value of ``field`` as a person types it (a CLI option, a form box, a chat command):
    a whole number in ASCII digits within the field's bounds, a number, a duration (``10m``,
    ``1h30m``; ``0`` for none) as seconds, ``true``/``false``, a choice or text as given.
    InvalidInput names the field; the store checks the value again on its way in."""
    check_text(field.name, text)
    kind = field.input
    if kind == "int":
        rule = field.rule
        low, high = (int(rule.low), int(rule.high)) if rule else (0, 10**18)
        return whole_number(field.name, text.strip(), low, high)
    if kind == "duration":
        return 0.0 if text.strip() == "0" else durations.duration_ms(text) / 1000
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            raise InvalidInput(f"{field.name} must be a number, got {text!r}") from None
    if kind == "bool":
        answer = _BOOLS.get(text.strip().lower())
        if answer is None:
            raise InvalidInput(f"{field.name} must be true or false, got {text!r}")
        return answer
    if kind == "list":  # "cron_list, cron_get" (a form box, a chat command); "" for none
        return [item.strip() for item in text.split(",") if item.strip()]
    if kind == "choice" and text not in field.choices:
        raise InvalidInput(f"{field.name} must be {field.choices_text()}, got {text!r}")
    return text


def _strings(key: str, items: list[Any] | tuple[Any, ...]) -> list[str]:
    """A list field's value: strings only (InvalidInput names the field and the entry)."""
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(f"{key} must be a list of strings, got {item!r} in it")
        check_text(key, item)
    return list(items)


_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def generated_name(prompt: str) -> str:
    """A readable, unique-enough name from the prompt: ``check-the-build-3f2a``."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())[:3] or ["job"]
    return "-".join(words)[:40] + "-" + secrets.token_hex(2)


def spec_value(field: JobField, value: Any, *, tz: str, now: datetime) -> Any:
    """A value given for ``field`` (None: not given) as JobSpec/JobUpdate hold it: an enum's
    text as its member (InvalidJob names the choices), a time (ISO 8601, ``tomorrow 9:00``)
    as the aware instant it means in ``tz``."""
    if value is None:
        return None
    if field.enum_type is not None:
        try:
            return field.enum_type(value)
        except ValueError:
            raise InvalidJob(
                f"{field.name} must be {field.choices_text()}, got {value!r}"
            ) from None
    if field.input == "time" and isinstance(value, str):
        return durations.at_time(value, tz, now).instant(tz)
    return value


_OPTIONS = tuple(f for f in user_fields() if f.name not in SPECIAL_INPUTS)
"""The fields read the same way everywhere (every user field but name, prompt, schedule)."""


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
        raise InvalidInput("a schedule is required: one of cron, every, at, in, when")
    schedule = durations.schedule(given[0], given[1], tz, now)
    delete_after_run = f.delete_after_run if f.delete_after_run is not None else given[0] == "in"
    options = {
        o.name: spec_value(o, getattr(f, o.name), tz=tz, now=now)
        for o in _OPTIONS
        if o.name != "user_id"
    }
    options["delete_after_run"] = delete_after_run
    options["timezone"] = tz
    if f.description is None:
        options["description"] = f.phrase()
    return JobSpec(
        name=generated_name(f.prompt) if f.name is None else f.name,
        prompt=f.prompt,
        schedule=schedule,
        user_id=user_id,
        origin=origin,
        **{k: v for k, v in options.items() if v is not None},
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
    changes = {
        o.name: spec_value(o, getattr(f, o.name), tz=tz, now=now)
        for o in _OPTIONS
        if o.name != "user_id"
    }
    changes["delete_after_run"] = delete_after_run
    if f.description is None and f.when is not None and _is_phrase(job.description):
        changes["description"] = f.phrase()  # the new phrase replaces the one it came from
    update = JobUpdate(
        name=UNSET if f.rename is None else f.rename,
        prompt=UNSET if f.prompt is None else f.prompt,
        schedule=UNSET if schedule is None else schedule,
        user_id=user_id,
        **{k: v for k, v in changes.items() if v is not None},
    )
    if update == JobUpdate():
        raise InvalidInput("nothing to change: give at least one field to change")
    return update


def _is_phrase(description: str | None) -> bool:
    """True for no description or one that is itself a schedule in words."""
    if description is None:
        return True
    try:
        phrases.translate(description)
    except InvalidInput:
        return False
    return True
