"""What the ``openai`` executor asks for one run, worked out from the job's options
(:class:`~starpod_cron.models.ModelOptions`) over ``[executor]``'s: the messages (also what
the preview shows, :mod:`starpod_cron.preview`), the request options, the tools a run may
call, and the order in which models are asked:

- the job's model (else ``[executor] model``), then each of ``fallback_models`` in order when
  the provider says the model does not exist (:class:`~starpod_cron.errors.ModelNotFound`),
  or fails with a server error on the run's last attempt
  (:class:`~starpod_cron.errors.ProviderServerError`; earlier attempts are retried as usual);
- with ``escalate_to``: an answer beginning with ``[cron] escalate_token`` makes the same run
  ask that model the same messages; its answer is the result.

Every model that answered has its :class:`~starpod_cron.models.ModelUsage` in the result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..chat import ModelReply, ToolUse, converse
from ..errors import ModelNotFound, ProviderServerError
from ..models import JobContext, ModelOptions, ModelUsage
from .base import execution_note, silent_note

log = logging.getLogger("starpod_cron.executors")


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


class Completer(Protocol):
    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        model: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> ModelReply: ...


@dataclass(frozen=True, slots=True)
class _OneModel:
    """A :class:`~starpod_cron.chat.ChatModel` asking one model with one job's options."""

    completer: Completer
    model: str
    options: dict[str, Any]

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> ModelReply:
        return await self.completer.complete(
            messages, tools, model=self.model, options=self.options
        )


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    model: str
    usages: tuple[ModelUsage, ...]


async def ask(
    completer: Completer,
    ctx: JobContext,
    messages: list[dict[str, Any]],
    defaults: ModelDefaults,
    *,
    tools: ToolUse | None,
    escalate_token: str,
) -> Answer:
    """The run's answer: the job's model with its fallbacks, then (an answer beginning with
    ``escalate_token``) ``escalate_to`` with the same messages."""
    options = ctx.options
    body = defaults.request_options(options)
    usages: list[ModelUsage] = []
    models = (defaults.model_of(options), *options.fallback_models)
    text, model = await _first_answer(completer, ctx, models, messages, body, tools, usages)
    if options.escalate_to and text.lstrip().startswith(escalate_token):
        log.info("job %s: %s escalated to %s", ctx.job_name, model, options.escalate_to)
        models = (options.escalate_to,)
        text, model = await _first_answer(completer, ctx, models, messages, body, tools, usages)
    return Answer(text, model, tuple(usages))


async def _first_answer(
    completer: Completer,
    ctx: JobContext,
    models: Sequence[str],
    messages: list[dict[str, Any]],
    body: dict[str, Any],
    tools: ToolUse | None,
    usages: list[ModelUsage],
) -> tuple[str, str]:
    """The answer of the first of ``models`` that answers (each asked ``messages`` afresh)."""
    for i, model in enumerate(models):
        last = i == len(models) - 1
        one = _OneModel(completer, model, body)
        try:
            asked = list(messages)
            reply = await (one.complete(asked) if tools is None else converse(one, asked, tools))
        except ModelNotFound as exc:
            if last:
                raise
            log.warning("job %s: %s; falling back to %s", ctx.job_name, exc, models[i + 1])
            continue
        except ProviderServerError as exc:
            if last or not ctx.last_attempt:
                raise
            log.warning("job %s: %s; falling back to %s", ctx.job_name, exc, models[i + 1])
            continue
        usages.append(ModelUsage(model, reply.prompt_tokens, reply.completion_tokens))
        return reply.text, model
    raise AssertionError("no model to ask")  # models is never empty
