"""The scheduling tools an agent (or a person, through the WebSocket API, Telegram or MCP) uses,
defined once: name, description written for a model, JSON schema, and the one function that
applies them, :func:`call_tool`.

Every front end goes through here, with the same ownership rules and limits
(:class:`~starpod_cron.operations.JobOperations`) and the same user-field rules
(:mod:`starpod_cron.jobfields`): the WebSocket ``cron.*`` commands, the Telegram commands,
the MCP server (``starpod-cron mcp``) and the model's function calls in a chat.

>>> await call_tool(store, "cron_add", {"prompt": "Summarize my inbox",
...                                     "cron": "0 9 * * 1-5"}, user="alice")
{"job": {"id": "...", "name": "summarize-my-inbox-3f2a", ...}}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .access import LOCAL_ADMIN, Principal
from .activity import Activity, page_json
from .errors import (
    DuplicateJobName,
    InvalidInput,
    JobAlreadyRunning,
    JobNotFound,
    LimitExceeded,
    RunNotFound,
    RunNotRetryable,
    StarpodCronError,
    StoreUnavailable,
)
from .inputrules import MAX_NAME_CHARS, check_all_text
from .jobfields import JobFields
from .models import CronJob, RunStatus
from .operations import MAX_BACKFILL, JobOperations
from .phrases import for_job
from .schedules import Schedule
from .store import CronStore
from .timeutil import check_zone, zone
from .toolschema import (
    _ADD_PROPERTIES,
    _JOB_FIELDS,
    _NAME,
    _OPTIONS_ADD,
    _OPTIONS_UPDATE,
    _SCHEDULE_HELP,
    MAX_PREVIEW,
    _object,
)
from .views import fires_after, job_json, run_json, schedule_human


@dataclass(frozen=True, slots=True)
class Context:
    """What a tool call runs with: the operations (store, runner, limits), who is asking, and
    where new jobs come from (a Telegram chat, say, so their results go back there)."""

    ops: JobOperations
    who: Principal
    origin: dict[str, Any] | None = None


Handler = Callable[[Context, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    handler: Handler
    changes: bool
    """True if it changes jobs (a model's chat may call it; a scheduled run only if allowed)."""

    def openai(self) -> dict[str, Any]:
        """The tool in OpenAI's function-calling format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


def _answer(job: CronJob, a: dict[str, Any]) -> dict[str, Any]:
    """``{"job": ...}``, with what a ``when`` phrase was understood as (its next fires)."""
    answer: dict[str, Any] = {"job": job_json(job)}
    if isinstance(a.get("when"), str):
        answer["interpretation"] = for_job(a["when"], job).json()
    return answer


async def _add(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    job = await c.ops.add(c.who, JobFields.from_mapping(a), origin=c.origin)
    answer = _answer(job, a)
    if warning := await c.ops.scheduler_warning():
        answer["warning"] = warning  # saved, but nothing fires it until a scheduler runs
    return answer


async def _list(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    jobs = await c.ops.list_jobs(c.who)
    return {"jobs": [job_json(j) for j in jobs], "total": len(jobs)}


async def _get(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    return {"job": job_json(await c.ops.find(c.who, a["name"]))}


async def _update(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    fields = replace(JobFields.from_mapping(a), name=None)  # "name" selects; "rename" renames
    return _answer(await c.ops.update(c.who, a["name"], fields), a)


async def _pause(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    return {"job": job_json(await c.ops.set_enabled(c.who, a["name"], False))}


async def _resume(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    return {"job": job_json(await c.ops.set_enabled(c.who, a["name"], True))}


async def _snooze(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    return {"job": job_json(await c.ops.snooze(c.who, a["name"], a["for"]))}


async def _remove(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    return {"job": job_json(await c.ops.remove(c.who, a["name"]))}


async def _run(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    return {"run": run_json(await c.ops.run(c.who, a["name"]))}


async def _backfill(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    dry_run = a.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput("dry_run must be true or false")
    job, occurrences, runs = await c.ops.backfill(
        c.who, a["name"], a["from"], a["to"], dry_run=dry_run, limit=a.get("max")
    )
    tz = zone(job.timezone)
    answer: dict[str, Any] = {
        "job": job.name,
        "dry_run": dry_run,
        "occurrences": [t.astimezone(tz).isoformat() for t in occurrences],
    }
    if not dry_run:
        answer["runs"] = [run_json(r, job) for r in runs]
        answer["succeeded"] = sum(1 for r in runs if r.status is RunStatus.SUCCESS)
    return answer


async def _runs(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    status = a.get("status")
    if status is not None and status not in RunStatus.__members__.values():
        raise InvalidInput(f"status must be one of {', '.join(RunStatus)}")
    page, jobs = await Activity(c.ops).runs_page(
        c.who,
        job=a["name"],
        status=None if status is None else RunStatus(status),
        limit=a.get("limit", 10),
        before=a.get("before"),
    )
    return page_json(page, jobs)


async def _retry(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    """The job with a retry of the run due now: ``{"job": ..., "retry": {"run_id": the run
    retried, "occurrence": its fire time, "attempt": the new attempt}}``."""
    job, occurrence, attempt = await c.ops.retry(c.who, a["run_id"])
    answer: dict[str, Any] = {
        "job": job_json(job),
        "retry": {"run_id": a["run_id"], "occurrence": occurrence.isoformat(), "attempt": attempt},
    }
    if warning := await c.ops.scheduler_warning():
        answer["warning"] = warning  # nothing claims the retry until a scheduler runs
    return answer


async def _preview(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    """The preview of a new job (like cron_add), or of job ``job`` with the changes given."""
    job = a.pop("job", None)
    fields = JobFields.from_mapping(a)
    if job is not None:
        fields = replace(fields, name=None, rename=fields.name)
    preview = await c.ops.preview(c.who, fields, name=job, origin=c.origin)
    return {**preview.json(), "message": "\n".join(preview.lines())}


async def _next(c: Context, a: dict[str, Any]) -> dict[str, Any]:
    tz = check_zone(a.get("timezone") or await c.ops.default_zone(c.who))
    count = a.get("count", 5)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW:
        raise InvalidInput(f"count must be a whole number from 1 to {MAX_PREVIEW}")
    schedule = Schedule.cron(a["expression"])
    fires = fires_after(schedule, tz, c.ops.now(), count)
    return {
        "expression": a["expression"],
        "in_words": schedule_human(schedule, tz),
        "timezone": tz,
        "next_runs": [t.astimezone(zone(tz)).isoformat() for t in fires],
    }


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in [
        Tool(
            "cron_add",
            "Schedule a prompt for the agent to run later: once (at/in) or repeatedly "
            "(cron/every/when). Use it when the user asks to be reminded, or for something to be "
            "done at a time or on a schedule ('every weekday at 9 summarize my inbox' → "
            'cron "0 9 * * 1-5"; \'in 20 minutes remind me to stretch\' → in "20m"). The '
            "prompt is what the agent will be asked at each run, so write it as an instruction "
            "('Remind the user to stretch'). " + _SCHEDULE_HELP,
            _object(_ADD_PROPERTIES, ["prompt"]),
            _add,
            True,
        ),
        Tool(
            "cron_list",
            "List the user's scheduled jobs with their schedule, next run and last status.",
            _object({}),
            _list,
            False,
        ),
        Tool(
            "cron_get",
            "Every detail of one job, by name or id.",
            _object({"name": _NAME}, ["name"]),
            _get,
            False,
        ),
        Tool(
            "cron_update",
            "Change a job: give its name and only the fields to change (a new schedule "
            "replaces the old one; rename to change the name). " + _SCHEDULE_HELP,
            _object(
                {
                    "name": _NAME,
                    "rename": {
                        "type": "string",
                        "maxLength": MAX_NAME_CHARS,
                        "description": "A new name, without '/', '\\' or control characters.",
                    },
                    **_JOB_FIELDS,
                    **_OPTIONS_UPDATE,
                },
                ["name"],
            ),
            _update,
            True,
        ),
        Tool(
            "cron_pause",
            "Pause a job: it stops running until resumed (nothing is deleted).",
            _object({"name": _NAME}, ["name"]),
            _pause,
            True,
        ),
        Tool(
            "cron_resume",
            "Resume a paused job; its next run is computed from now.",
            _object({"name": _NAME}, ["name"]),
            _resume,
            True,
        ),
        Tool(
            "cron_snooze",
            'Put off a job\'s next run once, by a duration from when it was due (e.g. "1h"); '
            "its schedule is unchanged, so the run after that is at the schedule's own time.",
            _object(
                {"name": _NAME, "for": {"type": "string", "description": 'e.g. "1h", "30m".'}},
                ["name", "for"],
            ),
            _snooze,
            True,
        ),
        Tool(
            "cron_remove",
            "Delete a job and its run history. Prefer cron_pause unless the user wants it gone.",
            _object({"name": _NAME}, ["name"]),
            _remove,
            True,
        ),
        Tool(
            "cron_run",
            "Run a job now, once, outside its schedule, and return the run with its result.",
            _object({"name": _NAME}, ["name"]),
            _run,
            True,
        ),
        Tool(
            "cron_backfill",
            "Run once, oldest first, each past occurrence of a job's schedule between two "
            "times that has no recorded run (missed while no scheduler ran, or recorded "
            "skipped or interrupted), and return the runs when they have finished. Use "
            "dry_run first to see which occurrences that is. Times: ISO 8601, "
            "'today 9:00', or 'now', read in the job's time zone.",
            _object(
                {
                    "name": _NAME,
                    "from": {"type": "string", "description": "The oldest time of the range."},
                    "to": {"type": "string", "description": "The newest time, e.g. 'now'."},
                    "dry_run": {
                        "type": "boolean",
                        "description": "Only list the occurrences it would run.",
                    },
                    "max": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_BACKFILL,
                        "description": "The most occurrences the range may hold (default: "
                        "[cron] backfill_limit); a range holding more is refused.",
                    },
                },
                ["name", "from", "to"],
            ),
            _backfill,
            True,
        ),
        Tool(
            "cron_runs",
            "The runs of a job, newest first, with status, result or error; a page at a time "
            "(total counts every page; pass next as before for the page after).",
            _object(
                {
                    "name": _NAME,
                    "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                    "status": {"type": "string", "enum": [s.value for s in RunStatus]},
                    "before": {
                        "type": "string",
                        "description": "The 'next' of the previous page, for the page after it.",
                    },
                },
                ["name"],
            ),
            _runs,
            False,
        ),
        Tool(
            "cron_retry",
            "Retry a failed, timed-out or interrupted run: its occurrence runs again as the next "
            "attempt, now. Refused for a run that succeeded, is running or was retried already.",
            _object(
                {"run_id": {"type": "string", "description": "The run's id (from cron_runs)."}},
                ["run_id"],
            ),
            _retry,
            True,
        ),
        Tool(
            "cron_preview",
            "Preview a job without saving it and without calling its model: the model and "
            "fallbacks, the messages a run sends, the tools allowed, where results go, the next "
            "5 fires (with DST notes) and the expected tokens and cost per run and per month. "
            "Give the fields of cron_add for a new job, or job (an existing job's name) and the "
            "fields to change.",
            _object({"job": _NAME, **_ADD_PROPERTIES}),
            _preview,
            False,
        ),
        Tool(
            "cron_next",
            "Preview when a cron expression fires next, in words and as times, before "
            "scheduling with it. Saves nothing.",
            _object(
                {
                    "expression": {
                        "type": "string",
                        "description": 'A cron expression, e.g. "0 9 * * 1-5".',
                    },
                    "timezone": _OPTIONS_ADD["timezone"],
                    "count": {"type": "integer", "minimum": 1, "maximum": MAX_PREVIEW},
                },
                ["expression"],
            ),
            _next,
            False,
        ),
    ]
}


def _check(tool: Tool, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments as the schema allows them: unknown or missing fields, and text that
    cannot be stored or sent back (a lone surrogate, NUL), are InvalidInput (types are
    checked where the fields are read, with the CLI's messages)."""
    if not isinstance(arguments, Mapping):
        raise InvalidInput(f"{tool.name}: arguments must be an object")
    check_all_text(f"{tool.name}: arguments", arguments)
    known = tool.parameters["properties"]
    unknown = sorted(set(arguments) - set(known))
    if unknown:
        raise InvalidInput(f"{tool.name}: unknown field(s): {', '.join(unknown)}")
    missing = [f for f in tool.parameters.get("required", []) if arguments.get(f) is None]
    if missing:
        raise InvalidInput(f"{tool.name}: missing field(s): {', '.join(missing)}")
    return dict(arguments)


async def call_tool(
    target: CronStore | JobOperations,
    name: str,
    arguments: Mapping[str, Any],
    *,
    user: str | Principal | None = None,
    origin: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply the tool ``name`` for ``user`` (a user id: that user, with the per-user limits;
    a :class:`Principal`; None: the local operator, who may touch every job) and return its
    JSON answer. Bad input raises an InvalidInput subclass with the CLI's message (nothing is
    written); someone else's job is JobNotFound, exactly as a missing one."""
    tool = TOOLS.get(name)
    if tool is None:
        raise InvalidInput(f"unknown tool {name!r}; known: {', '.join(TOOLS)}")
    ops = target if isinstance(target, JobOperations) else JobOperations(target)
    who = user if isinstance(user, Principal) else LOCAL_ADMIN if user is None else Principal(user)
    return await tool.handler(Context(ops, who, origin), _check(tool, arguments))


def error_code(exc: StarpodCronError) -> str:
    """The short code every front end answers an error with (WebSocket ``error.code``, the
    HTTP API's ``error.code`` and status): ``not_found`` (missing, or someone else's job),
    ``conflict``, ``limit``, ``invalid``, ``unavailable`` (the store), else ``error``."""
    if isinstance(exc, JobNotFound | RunNotFound):
        return "not_found"
    if isinstance(exc, DuplicateJobName | JobAlreadyRunning | RunNotRetryable):
        return "conflict"
    if isinstance(exc, LimitExceeded):
        return "limit"
    if isinstance(exc, InvalidInput):
        return "invalid"
    if isinstance(exc, StoreUnavailable):
        return "unavailable"
    return "error"


def openai_tools(
    *, changes: bool = True, only: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """Every tool in OpenAI's function-calling format (``changes=False``: read-only ones;
    ``only``: those named)."""
    return [
        t.openai()
        for t in TOOLS.values()
        if (changes or not t.changes) and (only is None or t.name in only)
    ]
