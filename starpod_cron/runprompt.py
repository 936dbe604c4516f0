"""What a run of the ``openai`` executor sends, worked out from the job's options
(:class:`~starpod_cron.models.ModelOptions`) over ``[executor]``'s: the system prompt with the
notes a scheduled run is given, the messages (context included), the request options and the
tools it may call. Pure; the preview (:mod:`starpod_cron.preview`) shows the same."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .models import JobContext, ModelOptions


@dataclass(frozen=True, slots=True)
class ModelDefaults:
    """``[executor]``'s model call, which a job's options override."""

    model: str
    system_prompt: str = ""
    temperature: float | None = None
    max_tokens: int | None = None

    def model_of(self, options: ModelOptions) -> str:
        return options.model or self.model

    def request_options(self, options: ModelOptions) -> dict[str, Any]:
        """``temperature`` and ``max_tokens`` of the request body (the job's, else these)."""
        body: dict[str, Any] = {}
        temperature = self.temperature if options.temperature is None else options.temperature
        max_tokens = self.max_tokens if options.max_tokens is None else options.max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return body


def allowed_tools(options: ModelOptions, all_by_default: bool) -> frozenset[str] | None:
    """The cron tools a run of the job may call: its ``tools`` when set (``()``: none), else
    every tool with ``[executor] allow_scheduling_from_runs = true`` (None), else none."""
    if options.tools is not None:
        return frozenset(options.tools)
    return None if all_by_default else frozenset()


def escalate_note(ctx: JobContext, token: str) -> str:
    """What a run of a job with ``escalate_to`` is told about the escalate token."""
    if not ctx.options.escalate_to:
        return ""
    return (
        "If this task is beyond what you can do well, answer with exactly "
        f"{token} at the start (and nothing else is needed): a stronger model will do it."
    )


def run_messages(
    ctx: JobContext,
    defaults: ModelDefaults,
    *,
    silent_token: str,
    escalate_token: str,
    tools: bool,
    history: Sequence[tuple[str, str]] = (),
) -> list[dict[str, Any]]:
    """The messages a run sends: the system prompt (the job's, else ``[executor]``'s) with the
    execution, silent and escalate notes, the conversation so far (``main`` mode), the
    previous result (``context = "last"``) and the prompt."""
    system_prompt = ctx.options.system_prompt
    notes = (
        defaults.system_prompt if system_prompt is None else system_prompt,
        execution_note(ctx, tools=tools),
        silent_note(ctx, silent_token),
        escalate_note(ctx, escalate_token),
    )
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "\n\n".join(p for p in notes if p)}
    ]
    messages += [{"role": role, "content": content} for role, content in history]
    messages += previous_result_messages(ctx)
    messages.append({"role": "user", "content": ctx.prompt})
    return messages


def previous_result_messages(ctx: JobContext) -> list[dict[str, Any]]:
    """With ``context = "last"``: one message giving the job's previous result and its time,
    sent just before the prompt (none when the job has no previous result)."""
    if ctx.previous_result is None:
        return []
    when = ctx.previous_at.isoformat() if ctx.previous_at is not None else "an earlier run"
    text = (
        f"The previous run of this job ended at {when} with this result (compare with it if "
        f"the task asks what changed):\n\n{ctx.previous_result}"
    )
    return [{"role": "system", "content": text}]


def silent_note(ctx: JobContext, token: str) -> str:
    """What a recurring job's run is told about the silent token (``[cron] silent_token``):
    when there is nothing worth reporting, answer exactly that, and nobody is bothered. Empty
    for a one-shot, whose answer is always delivered."""
    if ctx.one_shot:
        return ""
    return (
        "This job runs again and again. If this time there is nothing worth reporting (nothing "
        f"new, nothing changed, nothing needs attention), answer exactly {token} and nothing "
        "else: the run is recorded and nobody is notified. Otherwise answer with the report."
    )


def execution_note(ctx: JobContext, *, tools: bool = False) -> str:
    """The context a scheduled run adds to the system prompt (``tools``: it may call cron
    tools, so it is not told to leave jobs alone)."""
    text = (
        f"This is an automated, scheduled run of the job {ctx.job_name!r} "
        f"(run {ctx.run_id}, attempt {ctx.attempt}, scheduled for "
        f"{ctx.scheduled_for.isoformat()}). No user is watching or able to answer questions. "
        "Do the task and reply with the result."
    )
    return text if tools else text + " Do not create, change or schedule jobs."
