"""The JSON schemas of the scheduling tools (:mod:`starpod_cron.tools`): the common job
properties and every declared job field's schema, written once from the declaration."""

from __future__ import annotations

from typing import Any

from .durations import MAX_TEXT
from .fields import REQUIRED, JobField, job_field, option_fields
from .fieldspec import words
from .inputrules import MAX_NAME_CHARS

MAX_PREVIEW = 20

_SCHEDULE_HELP = (
    "Give exactly one schedule. cron: a 5-field cron expression (minute hour day month "
    'weekday), e.g. "0 9 * * 1-5" for weekdays at 09:00, "*/30 * * * *" for every 30 '
    'minutes, "0 8 1 * *" for the 1st of each month at 08:00 (a 6th leading field is '
    'seconds). every: a repeat interval such as "30m", "2h", "1d", "1h30m". at: one time, '
    '"2026-12-01 09:00", "tomorrow 9:00" or an ISO 8601 time with offset. in: once, after '
    'a delay such as "20m" (the job deletes itself after it runs). when: the schedule in '
    'words, e.g. "every weekday at 9:00", "every 30 minutes", "every monday and friday at '
    '18:30", "every hour at :15", "on the last day of every month at 17:00", "in 20 '
    'minutes", "tomorrow at 9"; the answer says what it was understood as (interpretation); '
    "an ambiguous phrase is refused with the forms it reads. Times and cron "
    "expressions are read in the job's time zone, which defaults to the user's own zone."
)
_NAME = {"type": "string", "description": "The job's name (or its id)."}
_JOB_FIELDS: dict[str, Any] = {
    "prompt": {"type": "string", "description": job_field("prompt").help},
    "cron": {"type": "string", "description": "A cron expression. " + _SCHEDULE_HELP},
    "every": {"type": "string", "description": 'A repeat interval, e.g. "30m".'},
    "at": {"type": "string", "description": 'One time, e.g. "2026-12-01 09:00".'},
    "in": {"type": "string", "description": 'Once, after a delay, e.g. "20m".'},
    "when": {
        "type": "string",
        "maxLength": MAX_TEXT,
        "description": 'The schedule in words, e.g. "every weekday at 9:00" (a cron), '
        '"every 30 minutes" (an interval), "tomorrow at 9" or "in 20 minutes" (once); '
        "24-hour times unless am/pm is written. The phrase becomes the job's description "
        "unless one is given; the answer's interpretation says what it was understood as.",
    },
}
_JSON_TYPES = {
    "int": "integer",
    "number": "number",
    "duration": "number",
    "bool": "boolean",
    "list": "array",
}


def field_schema(f: JobField, *, adding: bool = True) -> dict[str, Any]:
    """The JSON schema of a declared job field: its type, choices, bounds and help (with its
    default when ``adding``)."""
    schema: dict[str, Any] = {"type": _JSON_TYPES.get(f.input, "string")}
    if f.input == "list":
        schema["items"] = (
            {"type": "string", "enum": list(f.items)} if f.items else {"type": "string"}
        )
        schema["maxItems"] = f.max_items
    if f.choices:
        schema["enum"] = list(f.choices)
    if f.rule is not None:
        schema["exclusiveMinimum" if f.rule.above else "minimum"] = f.rule.low
        schema["maximum"] = f.rule.high
    default = f.default_value()
    said = ""
    if f.default_note is not None:
        said = f" Default: {f.default_note}."
    elif default is not None and default is not REQUIRED:
        said = f" Default: {words(default)}."
    how = TIME_FORMS if f.input == "time" else ""
    schema["description"] = f.help + how + (said if adding else "")
    return schema


TIME_FORMS = (
    " Written as ISO 8601 ('2026-12-01 09:00', '2026-12-01T09:00:00+01:00') or 'today 18:00' /"
    " 'tomorrow 9:00', read in the job's timezone."
)


_OPTIONS_ADD = {f.name: field_schema(f) for f in option_fields()}
_OPTIONS_UPDATE = {
    f.name: field_schema(f, adding=False) for f in option_fields(update=True) if f.name != "user_id"
}
"""Every declared option, as the tools take it (cron_update cannot give a job away: user_id
is for admins creating a job for someone)."""


_ADD_PROPERTIES: dict[str, Any] = {
    "name": {
        "type": "string",
        "maxLength": MAX_NAME_CHARS,
        "description": "A short unique name, without '/', '\\' or control "
        "characters (default: made from the prompt).",
    },
    **_JOB_FIELDS,
    **_OPTIONS_ADD,
}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema
