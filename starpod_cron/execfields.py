"""The fields of a job's model call, declared like every other field (the table is
:data:`starpod_cron.fields.JOB_FIELDS`, which appends these): which model a run asks, with what
system prompt, temperature and ``max_tokens``, the models it falls back to, the model it
escalates to, and which cron tools a scheduled run may call. Each overrides ``[executor]``
for the ``openai`` executor; unset (None) means "as ``[executor]`` says"."""

from __future__ import annotations

from typing import Any, Final

from .bounds import Within
from .fieldspec import JobField

MAX_TOKENS: Final = 10_000_000
MAX_MODELS: Final = 10
"""The most fallback models a job may list."""

RUN_TOOL_NAMES: Final = (
    "cron_add",
    "cron_list",
    "cron_get",
    "cron_update",
    "cron_pause",
    "cron_resume",
    "cron_snooze",
    "cron_remove",
    "cron_run",
    "cron_backfill",
    "cron_retry",
    "cron_runs",
    "cron_next",
    "cron_preview",
)
"""The cron tools (:data:`starpod_cron.tools.TOOLS`, checked equal by the tests): what a job's
``tools`` may name."""


def user(name: str, type_: str, help_: str, **kw: Any) -> JobField:
    return JobField(name, type_, help_, who="user", default=None, **kw)


EXEC_FIELDS: tuple[JobField, ...] = (
    user(
        "model",
        "str | None",
        "The model this job's runs ask (openai executor); a job keeps it when [executor] "
        "model changes.",
        default_note="[executor] model",
        flag="--model",
        metavar="NAME",
    ),
    user(
        "system_prompt",
        "str | None",
        "The system prompt of this job's runs, instead of [executor] system_prompt.",
        default_note="[executor] system_prompt",
        flag="--system-prompt",
        metavar="TEXT",
        widget_hint="textarea",
    ),
    user(
        "temperature",
        "float | None",
        "The sampling temperature of this job's model calls, 0 to 2.",
        default_note="[executor] temperature",
        rule=Within(0, 2),
        flag="--temperature",
        metavar="X",
    ),
    user(
        "max_tokens",
        "int | None",
        "The most tokens one answer of this job's model may have.",
        default_note="[executor] max_tokens",
        rule=Within(1, MAX_TOKENS, integer=True),
        flag="--max-tokens",
        metavar="N",
    ),
    user(
        "fallback_models",
        "list[str] | None",
        "Models asked in order when the job's model does not exist at the provider, or "
        "fails with a server error on the run's last attempt.",
        default_note="none",
        storage="json",
        flag="--fallback-model",
        metavar="NAME",
    ),
    user(
        "escalate_to",
        "str | None",
        "A stronger model asked, in the same run and with the same messages, when the job's "
        "model answers beginning with [cron] escalate_token.",
        default_note="no escalation",
        flag="--escalate-to",
        metavar="MODEL",
    ),
    user(
        "tools",
        "list[str] | None",
        "The cron tools a scheduled run of this job may call (as its owner, under the "
        "owner's limits).",
        default_note="none ([executor] allow_scheduling_from_runs = true: all)",
        storage="json",
        flag="--tool",
        metavar="NAME",
        items=RUN_TOOL_NAMES,
    ),
)
